"""Gates: a provisioner that waits for the test to say "go", instead of sleeping N seconds.

A ``sleep N`` provisioner makes a test either wait the sleep out or race it. A gated one runs
until the test calls ``open()``, so the test decides when Terraform may finish and loses no
time once it has seen what it came for.

The gate is a FIFO that this process holds open for as long as the gate lives: what ``open()``
writes waits in the pipe for a reader that has not started yet, and each run reads one line.
The provisioner is one bash process blocked in its ``read`` builtin (no polling, no short-lived
children that a test collecting Terraform's process tree could catch half-way), with
``read -t limit`` so that a gate never opened cannot keep Terraform running forever
(docs/decisions/042-gates-not-sleeps.md).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

_RESOURCE = """
resource "terraform_data" "%(name)s" {
  triggers_replace = timestamp()
  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = "%(command)s"
  }
}
"""


class Gate:
    """``gate = Gate(tmp_path)``; ``resource=gate.resource()``; later ``gate.open()``;
    ``gate.dispose()`` at the end (the ``gate`` fixture does it)."""

    def __init__(self, directory: Path, name: str = "gate") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.fifo"
        self.path.unlink(missing_ok=True)
        os.mkfifo(self.path)
        # Read and write, never blocking: the pipe lives while this is open.
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        self.opened = 0

    def open(self, runs: int = 1) -> None:
        """Let ``runs`` more provisioners through (those waiting now or to come)."""
        os.write(self._fd, b"go\n" * runs)
        self.opened += runs

    def dispose(self) -> None:
        """Let every run still waiting go, and release the pipe."""
        with contextlib.suppress(OSError):
            os.write(self._fd, b"go\n" * 64)
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def command(self, limit: float = 180) -> str:
        """A bash command that returns once the gate lets it through (or fails after ``limit`` s)."""
        return f"read -t {limit:g} -r _ <> {shlex.quote(str(self.path))}"

    def resource(self, name: str = "slow", limit: float = 180) -> str:
        """A ``terraform_data`` resource, replaced on every apply, whose provisioner waits here."""
        command = self.command(limit).replace("\\", "\\\\").replace('"', '\\"')
        return _RESOURCE % {"name": name, "command": command}
