"""The migration journal: ``s3://<bucket>/<state key>.tfwrap-migrate.json``, one record per step.

It lives next to the state it migrates, in the state bucket, so every checkout of that state
sees the same migration: CI can finalize what a laptop started, and a colleague does not
restart the soak (it used to live in ``.terraform/``, one checkout's alone, and
such a journal is moved to the bucket the first time it is read). Each write is conditional
on the ETag last read (``If-Match``; ``If-None-Match: *`` for the first), so two migrations
of one state cannot overwrite each other's records. Written after each step, never before
the step's effect is verified; a refusal before the first step leaves no journal behind. It
holds no secret: names, timestamps, the lock table, file hashes and the lines tfwrap changed.

    {
      "version": 1,
      "bucket": "acme-state", "state_key": "app/terraform.tfstate", "workspace": "default",
      "table": "acme-locks",
      "steps": {"dual/edit": {"at": "2026-11-26T15:52:06Z", ...}, ...},
      "edits": [{"phase": "dual", "file": "backend.tf", ...}],
      "history": [{"ended": "...", "how": "rolled back", "steps": {...}}]
    }
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Protocol

from tfwrap import exitcodes
from tfwrap.backend.config import JOURNAL_SUFFIX
from tfwrap.errors import TfwrapError

NAME = "tfwrap-migrate.json"
SUFFIX = JOURNAL_SUFFIX
VERSION = 1


class Store(Protocol):
    """Where a journal is kept: the state bucket (``tfwrap.migrate.remote``)."""

    where: str

    def read(self) -> tuple[str, str] | None:
        """The journal's text and ETag, or None when there is none."""

    def write(self, text: str, etag: str | None) -> str:
        """Write over ``etag`` (None: only if absent); the new ETag. Refuses a lost race."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(when: dt.datetime | None = None) -> str:
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


class Journal:
    """The journal of one working directory's migration."""

    def __init__(self, store: Store, data: dict[str, Any], etag: str | None = None) -> None:
        self.store = store
        self.path = store.where  # what messages name
        self.data = data
        self.etag = etag
        self.moved_from: Path | None = None

    @classmethod
    def load(cls, store: Store, data_dir: Path | None = None) -> Journal:
        """The journal in the bucket; a journal left in ``data_dir`` by an older tfwrap is moved there."""
        found = store.read()
        if found is None:
            journal = cls(store, {"version": VERSION, "steps": {}, "edits": [], "history": []})
            legacy = data_dir / NAME if data_dir is not None else None
            if legacy is not None and legacy.is_file():
                data = _parse(legacy.read_text(), str(legacy))
                if f"s3://{data.get('bucket')}/{data.get('state_key')}{SUFFIX}" != store.where:
                    return journal  # another state's (the backend changed): not ours to move
                journal.data = data
                journal.save()
                legacy.unlink()
                journal.moved_from = legacy
            return journal
        text, etag = found
        return cls(store, _parse(text, store.where), etag)

    @property
    def exists(self) -> bool:
        return self.etag is not None

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        steps: dict[str, dict[str, Any]] = self.data["steps"]
        return steps

    @property
    def edits(self) -> list[dict[str, Any]]:
        edits: list[dict[str, Any]] = self.data["edits"]
        return edits

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def step(self, key: str) -> dict[str, Any] | None:
        return self.steps.get(key)

    def done(self, key: str) -> bool:
        return key in self.steps

    def phase_started(self, phase: str) -> bool:
        return any(k.startswith(phase + "/") for k in self.steps)

    def bind(self, **facts: Any) -> None:
        """Facts about the migration (bucket, key, table): kept, written with the next record."""
        self.data.update({k: v for k, v in facts.items() if v is not None})

    def record(self, key: str, **detail: Any) -> None:
        self.steps[key] = {"at": stamp(), **detail}
        self.save()

    def add_edit(self, record: dict[str, Any]) -> None:
        self.edits.append(record)

    def close(self, how: str) -> None:
        """End the current migration (rolled back, or table deleted): its steps go to history."""
        self.data["history"].append({"ended": stamp(), "how": how, "steps": self.steps, "edits": self.edits})
        self.data["steps"] = {}
        self.data["edits"] = []
        self.save()

    def save(self) -> None:
        self.etag = self.store.write(json.dumps(self.data, indent=2) + "\n", self.etag)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        data, problem = None, str(exc)
    else:
        problem = _problem(data)
    if problem:
        raise TfwrapError(
            f"the migration journal {where} is damaged ({problem}); restore an earlier version of it "
            "(the bucket is versioned), or remove it to start the migration over",
            exitcodes.BACKEND_CONFIG,
        )
    parsed: dict[str, Any] = data
    return parsed


def _problem(data: Any) -> str:
    """What is wrong with a parsed journal ("" when nothing is)."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return "not a version 1 journal"
    for name, kind in (("steps", dict), ("edits", list), ("history", list)):
        data.setdefault(name, kind())
        if not isinstance(data[name], kind):
            return f"{name} is not a {kind.__name__}"
    return ""
