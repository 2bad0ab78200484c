"""What a route writes is committed before its response leaves: a client told "created" can use the
thing at once (CI saw a workflow created, then run, answered 404), and a commit that fails is the
request's error, not a write lost behind a 200."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Folder
from tests.integration.api.conftest import Api


def test_the_write_is_visible_to_others_when_the_response_starts(api: Api) -> None:
    """The folder is looked up from another session at the moment the response starts."""
    title = "committed before the answer"
    body = json.dumps({"title": title}).encode()
    seen: list[tuple[int, int]] = []  # (status, folders with that title another session finds then)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            with session_scope(api.settings.database_url) as s:
                found = len(s.scalars(select(Folder.id).where(Folder.title == title)).all())
            seen.append((message["status"], found))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/folders", "raw_path": b"/v1/folders", "query_string": b"",
             "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"x-api-key", api.api_key.encode()), (b"content-length", str(len(body)).encode())]}
    api.client.portal.call(api.client.app, scope, receive, send)  # type: ignore[union-attr]
    assert seen == [(200, 1)]
