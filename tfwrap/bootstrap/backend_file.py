"""``--write-backend FILE``: the backend block for the bootstrapped bucket, new or updated.

A new file is rendered whole, as ``terraform fmt`` would write it (``.tf``:
:func:`tfwrap.backend.edit.render_backend`; ``.tf.json``: JSON; any other name: a
``-backend-config`` file of ``key = value`` lines). An existing file's ``backend "s3"`` block
(or ``-backend-config`` file) is edited in place with :func:`~tfwrap.backend.edit.set_setting`
and :func:`~tfwrap.backend.edit.remove_setting`, so only the lines that must change do:
``use_lockfile = true`` is set, ``dynamodb_table`` removed, and ``bucket``/``key``/``region``
(and ``endpoints``/``use_path_style`` when given on the command line) added only when absent.
A file naming another bucket, key or region is refused: changing them would point Terraform at
another state, which is a migration, not a bootstrap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.backend import config, edit
from tfwrap.errors import BackendConfigError, TfwrapError


@dataclass(frozen=True)
class Wanted:
    """The backend settings the bootstrapped bucket calls for."""

    bucket: str
    region: str
    key: str | None = None
    kms_key: str | None = None
    endpoint: str | None = None  # only an explicit --endpoint-url is written
    path_style: bool = False


def _is_tf(path: Path) -> bool:
    return path.name.endswith(".tf")


def _is_json(path: Path) -> bool:
    return path.name.endswith(".tf.json")


def existing_settings(path: Path) -> dict[str, Any] | None:
    """The ``backend "s3"`` settings in ``path`` (None when the file does not exist)."""
    if not path.exists():
        return None
    settings = config.file_settings(path)
    if settings is not None:
        return settings
    raise BackendConfigError(
        f'{path.name} has no backend "s3" block; add one or pass --write-backend a new file name'
    )


def _new_settings(wanted: Wanted) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bucket": wanted.bucket,
        "key": wanted.key,
        "region": wanted.region,
        "encrypt": True,
    }
    if wanted.kms_key:
        settings["kms_key_id"] = wanted.kms_key
    settings["use_lockfile"] = True
    if wanted.endpoint:
        settings["endpoints"] = {"s3": wanted.endpoint}
    if wanted.path_style:
        settings["use_path_style"] = True
    return settings


def _render(path: Path, settings: dict[str, Any]) -> str:
    if _is_json(path):
        return json.dumps({"terraform": {"backend": {"s3": settings}}}, indent=2) + "\n"
    if _is_tf(path):
        return edit.render_backend(settings)
    width = max(len(k) for k in settings)
    return "".join(f"{k.ljust(width)} = {edit.hcl_value(v)}\n" for k, v in settings.items())


def _other_backend(path: Path) -> str | None:
    """Another file of the same root module that already has a backend block."""
    from tfwrap.terraform import commands

    if not (_is_tf(path) or _is_json(path)) or not path.parent.is_dir():
        return None
    loaded = config.load(commands.parse([f"-chdir={path.parent}", "init"]), environ={})
    for source in loaded.sources:
        if source.backend_type and source.where.endswith((".tf", ".tf.json")):
            return source.where
    return None


def plan(path: Path, wanted: Wanted) -> edit.Edit:
    """The edit that makes ``path`` use the bucket with S3 native locking (nothing written)."""
    found = existing_settings(path)
    if found is None:
        if not wanted.key:
            raise TfwrapError(
                f"--write-backend {path} is a new file: pass --key for the state", exitcodes.USAGE
            )
        other = _other_backend(path)
        if other:
            raise TfwrapError(
                f"{path.parent / other} already has a backend block (Terraform allows one): "
                f"pass --write-backend {path.parent / other}",
                exitcodes.USAGE,
            )
        return edit.Edit(path, "", _render(path, _new_settings(wanted)))
    for name, value in (("bucket", wanted.bucket), ("key", wanted.key), ("region", wanted.region)):
        if value and found.get(name) and found[name] != value:
            raise TfwrapError(
                f"{path.name} has {name} = {found[name]!r}, not {value!r}: changing it would point "
                f"Terraform at another state; edit it by hand or pass --{name} {found[name]}",
                exitcodes.USAGE,
            )
    sets: list[tuple[str, Any]] = [
        (name, value)
        for name, value in (("bucket", wanted.bucket), ("key", wanted.key), ("region", wanted.region))
        if value and not found.get(name)
    ]
    if config.to_bool(found.get("use_lockfile")) is not True:
        sets.append(("use_lockfile", True))
    if wanted.endpoint and not found.get("endpoints") and not found.get("endpoint"):
        sets.append(("endpoints", {"s3": wanted.endpoint}))
    path_style = config.to_bool(found.get("use_path_style")) or config.to_bool(found.get("force_path_style"))
    if wanted.path_style and not path_style:
        sets.append(("use_path_style", True))
    removes = ["dynamodb_table"] if "dynamodb_table" in found else []
    return edit.edit_settings(path, sets=dict(sets), removes=removes)
