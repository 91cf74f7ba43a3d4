"""Gates: a provisioner that waits for the test to say "go", instead of sleeping N seconds.

A ``sleep N`` provisioner makes a test either wait the sleep out or race it. A gated one runs
until the test calls ``open()`` (a file appears), so the test decides when Terraform may finish,
and loses no time once it has seen what it came for. A gate never opened lets the provisioner
end by itself after ``limit`` seconds, so a failing test cannot leave Terraform running forever.
"""

from __future__ import annotations

import shlex
from pathlib import Path

STEP = 0.05  # how often the provisioner looks at its gate

_RESOURCE = """
resource "terraform_data" "%(name)s" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    command = "%(command)s"
  }
}
"""


class Gate:
    """``gate = Gate(tmp_path)``; ``resource=gate.resource()``; later ``gate.open()``."""

    def __init__(self, directory: Path, name: str = "gate") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.open"
        self.path.unlink(missing_ok=True)

    def open(self) -> None:
        self.path.touch()

    def close(self) -> None:
        """Closed again: the next run waits too."""
        self.path.unlink(missing_ok=True)

    @property
    def is_open(self) -> bool:
        return self.path.exists()

    def command(self, limit: float = 120) -> str:
        """A POSIX sh command that returns once the gate is open (or after ``limit`` s)."""
        tries = int(limit / STEP)
        path = shlex.quote(str(self.path))
        return f"i=0; while [ ! -e {path} ] && [ $i -lt {tries} ]; do sleep {STEP}; i=$((i+1)); done"

    def resource(self, name: str = "slow", limit: float = 120) -> str:
        """A ``terraform_data`` resource, replaced on every apply, whose provisioner waits here."""
        command = self.command(limit).replace("\\", "\\\\").replace('"', '\\"')
        return _RESOURCE % {"name": name, "command": command}
