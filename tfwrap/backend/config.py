"""Reading the backend configuration the way Terraform reads it.

Sources, in Terraform's order: ``backend`` blocks in ``*.tf`` and ``*.tf.json`` of the
working directory (after ``-chdir``); for ``init``, ``-backend-config=FILE`` and
``-backend-config=key=value`` (``TF_CLI_ARGS*`` included) on top; and the initialised
copy in ``<data dir>/terraform.tfstate``, which is what every command but ``init`` uses.
Every source is kept, so a leftover ``dynamodb_table`` is found wherever it lives.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap.backend import scan
from tfwrap.errors import BackendConfigError
from tfwrap.terraform.commands import Command, backend_config_values

# Settings whose values are secrets: never logged, never cached, never printed.
# Objects tfwrap keeps beside the state (tfwrap.iam grants exactly these keys).
JOURNAL_SUFFIX = ".tfwrap-migrate.json"
SECRET_SETTINGS = frozenset({"access_key", "secret_key", "token", "sse_customer_key"})
# Settings whose type is bool in the backend schema (strings convert as cty does).
BOOL_SETTINGS = frozenset(
    {
        "use_lockfile",
        "encrypt",
        "use_path_style",
        "force_path_style",
        "skip_credentials_validation",
        "skip_requesting_account_id",
        "skip_metadata_api_check",
        "skip_region_validation",
        "skip_s3_checksum",
        "insecure",
        "use_dualstack_endpoint",
        "use_fips_endpoint",
    }
)


@dataclass(frozen=True)
class Source:
    """One place backend settings were read from, e.g. ``main.tf`` or the initialised copy."""

    where: str
    backend_type: str
    settings: dict[str, Any]
    # Line and column of each setting ("endpoints.s3"), "" for the block itself.
    places: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)


@dataclass
class BackendConfig:
    """The backend a command will use, plus every source that mentions it."""

    workdir: Path
    data_dir: Path
    workspace: str
    backend_type: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)

    @property
    def is_s3(self) -> bool:
        return self.backend_type == "s3"

    def get(self, name: str) -> Any:
        return self.settings.get(name)

    @property
    def bucket(self) -> str:
        return str(self.settings.get("bucket") or "")

    @property
    def key(self) -> str:
        return str(self.settings.get("key") or "")

    @property
    def region(self) -> str | None:
        found = self.settings.get("region") or os.environ.get("AWS_REGION")
        return str(found or os.environ.get("AWS_DEFAULT_REGION") or "") or None

    @property
    def profile(self) -> str | None:
        return self.settings.get("profile") or os.environ.get("AWS_PROFILE") or None

    @property
    def use_lockfile(self) -> bool:
        return to_bool(self.settings.get("use_lockfile")) is True

    @property
    def dynamodb_table(self) -> str:
        return str(self.settings.get("dynamodb_table") or "")

    @property
    def path_style(self) -> bool:
        return bool(
            to_bool(self.settings.get("use_path_style")) or to_bool(self.settings.get("force_path_style"))
        )

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint Terraform will use: config before environment, as Terraform does."""
        return self._endpoint("s3", "endpoint", "AWS_S3_ENDPOINT")

    @property
    def dynamodb_endpoint(self) -> str | None:
        return self._endpoint("dynamodb", "dynamodb_endpoint", "AWS_DYNAMODB_ENDPOINT")

    @property
    def sts_endpoint(self) -> str | None:
        return self._endpoint("sts", "sts_endpoint", None)

    def _endpoint(self, service: str, old_setting: str, old_variable: str | None) -> str | None:
        """``endpoints.<service>``, the pre-1.6 setting, ``AWS_ENDPOINT_URL_<SERVICE>``, the
        pre-1.6 variable, then ``AWS_ENDPOINT_URL``: Terraform's order."""
        endpoints = self.settings.get("endpoints") or {}
        return (
            endpoints.get(service)
            or self.settings.get(old_setting)
            or os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
            or (os.environ.get(old_variable) if old_variable else None)
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )

    @property
    def assume_role(self) -> dict[str, Any]:
        block = self.settings.get("assume_role") or {}
        if not block and self.settings.get("role_arn"):  # pre-1.6 top-level form
            block = {"role_arn": self.settings["role_arn"]}
        return dict(block)

    @property
    def state_key(self) -> str:
        """The state object's key for the current workspace (``env:/<ws>/<key>`` by default)."""
        if self.workspace == "default":
            return self.key
        prefix = self.settings.get("workspace_key_prefix")
        prefix = "env:" if prefix is None else str(prefix)
        return f"{prefix}/{self.workspace}/{self.key}" if prefix else f"{self.workspace}/{self.key}"

    @property
    def lock_key(self) -> str:
        return self.state_key + ".tflock"

    @property
    def journal_key(self) -> str:
        """Where ``tfwrap migrate`` keeps this state's migration journal."""
        return self.state_key + JOURNAL_SUFFIX

    def public_settings(self) -> dict[str, Any]:
        """Settings safe to cache or print: secrets replaced by a marker."""
        return {k: ("<redacted>" if k in SECRET_SETTINGS else v) for k, v in self.settings.items()}


def to_bool(value: Any) -> bool | None:
    """Convert a setting to bool as Terraform's cty does: "true"/"1" and "false"/"0" only."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        lowered = value.strip()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return None


def load(command: Command, environ: dict[str, str] | None = None) -> BackendConfig:
    """Read the backend configuration for ``command`` run in the current directory."""
    env = dict(os.environ if environ is None else environ)
    workdir = Path(command.chdir or ".").resolve()
    data_dir = workdir / env.get("TF_DATA_DIR", ".terraform")
    config = BackendConfig(workdir=workdir, data_dir=data_dir, workspace=_workspace(data_dir, env))

    from_files = _from_files(workdir)
    from_args = _from_backend_config_args(command, workdir, env) if command.name == "init" else []
    initialised = _from_initialised(data_dir)
    config.sources = [*from_files, *from_args, *initialised]

    # `init` configures from files plus arguments; every other command runs on the
    # initialised copy (Terraform refuses to run when the two disagree).
    chosen = from_files[-1:] + from_args if command.name == "init" or not initialised else initialised
    if chosen:
        config.backend_type = chosen[0].backend_type
        for source in chosen:
            config.settings.update(source.settings)
    config.settings = _normalise(config.settings)
    return config


def load_initialised(command: Command, environ: dict[str, str] | None = None) -> BackendConfig | None:
    """The initialised copy alone (JSON, no HCL): what a non-``init`` command will use."""
    env = dict(os.environ if environ is None else environ)
    workdir = Path(command.chdir or ".").resolve()
    data_dir = workdir / env.get("TF_DATA_DIR", ".terraform")
    initialised = _from_initialised(data_dir)
    if not initialised:
        return None
    source = initialised[0]
    return BackendConfig(
        workdir=workdir,
        data_dir=data_dir,
        workspace=_workspace(data_dir, env),
        backend_type=source.backend_type,
        settings=_normalise(source.settings),
        sources=initialised,
    )


def _workspace(data_dir: Path, env: dict[str, str]) -> str:
    if env.get("TF_WORKSPACE"):
        return env["TF_WORKSPACE"]
    try:
        return (data_dir / "environment").read_text().strip() or "default"
    except OSError:
        return "default"


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as Terraform's schema types them (bool strings converted, nulls dropped)."""
    return _normalise(settings)


def _normalise(settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in settings.items():
        value = {k: v for k, v in raw.items() if v is not None} if isinstance(raw, dict) else raw
        if name in BOOL_SETTINGS and isinstance(value, str) and to_bool(value) is not None:
            value = to_bool(value)
        if value is not None:
            out[name] = value
    return out


def config_files(workdir: Path) -> list[Path]:
    """The files Terraform loads as the root module (overrides last, as Terraform merges them)."""
    try:
        names = sorted(os.listdir(workdir))
    except OSError as exc:
        raise BackendConfigError(f"cannot read directory {workdir}: {exc.strerror}") from exc
    files = [workdir / n for n in names if n.endswith((".tf", ".tf.json")) and not n.startswith(".")]
    overrides = [p for p in files if _is_override(p.name)]
    return [p for p in files if not _is_override(p.name)] + overrides


def _in_load_order(files: list[Path]) -> list[Path]:
    files = sorted(files, key=lambda p: p.name)
    return [p for p in files if not _is_override(p.name)] + [p for p in files if _is_override(p.name)]


def _is_override(name: str) -> bool:
    stem = name.removesuffix(".json").removesuffix(".tf")
    return stem == "override" or stem.endswith("_override")


def read_text(path: Path) -> str:
    """A configuration file as Terraform reads it: UTF-8 whatever the locale, and a leading
    byte order mark is not part of the text (a BOM before ``terraform {`` hid the backend)."""
    return path.read_bytes().decode("utf-8").removeprefix("\ufeff")


# What may stand for the state in a terraform block; an override file's one replaces the others.
_STATE_BLOCKS = ("backend", "cloud", "state_store")


def _from_files(workdir: Path, texts: dict[Path, str] | None = None) -> list[Source]:
    """The backend the root module declares, merged as Terraform merges it (its source, or none).

    Primary files may declare one of ``backend``, ``cloud`` or ``state_store`` once; each
    override file's replaces it (a ``cloud`` or ``state_store`` there removes the backend).
    Terraform refuses a second block and a repeated setting: so does this, naming both places
    (docs/decisions/050-read-as-terraform-merges.md).
    """
    chosen: Source | None = None
    # Files already read (audit): their names are the directory's listing, in Terraform's order.
    paths = config_files(workdir) if texts is None else _in_load_order(list(texts))
    for path in paths:
        text = (texts or {}).get(path)
        if text is None:
            try:
                text = read_text(path)
            except (OSError, UnicodeDecodeError) as exc:
                raise BackendConfigError(f"cannot read {path.name}: {exc}") from exc
        if "backend" not in text and "cloud" not in text and "state_store" not in text:
            continue  # cheap: most files cannot hold a backend block
        found = _state_blocks(path, text)
        if not found:
            continue
        if _is_override(path.name):
            kinds = [s for s in found if s.backend_type not in ("cloud", "state_store")]
            kinds = kinds if len(found) == len(kinds) else [s for s in found if s not in kinds]
            if len(kinds) > 1:
                raise _two_blocks(kinds[0], kinds[1], "an override file may hold only one")
            chosen = kinds[0]
            continue
        for source in found:
            if chosen is not None:
                raise _two_blocks(chosen, source, "Terraform refuses a second one")
            chosen = source
    return [chosen] if chosen is not None else []


def _shown(source: Source) -> str:
    line = source.places.get("", (1, 1))[0]
    kind = source.backend_type
    what = kind if kind in ("cloud", "state_store") else f'backend "{kind}"'
    return f"{what} in {source.where}:{line}"


def _two_blocks(first: Source, second: Source, why: str) -> BackendConfigError:
    others = {first.backend_type, second.backend_type} & {"cloud", "state_store"}
    terraform_says = (
        "Terraform: a backend, cloud and state_store block exclude each other"
        if others
        else "Terraform: Duplicate 'backend' configuration block"
    )
    return BackendConfigError(
        f"two backend blocks, {_shown(first)} and {_shown(second)}: {why} ({terraform_says}); keep one"
    )


def _state_blocks(path: Path, text: str) -> list[Source]:
    """Every backend, cloud and state_store block of one file, in the order written."""
    from tfwrap.backend import scan

    if path.name.endswith(".json"):
        found_json = [
            Source(path.name, kind, settings, places)
            for kind, settings, places in _backend_blocks_json(path, text)
        ]
        return found_json + _json_others(path, text)
    try:
        found = scan.scan(text, versions=False)
    except scan.ScanError as exc:
        raise BackendConfigError(
            f"cannot parse {path.name}: {exc}; run `terraform validate` to see the error"
        ) from exc
    out: list[tuple[tuple[int, int], Source]] = []
    for terraform_block in found:
        for block in terraform_block.backends:
            _refuse_duplicates(path.name, block.duplicates)
            if block.literal:
                settings = block.settings
            elif block.label == "s3":
                settings = _backend_block_hcl(path, block.text)
            else:  # not ours to read: Terraform judges another backend's settings
                settings = {}
            places = {"": (block.line, block.column), **block.places}
            out.append(((block.line, block.column), Source(path.name, block.label, settings, places)))
        for kind, place in terraform_block.others:
            out.append((place, Source(path.name, kind, {}, {"": place})))
    return [source for _, source in sorted(out, key=lambda pair: pair[0])]


def _json_others(path: Path, text: str) -> list[Source]:
    """``cloud`` and ``state_store`` in a ``.tf.json`` (already parsed once: errors are reported)."""
    doc = json.loads(text)
    blocks = doc.get("terraform") if isinstance(doc, dict) else None
    return [
        Source(path.name, kind, {}, {"": (1, 1)})
        for block in scan.as_list(blocks)
        for kind in ("cloud", "state_store")
        if kind in block
    ]


def _refuse_duplicates(where: str, duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]]) -> None:
    if duplicates:
        name, first, second = duplicates[0]
        raise BackendConfigError(
            f"{name} is set twice in {where} (lines {first[0]} and {second[0]}): Terraform refuses it "
            '("Attribute redefined"); keep one'
        )


def load_files(workdir: Path, texts: dict[Path, str]) -> BackendConfig:
    """What ``init`` reads from the files (already read: ``texts``), with the initialised copy
    among the sources; no environment, no arguments. ``tfwrap audit`` reads each file once."""
    data_dir = workdir / ".terraform"
    config = BackendConfig(workdir=workdir, data_dir=data_dir, workspace="default")
    from_files = _from_files(workdir, texts)
    config.sources = [*from_files, *_from_initialised(data_dir)]
    if from_files:
        config.backend_type = from_files[-1].backend_type
        config.settings = _normalise(from_files[-1].settings)
    return config


def with_backend_file(config: BackendConfig, path: Path, text: str | None = None) -> BackendConfig:
    """``config`` as ``terraform init -backend-config=PATH`` reads it: the file's settings on
    top of the block's, key by key; the file is a source of its own (with its places)."""
    if text is None:
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise BackendConfigError(f"cannot read -backend-config file {path}: {exc}") from exc
    settings, places = _backend_file_places(path, text)
    where = os.path.relpath(path, config.workdir)
    source = Source(f"-backend-config={where}", "", settings, places)
    files = [s for s in config.sources if not s.where.endswith("terraform.tfstate")]
    initialised = [s for s in config.sources if s.where.endswith("terraform.tfstate")]
    merged = dict(files[-1].settings) if files else {}
    merged.update(settings)
    return BackendConfig(
        workdir=config.workdir,
        data_dir=config.data_dir,
        workspace=config.workspace,
        backend_type=config.backend_type,
        settings=_normalise(merged),
        sources=[*files, source, *initialised],
    )


# -backend-config files: ``*.tfbackend`` (``*.s3.tfbackend`` too) and ``*.backend``, beside the
# root module or in one of these folders of it (docs/layouts.md).
BACKEND_FILE_SUFFIXES = (".tfbackend", ".backend")
BACKEND_FILE_DIRS = (
    "",
    "backends",
    "backend",
    "backend-config",
    "backend-configs",
    "env",
    "envs",
    "environments",
)


def is_backend_file(name: str) -> bool:
    return name.endswith(BACKEND_FILE_SUFFIXES) and not name.startswith(".")


def backend_files(workdir: Path) -> list[Path]:
    """The -backend-config files that may serve the root module in ``workdir``."""
    found: list[Path] = []
    try:
        here = sorted(os.scandir(workdir), key=lambda e: e.name)
    except OSError:
        return found
    found.extend(Path(e.path) for e in here if is_backend_file(e.name) and e.is_file())
    subdirs = {e.name for e in here if e.name in BACKEND_FILE_DIRS and e.is_dir()}
    for sub in (s for s in BACKEND_FILE_DIRS if s in subdirs):  # one listing each, only if present
        try:
            entries = sorted(os.scandir(workdir / sub), key=lambda e: e.name)
        except OSError:
            continue
        found.extend(Path(e.path) for e in entries if is_backend_file(e.name) and e.is_file())
    return found


Blocks = list[tuple[str, dict[str, Any], dict[str, tuple[int, int]]]]


def _backend_block_hcl(path: Path, text: str) -> dict[str, Any]:
    """A backend block holding more than literals, read by python-hcl2 as before."""
    import hcl2  # deferred: +120 ms, only for a block that is not plain literals

    try:
        doc = hcl2.loads(text + "\n")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendConfigError(
            f"cannot parse {path.name}: {first}; run `terraform validate` to see the error"
        ) from exc
    for backend in scan.as_list(doc.get("backend")):
        for body in backend.values():
            return _hcl_values(body)
    return {}


def _backend_blocks_json(path: Path, text: str) -> Blocks:
    try:
        found = scan.scan_json(text)
    except json.JSONDecodeError as exc:
        raise BackendConfigError(
            f"cannot parse {path.name}: {exc.msg} at line {exc.lineno}; fix the JSON"
        ) from exc
    return [
        (block.label, block.settings, {"": (block.line, block.column), **block.places})
        for terraform_block in found
        for block in terraform_block.backends
    ]


def _unquote(value: Any) -> Any:
    """python-hcl2 >= 5 keeps string quotes ('"s3"'); older versions do not."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def _hcl_values(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("__"):
            continue
        if isinstance(value, dict):
            out[name] = _hcl_values(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out[name] = _hcl_values(value[0])  # nested block form, e.g. assume_role { ... }
        else:
            out[name] = _unquote(value)
    return out


def _from_backend_config_args(command: Command, workdir: Path, env: dict[str, str]) -> list[Source]:
    sources: list[Source] = []
    for value in backend_config_values(command.effective_args(env)):
        # Terraform: a value with "=" is key=value, anything else is a file name.
        if "=" in value:
            name, raw = value.split("=", 1)
            sources.append(Source(f"-backend-config={name}=...", "", {name.strip(): _arg_value(raw)}))
            continue
        path = (workdir / value).resolve()
        try:
            text = read_text(path)
        except OSError as exc:
            raise BackendConfigError(
                f"cannot read -backend-config file {value}: {exc.strerror}; check the path"
            ) from exc
        except UnicodeDecodeError as exc:
            raise BackendConfigError(f"cannot read -backend-config file {value}: {exc}") from exc
        settings, places = _backend_file_places(path, text)
        sources.append(Source(f"-backend-config={value}", "", settings, places))
    return sources


def _arg_value(raw: str) -> Any:
    """A -backend-config key=value value: HCL-ish literal or plain string (Terraform converts)."""
    stripped = raw.strip()
    if stripped.startswith(("{", "[")) or (stripped.startswith('"') and stripped.endswith('"')):
        import hcl2

        try:
            return _hcl_values(hcl2.loads(f"v = {stripped}\n"))["v"]
        except Exception:  # noqa: BLE001 - keep the raw text; Terraform will judge it
            return stripped
    return stripped


def _backend_file_places(path: Path, text: str) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """A -backend-config file's settings and where each is (literals: no python-hcl2)."""
    from tfwrap.backend import scan

    try:
        block = scan.attributes(text)
    except scan.ScanError as exc:
        raise BackendConfigError(
            f"cannot parse -backend-config file {path.name}: {exc}; fix its syntax"
        ) from exc
    _refuse_duplicates(path.name, block.duplicates)
    if block.literal:
        return block.settings, block.places
    return _backend_file(path, text), block.places


def _backend_file(path: Path, text: str) -> dict[str, Any]:
    import hcl2

    try:
        return _hcl_values(hcl2.loads(text))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendConfigError(
            f"cannot parse -backend-config file {path.name}: {first}; fix its syntax"
        ) from exc


def file_settings(path: Path) -> dict[str, Any] | None:
    """The ``backend "s3"`` settings written in one file: a ``.tf``, a ``.tf.json`` or a
    ``-backend-config`` file (None when the file does not exist or has no S3 block)."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendConfigError(f"cannot read {path}: {exc}") from exc
    if not path.name.endswith((".tf", ".tf.json")):
        return _backend_file_places(path, text)[0]
    return next((s.settings for s in _state_blocks(path, text) if s.backend_type == "s3"), None)


def _from_initialised(data_dir: Path) -> list[Source]:
    path = data_dir / "terraform.tfstate"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as exc:
        raise BackendConfigError(f"cannot read {path}: {exc}; run `terraform init -reconfigure`") from exc
    backend = doc.get("backend") if isinstance(doc, dict) else None
    if not isinstance(backend, dict) or not backend.get("type"):
        return []
    return [Source(f"{data_dir.name}/terraform.tfstate", backend["type"], backend.get("config") or {})]


def to_json(config: BackendConfig) -> dict[str, Any]:
    """A cacheable copy: paths, workspace and settings with every secret redacted."""
    return {
        "workdir": str(config.workdir),
        "data_dir": str(config.data_dir),
        "workspace": config.workspace,
        "backend_type": config.backend_type,
        "settings": config.public_settings(),
        "sources": [
            {
                "where": s.where,
                "backend_type": s.backend_type,
                "settings": {k: ("<redacted>" if k in SECRET_SETTINGS else v) for k, v in s.settings.items()},
            }
            for s in config.sources
        ],
    }


def from_json(data: dict[str, Any]) -> BackendConfig:
    return BackendConfig(
        workdir=Path(data["workdir"]),
        data_dir=Path(data["data_dir"]),
        workspace=data["workspace"],
        backend_type=data["backend_type"],
        settings=dict(data["settings"]),
        sources=[Source(s["where"], s["backend_type"], dict(s["settings"])) for s in data["sources"]],
    )
