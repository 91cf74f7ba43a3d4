"""A loopback proxy in front of the S3 API server that plays an S3-compatible store.

One mode per behaviour seen in the wild (DOMAIN.md, "Stores other than AWS S3"):

- ``pass``: forwards everything untouched (a store that behaves);
- ``strip``: drops ``If-None-Match`` and ``If-Match`` (Garage, Incus, proxies that lose them);
- ``refuse``: answers 501 ``NotImplemented`` to any conditional PUT (B2, Aliyun OSS, Tencent COS);
- ``if-match-creates``: ``If-Match`` on a missing key becomes a plain PUT (MinIO before 2025-09);
- ``reject-checksums``: a request carrying SDK checksums gets 400 ``XAmzContentSHA256Mismatch``
  (Ceph RGW with Terraform >= 1.11.2; over plain http the SDKs send the checksum as headers,
  not as an aws-chunked trailer, so headers and trailers alike are refused);
- ``sse-c``: SSE-C as AWS enforces it (moto ignores it): an object written with a customer key
  (its MD5 header) answers 400 ``InvalidRequest`` to a read or copy without that same key.

- ``delete-unconditional``: drops ``If-Match`` from DELETE only (a store that honours conditional
  PUTs but deletes unconditionally: AWS before 2025-09, many S3-compatible stores);
- ``lacks-apis``: answers 501 ``NotImplemented`` to GetBucketPolicy and GetBucketLogging
  (s3rver and other small stores that lack them);
- ``racy``: checks a PUT's condition itself, waits ``race_window`` seconds, then writes without
  it (a store that checks and writes in two steps: moto threaded, SeaweedFS, RustFS).

``delay_puts`` holds every PUT back that many seconds (to interrupt a probe mid-way).
Every request is recorded as ``(method, path, status)``.

Faults of the link, switched while it runs (any mode):

- ``hold()`` / ``release()``: requests still reach the server and take effect; their answers
  wait. A client whose read timeout passes meanwhile sees a failure for a write that was in
  fact applied: the ambiguous outcome every client of a remote store must expect.
- ``cut()`` / ``restore()``: a runner cut off from S3; open connections are closed and new
  ones refused at once.
- ``arm(takes_lock)``: the next request taking a lock (``S3_LOCK``, Terraform's create-only
  PutObject; ``DYNAMODB_LOCK``, the lock item's conditional PutItem) reaches the server and
  takes effect, then its connection closes with no answer: the SDK retries, and the retry is
  refused by the lock its own first try created (the orphan of OpenTofu #4405). ``dropped``
  is set once that happened.

This is the one proxy of the suite: a test builds it with the mode it needs.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODES = (
    "pass",
    "strip",
    "refuse",
    "if-match-creates",
    "reject-checksums",
    "sse-c",
    "delete-unconditional",
    "racy",
    "lacks-apis",
)
_SSE_MD5 = "x-amz-server-side-encryption-customer-key-md5"
_COPY_MD5 = "x-amz-copy-source-server-side-encryption-customer-key-md5"
_CONDITIONS = ("if-none-match", "if-match")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})
S3_LOCK = b"\r\nif-none-match: *"  # the lock file's create-only PutObject (matched lower case)
DYNAMODB_LOCK = b"attribute_not_exists(lockid)"  # the lock item's conditional PutItem


def _error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class FaultProxy:
    """``with FaultProxy(upstream_url, mode) as proxy: proxy.url ...``"""

    def __init__(
        self, upstream: str, mode: str = "pass", delay_puts: float = 0.0, race_window: float = 0.05
    ) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.delay_puts = delay_puts
        self.race_window = race_window
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[tuple[str, str, int]] = []
        self.sse_keys: dict[str, str] = {}  # object path -> MD5 of the key it was written with
        self._lock = threading.Lock()
        self._flowing = threading.Event()  # answers pass while set (hold/release)
        self._flowing.set()
        self._cut = False
        self._open: set[socket.socket] = set()  # client connections, closed by cut()
        self._armed = b""  # what the next lock-taking request contains (arm)
        self.dropped = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:  # quiet
                pass

            def _any(self) -> None:
                try:
                    proxy.handle(self)
                except OSError:  # the client gave up, or the link was cut: as a network would
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: object, client_address: object) -> bool:
                if proxy._cut:
                    return False  # closed at once: the link is down
                with proxy._lock:
                    proxy._open.add(request)  # type: ignore[arg-type]
                return True

            def shutdown_request(self, request: object) -> None:
                with proxy._lock:
                    proxy._open.discard(request)  # type: ignore[arg-type]
                super().shutdown_request(request)  # type: ignore[arg-type]

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a broken connection is what a fault is

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._started = False

    def start(self) -> FaultProxy:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self) -> None:
        self.release()
        if self._started:
            self.server.shutdown()
        self.cut()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- faults of the link --------------------------------------------------------------

    def hold(self) -> None:
        """Answers wait from now on (the requests still reach the server)."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        """Close every open connection and refuse new ones until ``restore()``."""
        self._cut = True
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self._cut = False

    def arm(self, takes_lock: bytes = S3_LOCK) -> None:
        """Drop the answer of the next request that takes a lock (once)."""
        with self._lock:
            self._armed = takes_lock

    def puts(self) -> int:
        with self._lock:
            return sum(1 for m, _, _ in self.requests if m == "PUT")

    # -- one request ---------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = self._body(req)
        headers = {k.lower(): v for k, v in req.headers.items() if k.lower() not in _HOP}
        if req.command == "PUT" and self.delay_puts:
            time.sleep(self.delay_puts)
        drop = self._takes_armed_lock(req, headers, body)
        status, reply_headers, reply = self._decide(req, headers, body)
        with self._lock:
            self.requests.append((req.command, req.path, status))
        if drop:
            self.dropped.set()  # the write took effect; its answer never arrives
            req.close_connection = True
            return
        self._flowing.wait()
        if self._cut:
            req.close_connection = True
            return
        req.send_response(status)
        for k, v in reply_headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                req.send_header(k, v)
        length = next((v for k, v in reply_headers if k.lower() == "content-length"), None)
        req.send_header("Content-Length", length if req.command == "HEAD" and length else str(len(reply)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(reply)

    def _takes_armed_lock(self, req: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> bool:
        with self._lock:
            if not self._armed:
                return False
            raw = f"{req.command} {req.path}\r\n" + "\r\n".join(f"{k}: {v}" for k, v in headers.items())
            if self._armed not in raw.lower().encode() + b"\r\n\r\n" + body.lower():
                return False
            self._armed = b""
            return True

    def _decide(
        self, req: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conditional = any(h in headers for h in _CONDITIONS)
        if self.mode == "strip":
            for h in _CONDITIONS:
                headers.pop(h, None)
        elif (self.mode == "refuse" and req.command == "PUT" and conditional) or (
            self.mode == "lacks-apis"
            and req.command == "GET"
            and {"policy", "logging"} & set(urlsplit(req.path).query.split("&"))
        ):
            return (
                501,
                [("Content-Type", "application/xml")],
                _error(
                    "NotImplemented", "A header you provided implies functionality that is not implemented"
                ),
            )
        elif self.mode == "if-match-creates" and req.command == "PUT" and "if-match" in headers:
            if self._forward("HEAD", req.path, {"host": headers.get("host", "")}, b"")[0] == 404:
                headers.pop("if-match")
        elif self.mode == "delete-unconditional" and req.command == "DELETE":
            headers.pop("if-match", None)
        elif (
            self.mode == "racy"
            and req.command == "PUT"
            and conditional
            and "?" not in req.path.replace("?x-id=PutObject", "")
        ):
            same = {k: v for k, v in headers.items() if k in ("host", "authorization", "x-amz-date")}
            head = self._forward("HEAD", req.path.split("?")[0], same, b"")
            exists = head[0] != 404  # an unsigned HEAD of an existing object may get 403
            etag = next((v for k, v in head[1] if k.lower() == "etag"), "")
            wanted = headers.pop("if-match", None)
            create_only = headers.pop("if-none-match", None) == "*"
            if (create_only and exists) or (wanted is not None and (not exists or (etag and wanted != etag))):
                return (
                    412,
                    [("Content-Type", "application/xml")],
                    _error(
                        "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
                    ),
                )
            time.sleep(self.race_window)  # checked; now the write, in a second step
        elif self.mode == "reject-checksums" and any(
            h.startswith("x-amz-checksum-") or h in ("x-amz-trailer", "x-amz-sdk-checksum-algorithm")
            for h in headers
        ):
            return (
                400,
                [("Content-Type", "application/xml")],
                _error(
                    "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match"
                ),
            )
        elif self.mode == "sse-c":
            refused = self._sse_c(req.command, req.path.split("?")[0], headers)
            if refused is not None:
                return refused
        return self._forward(req.command, req.path, headers, body)

    def _sse_c(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        with self._lock:
            if method == "PUT":
                source = headers.get("x-amz-copy-source", "").split("?")[0]
                source = "/" + source.lstrip("/") if source else ""
                if source and self.sse_keys.get(source) not in (None, headers.get(_COPY_MD5)):
                    return 400, [("Content-Type", "application/xml")], _error("InvalidRequest", "copy key")
                if headers.get(_SSE_MD5):
                    self.sse_keys[path] = headers[_SSE_MD5]
                else:
                    self.sse_keys.pop(path, None)
                return None
            wanted = self.sse_keys.get(path)
            if method in ("GET", "HEAD") and wanted is not None and headers.get(_SSE_MD5) != wanted:
                return (
                    400,
                    [("Content-Type", "application/xml")],
                    _error("InvalidRequest", "The object was stored using a form of SSE-C; give the key"),
                )
        return None

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {**headers, "content-length": str(len(body))}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    @staticmethod
    def _body(req: BaseHTTPRequestHandler) -> bytes:
        if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while req.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(req.rfile.read(size))
                req.rfile.readline()
        length = int(req.headers.get("Content-Length") or 0)
        return req.rfile.read(length) if length else b""
