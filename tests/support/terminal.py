"""An interactive shell on a new terminal, for job-control tests: a real bash does the job
control (Ctrl-Z, ``fg``, ``bg``, ``&``), as a user's shell would."""

from __future__ import annotations

import os
import pty
import select
import threading
import time
from pathlib import Path

PROMPT = "tfwrap-test$ "


class Terminal:
    """``bash -i`` on a pty; ``send`` types, ``expect`` waits for text in the output."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        shell_env = {**env, "PS1": PROMPT, "TERM": "dumb", "HISTFILE": "/dev/null"}
        pid, master = pty.fork()
        if pid == 0:  # pragma: no cover - the shell
            os.chdir(cwd)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], shell_env)
        self.pid, self.master = pid, master
        self._output = b""
        self._seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.expect(PROMPT)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace")

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def expect(self, text: str, timeout: float = 60) -> str:
        """Wait for ``text`` after what earlier calls matched; returns the output up to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output
            at = out.find(text, self._seen)
            if at >= 0:
                self._seen = at + len(text)
                return out[:at]
            time.sleep(0.05)
        shown = self.output[-3000:]
        raise AssertionError(f"{text!r} not seen within {timeout} s; the terminal shows:\n{shown}")

    def foreground_group(self) -> int:
        """The terminal's foreground process group (who reads the keyboard)."""
        return os.tcgetpgrp(self.master)

    def close(self) -> None:
        """Kill the shell, stop the reader, then close the pty.

        The reader must be gone before the descriptor is closed: the next pipe this process
        opens gets the same number, and a reader still polling it would take that pipe's
        output (a later ``subprocess.run`` then saw an empty stdout and exit 0).
        """
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self._stop.set()
        self._reader.join()  # within one select timeout: it polls the stop flag
        os.close(self.master)
