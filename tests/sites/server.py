"""Serves the test pages on 127.0.0.1 (or another loopback address; two origins) and records what the
pages send back.

`serve_sites()` starts a threaded HTTP server on a random port plus a second one (another origin, for
cross-origin iframes). Besides the static pages in `pages/` it answers:
  POST /submit                 records the form fields, answers "Thanks, <name>!" with the fields listed
  POST /login, /login/verify   login.html's sign-in and its 2FA step: record the fields (the test checks
                               them), answer the code form, then "Welcome, <username>!"
  GET  /download/<name>        DOWNLOAD_BYTES as an attachment named <name> (?stall=N: the body only
                               after N seconds, a download that starts but is slow to finish)
  GET  /files/<name>           UPLOAD_BYTES as text/plain (a file_url to upload)
  GET  /slow?seconds=N         a page that answers after N seconds (capped at 30)
  GET  /hang                   never answers until the server stops (a page that never finishes loading)
  GET  /headers                the request headers as JSON
  GET  /redirect?to=URL        a 302 to URL
  /portal/...                  an invoice portal behind a sign-in (tests/sites/portal.py)
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.sites import portal

PAGES = Path(__file__).parent / "pages"
DOWNLOAD_BYTES = b"id,name\n1,Ada\n2,Grace\n"
UPLOAD_BYTES = b"hello from the upload fixture\n"


class SiteServer:
    def __init__(self) -> None:
        self.submissions: list[dict[str, str]] = []
        self.stopping = threading.Event()
        self._submitted = threading.Condition()
        self._servers: list[ThreadingHTTPServer] = []

    def url(self, path: str = "/") -> str:
        return self._base(0) + path

    def other_origin_url(self, path: str = "/") -> str:
        return self._base(1) + path

    def upload_file_url(self, name: str = "notes.txt") -> str:
        return self.url(f"/files/{name}")

    def wait_for_submission(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, str]]:
        """Block until at least `count` form submissions arrived; returns them all."""
        with self._submitted:
            if not self._submitted.wait_for(lambda: len(self.submissions) >= count, timeout):
                raise TimeoutError(f"{len(self.submissions)} of {count} submissions within {timeout} s")
            return list(self.submissions)

    def record(self, fields: dict[str, str]) -> None:
        with self._submitted:
            self.submissions.append(fields)
            self._submitted.notify_all()

    def _base(self, index: int) -> str:
        host, port = self._servers[index].server_address[:2]
        return f"http://{host!s}:{port}"


def _handler(site: SiteServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(PAGES), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            reply = portal.get(parts.path, self.headers.get("Cookie"))
            if reply is not None:
                self._send(*reply)
            elif parts.path.startswith("/download/"):
                name = parts.path.rsplit("/", 1)[1]
                disposition = f'attachment; filename="{name}"'
                self._send(DOWNLOAD_BYTES, "text/csv", {"Content-Disposition": disposition},
                           stall=min(float(query.get("stall", ["0"])[0]), 30.0))
            elif parts.path.startswith("/files/"):
                self._send(UPLOAD_BYTES, "text/plain")
            elif parts.path == "/slow":
                site.stopping.wait(min(float(query.get("seconds", ["3"])[0]), 30.0))
                self._send(_page("Slow page", "<h1>Finally loaded</h1>"), "text/html")
            elif parts.path == "/hang":
                site.stopping.wait(300)
            elif parts.path == "/headers":
                self._send(json.dumps(dict(self.headers.items())).encode(), "application/json")
            elif parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", query["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                super().do_GET()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            fields = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
            site.record(fields)
            path = urlsplit(self.path).path
            reply = portal.post(path, raw)
            if reply is not None:
                self._send(*reply)
                return
            if path in ("/login", "/login/verify"):
                self._send(_login_step(path, fields), "text/html")
                return
            items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in fields.items())
            name = html.escape(fields.get("name", "stranger"))
            body = f'<h1 id="result">Thanks, {name}!</h1><ul aria-label="Received">{items}</ul>'
            self._send(_page("Thanks", body), "text/html")

        def _send(self, body: bytes, content_type: str, headers: dict[str, str] | None = None,
                  stall: float = 0) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if stall:
                self.wfile.flush()
                site.stopping.wait(stall)
            self.wfile.write(body)

    return Handler


def _login_step(path: str, fields: dict[str, str]) -> bytes:
    if path == "/login":
        user = html.escape(fields.get("username", ""))
        return _page("Two-step verification", (
            '<h1>Enter your verification code</h1><form method="post" action="/login/verify">'
            f'<input type="hidden" name="username" value="{user}">'
            '<label>Verification code <input name="code" inputmode="numeric"></label>'
            '<button type="submit">Verify</button></form>'))
    return _page("Account", f'<h1 id="result">Welcome, {html.escape(fields.get("username", ""))}!</h1>')


def _page(title: str, body: str) -> bytes:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()


@contextmanager
def serve_sites(host: str = "127.0.0.1") -> Iterator[SiteServer]:
    site = SiteServer()
    handler = _handler(site)
    for _ in range(2):
        server = ThreadingHTTPServer((host, 0), handler)
        server.daemon_threads = True
        site._servers.append(server)
        threading.Thread(target=server.serve_forever, name="test-sites", daemon=True).start()
    try:
        yield site
    finally:
        site.stopping.set()  # releases /slow and /hang
        for server in site._servers:
            server.shutdown()
            server.server_close()
