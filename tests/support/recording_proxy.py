"""A tiny forward HTTP proxy that records what passes through it (for the proxy_location tests).

Every request it receives in absolute form (`GET http://shop.test/form.html HTTP/1.1`, as a browser sends
to an HTTP proxy) is recorded, then forwarded to one upstream server whatever the host: it stands in for
the internet, so a test page can be reached by a name that resolves nowhere else (the test Chromium
resolves no names but localhost's), proving the page came through the proxy. With `credentials` it
demands Basic proxy authentication (407) like a paid proxy does. HTTPS (CONNECT) is refused.
"""

from __future__ import annotations

import base64
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
                        "trailer", "transfer-encoding", "upgrade"})


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    url: str
    headers: dict[str, str]  # lower-case names


@dataclass
class RecordingProxy:
    url: str  # http://127.0.0.1:<port>
    requests: list[ProxiedRequest] = field(default_factory=list)
    refused: int = 0  # requests answered 407 (no or wrong credentials)

    def urls(self) -> list[str]:
        return [request.url for request in self.requests]

    def wait_for(self, predicate: str, timeout: float = 30.0) -> ProxiedRequest:
        """The first recorded request whose URL contains `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in list(self.requests):
                if predicate in request.url:
                    return request
            time.sleep(0.05)
        raise TimeoutError(f"no request for {predicate!r} came through the proxy; it saw {self.urls()}")


@contextmanager
def recording_proxy(upstream: str, credentials: tuple[str, str] | None = None) -> Iterator[RecordingProxy]:
    """A proxy forwarding every request to `upstream` (host:port)."""
    upstream_host, upstream_port = upstream.rsplit(":", 1)
    expected = (f"Basic {base64.b64encode(f'{credentials[0]}:{credentials[1]}'.encode()).decode()}"
                if credentials else None)
    proxy: RecordingProxy

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:
            self._answer(405, b"this test proxy forwards plain HTTP only")

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_HEAD(self) -> None:
            self._forward()

        def _forward(self) -> None:
            if expected is not None and self.headers.get("Proxy-Authorization") != expected:
                proxy.refused += 1
                self._answer(407, b"proxy authentication required",
                             {"Proxy-Authenticate": 'Basic realm="test proxy"'})
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            proxy.requests.append(ProxiedRequest(self.command, self.path,
                                                 {k.lower(): v for k, v in self.headers.items()}))
            target = urlsplit(self.path)
            path = target.path + (f"?{target.query}" if target.query else "") or "/"
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection = http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=30)
            try:
                connection.request(self.command, path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                connection.close()

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy = RecordingProxy(url=f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, name="recording-proxy", daemon=True).start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
