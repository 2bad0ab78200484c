"""The compose check's test-only services, run in containers on the compose network from the wayfarer
image with tests/ mounted: `python -m tests.compose.services {llm|sites|hooks} PORT`.

  llm    the fake OpenAI-compatible LLM (tests/fakes/fake_llm.py), scripted over HTTP from the host
  sites  the test pages (tests/sites)
  hooks  a webhook receiver: records every POST; GET /received answers them as JSON
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from tests.fakes.fake_llm import FakeLLM, create_app
from tests.sites.server import SiteServer, _handler


def _hooks() -> type[BaseHTTPRequestHandler]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "body": body.decode(),
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
            self._answer(b"")

        def do_GET(self) -> None:
            self._answer(json.dumps(received).encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(role: str, port: int) -> None:
    if role == "llm":
        uvicorn.run(create_app(FakeLLM()), host="0.0.0.0", port=port, log_level="warning")
    elif role == "sites":
        ThreadingHTTPServer(("0.0.0.0", port), _handler(SiteServer())).serve_forever()
    elif role == "hooks":
        ThreadingHTTPServer(("0.0.0.0", port), _hooks()).serve_forever()
    else:
        raise SystemExit(f"unknown role {role!r}: llm, sites or hooks")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
