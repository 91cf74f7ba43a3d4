"""cleanup-table: delete the lock table once no other state has an item in it."""

from __future__ import annotations

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.migrate import stragglers
from tfwrap.migrate.migration import Migration
from tfwrap.migrate.step import Done, Step


def cleanup_steps(m: Migration, table: str) -> list[Step]:
    bucket = m.backend.bucket

    def ours() -> set[str]:
        keys = m.remote.workspace_state_keys()
        return {f"{bucket}/{k}" for k in keys} | {f"{bucket}/{k}-md5" for k in keys}

    def classify() -> tuple[list[str], list[str], list[str]]:
        """(this configuration's lock items, its digest items, every other item)."""
        mine = ours()
        locks, digests, others = [], [], []
        for item in m.remote.scan(table):
            lock_id = str((item.get("LockID") or {}).get("S", ""))
            if lock_id not in mine:
                others.append(lock_id)
            elif lock_id.endswith("-md5"):
                digests.append(lock_id)
            else:
                locks.append(lock_id)
        return locks, digests, others

    def refuse_in_use(locks: list[str], others: list[str]) -> None:
        if locks:
            raise TfwrapError(
                f"table {table} holds a lock of this state ({locks[0]}): a run on the old configuration "
                "(dynamodb_table) is going on; update that pipeline, then run cleanup-table again",
                exitcodes.LOCK_HELD,
            )
        if others:
            shown = ", ".join(sorted(others)[:5]) + (
                f" and {len(others) - 5} more" if len(others) > 5 else ""
            )
            raise TfwrapError(
                f"table {table} is still used by {len(others)} other item(s): {shown} (a LockID is a state "
                "being locked now, a -md5 item a state still configured with dynamodb_table); migrate "
                "those states first, then run cleanup-table again",
                exitcodes.LOCK_HELD,
            )

    def preflight() -> Done:
        for name, settings in (("the files", m.backend), (".terraform (initialised)", m.initialised)):
            if settings is not None and settings.dynamodb_table:
                raise TfwrapError(
                    f"dynamodb_table = {settings.dynamodb_table!r} is still set in {name}: finish the "
                    "migration (tfwrap migrate finalize) before deleting the lock table",
                    exitcodes.USAGE,
                )
        m.require_table(table, "the lock table to delete")
        return Done(f"table {table} exists; this configuration no longer uses it")

    def scan_title(already: bool) -> str:
        if already:
            return f"table {table} holds no item"
        return f"scan {table}: refuse while another state uses it; remove this configuration's stale digests"

    def scan_run() -> Done:
        overridden = stragglers.refuse_cleanup(m, table)
        locks, digests, others = classify()
        refuse_in_use(locks, others)
        for lock_id in digests:
            m.remote.delete_digest(table, lock_id[len(bucket) + 1 : -len("-md5")])
        note = f"no other state uses it; removed {len(digests)} stale digest item(s)"
        if overridden:
            note += f" ({stragglers.OVERRIDE}: {overridden[0].describe()})"
        return Done(note, {"removed": digests, "ignored": [e.to_json() for e in overridden]})

    def scan_dry() -> None:
        """--dry-run scans as the real run does and says the same."""
        stragglers.refuse_cleanup(m, table)
        locks, digests, others = classify()
        refuse_in_use(locks, others)
        m.out.note(f"no other state uses it; would remove {len(digests)} stale digest item(s)")

    def delete_title(already: bool) -> str:
        return f"table {table} is gone" if already else f"delete DynamoDB table {table} (empty)"

    def delete_run() -> Done:
        described = m.remote.describe_table(table) or {}
        if described.get("DeletionProtectionEnabled"):
            raise TfwrapError(
                f"table {table} has deletion protection: aws dynamodb update-table --table-name {table} "
                "--no-deletion-protection-enabled, then run cleanup-table again",
                exitcodes.BLOCKED,
            )
        stragglers.refuse_cleanup(m, table)  # once more, right before: nothing new may have arrived
        locks, _, others = classify()
        refuse_in_use(locks, others)
        m.remote.delete_table(table)
        return Done(
            f"deleted (if Terraform manages table {table}, remove its resource from that configuration too)"
        )

    return [
        Step("preflight", lambda _: f"lock table {table}: still configured here?", preflight, always=True),
        Step("scan", scan_title, scan_run, holds=lambda: not any(classify()), drift="redo", dry=scan_dry),
        Step(
            "delete-table",
            delete_title,
            delete_run,
            holds=lambda: m.remote.describe_table(table) is None,
        ),
    ]
