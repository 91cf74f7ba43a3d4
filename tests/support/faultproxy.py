"""A loopback proxy in front of the S3 API server that plays an S3-compatible store (issue 9).

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

MODES = ("pass", "strip", "refuse", "if-match-creates", "reject-checksums", "sse-c")
_SSE_MD5 = "x-amz-server-side-encryption-customer-key-md5"
_COPY_MD5 = "x-amz-copy-source-server-side-encryption-customer-key-md5"
_CONDITIONS = ("if-none-match", "if-match")
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"})


def _error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class FaultProxy:
    """``with FaultProxy(upstream_url, mode) as proxy: proxy.url ...``"""

    def __init__(self, upstream: str, mode: str = "pass", delay_puts: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.delay_puts = delay_puts
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[tuple[str, str, int]] = []
        self.sse_keys: dict[str, str] = {}  # object path -> MD5 of the key it was written with
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


@contextmanager
def fault_proxy(upstream: str, mode: str = "pass", delay_puts: float = 0.0) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, mode, delay_puts) as proxy:
        yield proxy
