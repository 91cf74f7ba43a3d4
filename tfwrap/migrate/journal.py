"""The migration journal: ``<data dir>/tfwrap-migrate.json``, one record per completed step.

Written atomically (temporary file, then rename) after each step, never before the step's
effect is verified; a refusal before the first step leaves no journal behind. It holds no
secret: names, timestamps, the lock table, file hashes and the lines tfwrap changed.

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
import os
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError

NAME = "tfwrap-migrate.json"
VERSION = 1


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(when: dt.datetime | None = None) -> str:
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


class Journal:
    """The journal of one working directory's migration."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, data_dir: Path) -> Journal:
        path = data_dir / NAME
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(path, {"version": VERSION, "steps": {}, "edits": [], "history": []})
        except OSError as exc:
            raise TfwrapError(
                f"cannot read the migration journal {path}: {exc.strerror}", exitcodes.BACKEND_CONFIG
            ) from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            data, problem = None, str(exc)
        else:
            problem = _problem(data)
        if problem:
            raise TfwrapError(
                f"the migration journal {path} is damaged ({problem}); restore it from a backup, "
                "or remove it to start the migration over",
                exitcodes.BACKEND_CONFIG,
            )
        return cls(path, data)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{NAME}.{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.path)


def _problem(data: Any) -> str:
    """What is wrong with a parsed journal ("" when nothing is)."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return "not a version 1 journal"
    for name, kind in (("steps", dict), ("edits", list), ("history", list)):
        data.setdefault(name, kind())
        if not isinstance(data[name], kind):
            return f"{name} is not a {kind.__name__}"
    return ""
