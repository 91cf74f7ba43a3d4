"""Check 4: the locking configuration, and ``dynamodb_table`` leftovers wherever they live."""

from __future__ import annotations

from tfwrap.backend.config import BackendConfig, Source, to_bool
from tfwrap.checks.finding import Finding, make


def evaluate(backend: BackendConfig) -> list[Finding]:
    found: list[Finding] = []
    leftovers = [s.where for s in backend.sources if s.settings.get("dynamodb_table")]
    where = f" (dynamodb_table set in {', '.join(leftovers)})" if leftovers else ""
    home = _block_file(backend)
    if _not_a_bool(backend.get("use_lockfile")):
        value = backend.get("use_lockfile")
        found.append(
            make(
                "locking-none",
                f"use_lockfile = {value!r} is not a bool, which Terraform will refuse "
                '(true/false, or the strings "true"/"false"/"1"/"0")',
                f'set use_lockfile = true in the backend "s3" block in {home} and run '
                "`terraform init -reconfigure`",
            )
        )
    elif backend.use_lockfile and backend.dynamodb_table:
        found.append(
            make(
                "locking-dual",
                f"dual locking: use_lockfile and dynamodb_table are both set{where}; finish the migration",
                "once no pipeline runs the old configuration, remove dynamodb_table from "
                f"{', '.join(leftovers)} and run `terraform init -reconfigure`",
            )
        )
    elif backend.dynamodb_table:
        found.append(
            make(
                "locking-dynamodb-only",
                f"state is locked with DynamoDB only{where}, deprecated since Terraform 1.11",
                f'add use_lockfile = true to the backend "s3" block in {home} (dual locking), run '
                "`terraform init -reconfigure`, then remove dynamodb_table once every pipeline has it",
            )
        )
    elif not backend.use_lockfile:
        found.append(
            make(
                "locking-none",
                "the state is not locked at all: neither use_lockfile nor dynamodb_table is set",
                f'add use_lockfile = true to the backend "s3" block in {home} and run '
                "`terraform init -reconfigure`",
            )
        )
    found.extend(_disagreements(backend))
    return found


def _not_a_bool(value: object) -> bool:
    """Set, but to something cty cannot convert to a bool (issue 7: "maybe" is not "unset")."""
    return value is not None and to_bool(value) is None


def _block_file(backend: BackendConfig) -> str:
    files = [s.where for s in backend.sources if s.backend_type == "s3" and not s.where.endswith("tfstate")]
    return files[-1] if files else "your configuration"


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
