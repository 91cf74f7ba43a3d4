"""A loopback proxy in front of the S3 API server that plays an S3-compatible store (issue 9).

One mode per behaviour seen in the wild (DOMAIN.md, "Stores other than AWS S3"):

- ``pass``: forwards everything untouched (a store that behaves);
- ``strip``: drops ``If-None-Match`` and ``If-Match`` (Garage, Incus, proxies that lose them);
- ``refuse``: answers 501 ``NotImplemented`` to any conditional PUT (B2, Aliyun OSS, Tencent COS);
- ``if-match-creates``: ``If-Match`` on a missing key becomes a plain PUT (MinIO before 2025-09);
- ``reject-checksums``: a request carrying SDK checksums gets 400 ``XAmzContentSHA256Mismatch``
  (Ceph RGW with Terraform >= 1.11.2; over plain http the SDKs send the checksum as headers,
  not as an aws-chunked trailer, so headers and trailers alike are refused).

- ``delete-unconditional``: drops ``If-Match`` from DELETE only (a store that honours conditional
  PUTs but deletes unconditionally: AWS before 2025-09, many S3-compatible stores);
- ``racy``: checks a PUT's condition itself, waits ``race_window`` seconds, then writes without
  it (a store that checks and writes in two steps: moto threaded, SeaweedFS, RustFS).

``delay_puts`` holds every PUT back that many seconds (to interrupt a probe mid-way).
Every request is recorded as ``(method, path, status)``.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODES = ("pass", "strip", "refuse", "if-match-creates", "reject-checksums", "delete-unconditional", "racy")
_CONDITIONS = ("if-none-match", "if-match")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})


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
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:  # quiet
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def puts(self) -> int:
        with self._lock:
            return sum(1 for m, _, _ in self.requests if m == "PUT")

    # -- one request ---------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = self._body(req)
        headers = {k.lower(): v for k, v in req.headers.items() if k.lower() not in _HOP}
        if req.command == "PUT" and self.delay_puts:
            time.sleep(self.delay_puts)
        status, reply_headers, reply = self._decide(req, headers, body)
        with self._lock:
            self.requests.append((req.command, req.path, status))
        req.send_response(status)
        for k, v in reply_headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                req.send_header(k, v)
        length = next((v for k, v in reply_headers if k.lower() == "content-length"), None)
        req.send_header("Content-Length", length if req.command == "HEAD" and length else str(len(reply)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(reply)

    def _decide(
        self, req: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conditional = any(h in headers for h in _CONDITIONS)
        if self.mode == "strip":
            for h in _CONDITIONS:
                headers.pop(h, None)
        elif self.mode == "refuse" and req.command == "PUT" and conditional:
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
        return self._forward(req.command, req.path, headers, body)

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


@contextmanager
def fault_proxy(upstream: str, mode: str = "pass", delay_puts: float = 0.0) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, mode, delay_puts) as proxy:
        yield proxy
