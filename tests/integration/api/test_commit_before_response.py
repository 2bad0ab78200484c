"""What a route writes is committed before its response leaves: a client told "created" can use the
thing at once (CI saw a workflow created, then run, answered 404), and a commit that fails is the
request's error, not a write lost behind a 200."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event

from app.db.engine import get_engine
from tests.integration.api.conftest import Api


def test_the_write_is_committed_before_the_response_starts(api: Api) -> None:
    order: list[str] = []
    engine = get_engine(api.settings.database_url)
    body = json.dumps({"title": "committed first"}).encode()

    def on_commit(_connection: Any) -> None:
        order.append("commit")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            order.append(f"response {message['status']}")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/folders", "raw_path": b"/v1/folders", "query_string": b"",
             "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"x-api-key", api.api_key.encode()), (b"content-length", str(len(body)).encode())]}
    event.listen(engine, "commit", on_commit)
    try:
        api.client.portal.call(api.client.app, scope, receive, send)  # type: ignore[union-attr]
    finally:
        event.remove(engine, "commit", on_commit)
    assert "response 200" in order, order
    assert order[-1] == "response 200", order  # no commit after the response started
