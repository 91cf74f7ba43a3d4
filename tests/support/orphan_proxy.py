"""``OrphanProxy``: makes the SDK retry a lock write that succeeded (issue 7 §3).

A loopback TCP proxy in front of the S3 API server. It forwards everything, but the first
request that takes a lock (``If-None-Match: *``, Terraform's create-only PutObject; or the
DynamoDB PutItem conditioned on ``attribute_not_exists(LockID)``) has its answer dropped:
the write reaches the server and takes effect, then the proxy closes the connection instead
of passing the answer on. The SDK sees a broken connection, retries, and the retry is
refused by the lock its own first try created: the orphan of OpenTofu #4405, on cue.
"""

from __future__ import annotations

import contextlib
import socket
import threading

S3_LOCK = b"\r\nif-none-match: *"  # the lock file's create-only PutObject
DYNAMODB_LOCK = b"attribute_not_exists(lockid)"  # the lock item's conditional PutItem


class OrphanProxy:
    def __init__(self, target_port: int, takes_lock: bytes = S3_LOCK) -> None:
        self.target = ("127.0.0.1", target_port)
        self.takes_lock = takes_lock  # lower case: matched against the lowered request
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.dropped = threading.Event()  # set once an answer was dropped
        self._armed = False  # arm() before the run whose lock write is to be orphaned
        self._arm_lock = threading.Lock()
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="orphan-proxy", daemon=True).start()

    def arm(self) -> None:
        """Drop the answer of the next lock-taking write (once)."""
        with self._arm_lock:
            self._armed = True

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                continue
            self._sockets += [client, server]
            drop = threading.Event()  # this connection's next answer is dropped
            threading.Thread(target=self._requests, args=(client, server, drop), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, drop), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, drop: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                with self._arm_lock:
                    if self._armed and self.takes_lock in data.lower():
                        self._armed = False
                        drop.set()  # before the request goes on: its answer comes after
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)

    def _answers(self, server: socket.socket, client: socket.socket, drop: threading.Event) -> None:
        try:
            while data := server.recv(65536):
                if drop.is_set():
                    self.dropped.set()
                    break  # the write took effect; its answer never arrives
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)

    def close(self) -> None:
        self._closed = True
        _close(self._listener, *self._sockets)

    def __enter__(self) -> OrphanProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
