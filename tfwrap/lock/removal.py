"""Removing a lock: exactly the one judged, or the one a given ID holds.

Both are conditional (lockfile.py): the exact removal deletes the object only with the
ETag that was judged and the item only with the ``Info`` that was judged, so a holder that
renewed a moment ago keeps its lock. The object goes first: a holder renews the object
before the item, so a renewal racing the removal is refused at the object and the item is
left untouched too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfwrap.lock.current import CurrentLock


@dataclass
class Removal:
    """What a removal did: one sentence per part removed, and per part left in place."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # expected to go and did not: a refusal
    notes: list[str] = field(default_factory=list)  # another holder's part, left alone on purpose


def remove_judged(found: CurrentLock) -> Removal:
    """Remove the object and the item exactly as read (AWS errors propagate)."""
    done = Removal()
    if found.s3 is not None:
        if found.lockfile.delete_exact(found.s3):
            who = found.s3.fields.get("Who", "")
            done.removed.append(f"removed the stale lock {found.where} (ID {found.s3.id}, {who})")
        else:
            done.kept.append(f"{found.where} changed since it was read (renewed, released or retaken)")
            return done  # the holder is renewing: leave its item alone too
    if found.item is not None and found.dynamo is not None:
        if found.dynamo.delete_exact(found.item):
            done.removed.append(f"removed the stale {found.item_where} (ID {found.item.get('ID', '')})")
        else:
            done.kept.append(
                f"the {found.item_where} changed since it was read (renewed, released or retaken)"
            )
    return done


def remove_object_by_id(found: CurrentLock, lock_id: str) -> Removal:
    """Remove the ``.tflock`` object if ``lock_id`` holds it."""
    done = Removal()
    if found.s3 is None:
        return done
    if found.s3.id != lock_id:
        done.notes.append(f"left in place: {found.where} is held by another ID ({found.s3.id})")
        return done
    gone = found.lockfile.delete_if_held_by(lock_id)
    if gone is None:
        done.kept.append(f"{found.where} is no longer held by ID {lock_id} (released or retaken meanwhile)")
    else:
        done.removed.append(f"removed the lock {found.where} (ID {lock_id}, {gone.fields.get('Who', '')})")
    return done


def remove_item_by_id(found: CurrentLock, lock_id: str) -> Removal:
    """Remove the DynamoDB item if ``lock_id`` holds it."""
    done = Removal()
    if found.item is None or found.dynamo is None:
        return done
    if found.item.get("ID") != lock_id:
        done.notes.append(
            f"left in place: the {found.item_where} is held by another ID ({found.item.get('ID', '')})"
        )
        return done
    if found.dynamo.delete_if_held_by(lock_id):
        done.removed.append(f"removed the {found.item_where} (ID {lock_id})")
    else:
        done.kept.append(
            f"the {found.item_where} is no longer held by ID {lock_id} (released or retaken meanwhile)"
        )
    return done
