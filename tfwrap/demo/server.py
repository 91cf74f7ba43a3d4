"""A real S3/DynamoDB API server (``moto_server``) on a free loopback port.

The port is never guessed: this process binds port 0, keeps the listening socket, and hands it
to moto_server, whose werkzeug serves on a socket it is given (the way its own reloader passes
one on). No other process can take the port between the choice and the bind
(docs/decisions/041-moto-port-zero.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_ATOMIC_MOTO = """
import sys, threading
import moto.server as server
serial = threading.Lock()
handle = server.DomainDispatcherApplication.__call__
def one_at_a_time(self, environ, start_response):
    with serial:
        return list(handle(self, environ, start_response))
server.DomainDispatcherApplication.__call__ = one_at_a_time
server.main(sys.argv[1:])
"""


class S3Server:
    """``moto_server -H 127.0.0.1 -p PORT`` for as long as the object lives (or ``stop()``)."""

    def __init__(self, log: Path | None = None, extra_env: dict[str, str] | None = None) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **(extra_env or {}),
            # werkzeug's run_simple serves on this descriptor instead of binding its own
            "WERKZEUG_RUN_MAIN": "true",
            "WERKZEUG_SERVER_FD": str(listener.fileno()),
        }
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._log = out
        try:
            self.process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # a Ctrl-C in the demo's terminal must not kill it first
            )
        finally:
            listener.close()  # the server holds its own copy
        self._wait_ready()

    def argv(self) -> list[str]:
        """The server's command line (a test may run a variant of moto).

        moto_server serves requests in threads and checks a conditional write's condition and
        stores the object in two steps: concurrent create-only PUTs can both win there (AWS is
        atomic). Requests are therefore handled one at a time (connections stay threaded), so
        the store the demo and the tests use is atomic, as tfwrap's probe requires
        (docs/decisions/022-racy-stores.md).
        """
        return [sys.executable, "-c", _ATOMIC_MOTO, "-H", "127.0.0.1", "-p", str(self.port)]

    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}")
            try:
                # No proxy: loopback is never proxied, whatever the environment says (the
                # global opener would keep the first proxies it saw).
                self._opener.open(self.url + "/moto-api/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
