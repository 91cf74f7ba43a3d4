"""Check 4: the locking configuration, and ``dynamodb_table`` leftovers wherever they live."""

from __future__ import annotations

import os
from pathlib import Path

from tfwrap.backend.config import BackendConfig, Source, to_bool
from tfwrap.findings.finding import Finding, make


def evaluate(backend: BackendConfig) -> list[Finding]:
    found = _evaluate(backend)
    unit = _terragrunt_unit(backend)
    if unit is None:
        return found
    from tfwrap.backend import terragrunt

    resolved = terragrunt.resolve(unit)
    if resolved.block is None:
        return found
    home = os.path.relpath(resolved.block[0], unit.parent)  # as the audit names it
    return [for_terragrunt(f, home, resolved.how) for f in found]


def _terragrunt_unit(backend: BackendConfig) -> Path | None:
    """The unit's ``terragrunt.hcl`` when Terraform runs in Terragrunt's cache (its copy of the
    module, with the generated backend.tf): the files to edit are the unit's, not these."""
    parts = backend.workdir.parts
    if ".terragrunt-cache" not in parts:
        return None
    unit = Path(*parts[: parts.index(".terragrunt-cache")]) / "terragrunt.hcl"
    return unit if unit.is_file() else None


def for_terragrunt(finding: Finding, home: str, how: str) -> Finding:
    """A locking fix for a Terragrunt unit: what to change in which ``.hcl`` file
    (``tfwrap migrate`` edits Terraform files only, and refuses a Terragrunt unit)."""
    if not finding.id.startswith("locking-"):
        return finding
    part = 'the backend "s3" block in generate "backend"' if how == "generate" else "remote_state's config"
    after = "then run `terragrunt init -reconfigure` in each unit that uses it"
    fixes = {
        "locking-dynamodb-only": f"add use_lockfile = true beside dynamodb_table in {part} of {home}, "
        f"{after}; remove dynamodb_table once every pipeline has it (tfwrap migrate does not edit "
        "Terragrunt files)",
        "locking-dual": f"once no pipeline runs the old configuration, remove dynamodb_table from {part} of "
        f"{home}, {after}",
        "locking-none": f"add use_lockfile = true to {part} of {home}, {after}",
        "locking-disagree": f"run `terragrunt init -reconfigure` so Terraform uses what {home} says",
    }
    fix = fixes.get(finding.id)
    return Finding(finding.id, finding.severity, finding.message, fix) if fix else finding


def _evaluate(backend: BackendConfig) -> list[Finding]:
    found: list[Finding] = []
    leftovers = [s.where for s in backend.sources if s.settings.get("dynamodb_table")]
    where = f" (dynamodb_table set in {', '.join(leftovers)})" if leftovers else ""
    args = _backend_config_args(backend)
    only_initialised = not any(not _initialised(s) for s in _setting(backend, "dynamodb_table"))
    if _not_a_bool(backend.get("use_lockfile")):
        value = backend.get("use_lockfile")
        found.append(
            make(
                "locking-none",
                f"use_lockfile = {value!r} is not a bool, which Terraform will refuse "
                '(true/false, or the strings "true"/"false"/"1"/"0")',
                f"set use_lockfile = true in {_homes(backend, 'use_lockfile')} and run "
                f"`terraform init -reconfigure{args}`",
            )
        )
    elif backend.dynamodb_table and only_initialised and not _is_partial(backend):
        # Only Terraform's initialised copy still has it: reinitialising is the whole fix.
        kind = "locking-dual" if backend.use_lockfile else "locking-dynamodb-only"
        found.append(
            make(
                kind,
                f"the initialised backend still locks with DynamoDB{where}, but the files no longer set "
                "dynamodb_table",
                f"run `terraform init -reconfigure{args}` so Terraform uses what the files say",
            )
        )
    elif backend.use_lockfile and backend.dynamodb_table:
        found.append(
            make(
                "locking-dual",
                f"dual locking: use_lockfile and dynamodb_table are both set{where}; finish the migration",
                "once no pipeline runs the old configuration, run "
                f"`tfwrap migrate finalize{args}`: it removes dynamodb_table from "
                f"{_homes(backend, 'dynamodb_table')}, reinitialises and verifies",
            )
        )
    elif backend.dynamodb_table:
        found.append(
            make(
                "locking-dynamodb-only",
                f"state is locked with DynamoDB only{where}, deprecated since Terraform 1.11",
                f"run `tfwrap migrate{args}`: it adds use_lockfile = true beside dynamodb_table in "
                f"{_homes(backend, 'dynamodb_table')} (dual locking), reinitialises and verifies; "
                "`tfwrap migrate finalize` removes dynamodb_table once every pipeline has it",
            )
        )
    elif not backend.use_lockfile:
        found.append(
            make(
                "locking-none",
                "the state is not locked at all: neither use_lockfile nor dynamodb_table is set",
                f"add use_lockfile = true to {_homes(backend, 'bucket')} and run "
                f"`terraform init -reconfigure{args}`",
            )
        )
    found.extend(_disagreements(backend))
    return found


def _not_a_bool(value: object) -> bool:
    """Set, but to something cty cannot convert to a bool ("maybe" is not "unset")."""
    return value is not None and to_bool(value) is None


def partial(backend: BackendConfig) -> Finding:
    """A ``backend "s3" {}`` whose bucket comes from -backend-config, and none was given."""
    blocks = [s.where for s in backend.sources if s.backend_type == "s3" and not _initialised(s)]
    block = f'the backend "s3" block in {blocks[-1]}' if blocks else 'the backend "s3" block'
    candidates = _candidates(backend)
    if candidates:
        first = candidates[0]
        others = f" (the backend files here: {', '.join(candidates)})" if len(candidates) > 1 else ""
        fix = (
            f"pass the file your team initialises with, e.g. `terraform init -backend-config={first}`"
            f"{others}; `tfwrap check -backend-config={first}` checks it"
        )
    else:
        name = f"{backend.workdir.name or 'backend'}.s3.tfbackend"
        fix = (
            f"write bucket, key and region in a file such as {name} and run "
            f"`terraform init -backend-config={name}` (`tfwrap check -backend-config={name}` checks it)"
        )
    return make(
        "backend-config-missing",
        f"{block} sets no bucket: the bucket comes from -backend-config, none given",
        fix,
    )


def _candidates(backend: BackendConfig) -> list[str]:
    """The -backend-config files beside the root module, as paths relative to it."""
    from tfwrap.backend.config import backend_files

    return [os.path.relpath(p, backend.workdir) for p in backend_files(backend.workdir)]


def _serving(backend: BackendConfig) -> list[str]:
    """The -backend-config files this backend was read from: given on the command line, or
    (for the initialised copy of a partial backend) the files beside it naming its bucket and key."""
    given = [
        s.where.split("=", 1)[1]
        for s in backend.sources
        if s.where.startswith("-backend-config=") and not s.where.endswith("=...")
    ]
    if given or not _is_partial(backend):
        return given
    from tfwrap.backend.config import backend_files, file_settings
    from tfwrap.errors import BackendConfigError

    matching = []
    for path in backend_files(backend.workdir):
        try:
            settings = file_settings(path) or {}
        except BackendConfigError:
            continue
        if settings.get("bucket") == backend.bucket and settings.get("key") == backend.key:
            matching.append(os.path.relpath(path, backend.workdir))
    return matching[:1]


def _setting(backend: BackendConfig, name: str) -> list[Source]:
    return [s for s in backend.sources if s.settings.get(name)]


def _initialised(source: Source) -> bool:
    return source.where.endswith("terraform.tfstate")


def _homes(backend: BackendConfig, name: str) -> str:
    """Where a user edits ``name``: the files that set it; never Terraform's initialised copy
    . A partial backend's settings live in its -backend-config file."""
    files = [s for s in backend.sources if not _initialised(s) and name in s.settings]
    named = [_label(s) for s in files if not s.where.endswith("=...")]
    if named:
        return ", ".join(dict.fromkeys(named))
    if _is_partial(backend):
        serving = _serving(backend)
        if serving:
            return f"{serving[0]} (-backend-config)"
        candidates = _candidates(backend)
        if candidates:
            return f"the -backend-config file your `terraform init` uses (one of {', '.join(candidates)})"
        return "the -backend-config file your `terraform init` uses"
    blocks = [s.where for s in backend.sources if s.backend_type == "s3" and not _initialised(s)]
    return f'the backend "s3" block in {blocks[-1]}' if blocks else 'the backend "s3" block'


def _label(source: Source) -> str:
    if source.where.startswith("-backend-config="):
        return f"{source.where.split('=', 1)[1]} (-backend-config)"
    if source.backend_type == "s3":
        return f'the backend "s3" block in {source.where}'
    return source.where


def _is_partial(backend: BackendConfig) -> bool:
    """The block in the files does not name the bucket: the rest comes from -backend-config."""
    blocks = [s for s in backend.sources if s.backend_type == "s3" and not _initialised(s)]
    return bool(blocks) and "bucket" not in blocks[-1].settings


def _backend_config_args(backend: BackendConfig) -> str:
    """The -backend-config arguments a fix command needs, with the real file names."""
    files = _serving(backend)
    if files:
        return "".join(f" -backend-config={w}" for w in files)
    if not _is_partial(backend):
        return ""
    candidates = _candidates(backend)
    if len(candidates) == 1:
        return f" -backend-config={candidates[0]}"
    if candidates:
        return f" -backend-config=<one of {', '.join(candidates)}>"
    return " -backend-config=<the file with its bucket and key>"


def _disagreements(backend: BackendConfig) -> list[Finding]:
    files = [s for s in backend.sources if s.backend_type and not s.where.endswith("terraform.tfstate")]
    initialised = [s for s in backend.sources if s.where.endswith("terraform.tfstate")]
    if not files or not initialised:
        return []
    block, init = files[-1], initialised[0]
    differences = []
    for name, read in (("use_lockfile", _lockfile), ("dynamodb_table", _table)):
        if name in block.settings and read(block) != read(init):
            differences.append(f"{name} is {read(block)} in {block.where} but {read(init)} in {init.where}")
    if not differences:
        return []
    return [
        make(
            "locking-disagree",
            "the configuration and the initialised backend disagree: " + "; ".join(differences),
            "run `terraform init -reconfigure` so Terraform uses what the files say",
        )
    ]


def _lockfile(source: Source) -> str:
    return str(to_bool(source.settings.get("use_lockfile")) is True).lower()


def _table(source: Source) -> str:
    return repr(source.settings.get("dynamodb_table") or None)
