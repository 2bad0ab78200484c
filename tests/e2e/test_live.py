"""The live view through its sockets, embedded and with a Celery worker (frames through Redis): frames
change while the run works, a person takes control, types into the page while the agent waits, gives
control back, and the run completes with what they typed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect

from app.live.messages import frame_header
from tests.e2e.flows import FORM_PATH
from tests.e2e.live_client import LiveClient, ws_url
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack

TYPED = "Grace Hopper"
NAME_VALUE = r'textbox "Name"[^\n]*: ([^\n]+)'


def takeover_script() -> list[Any]:
    """The agent types a first name, then waits (when a person may take over), then reports the field."""
    return [
        [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada"}}],
        *[[{"name": "wait", "args": {"seconds": 1}}] for _ in range(8)],
        [{"name": "complete", "args": {"output": {"name": {"match": NAME_VALUE}}, "summary": "read"}}],
    ]


def take_over_and_type(stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, takeover_script())
    run_id = stack.create_run(prompt=f"Fill the guest book ({token})", url=sites.url(FORM_PATH))["run_id"]
    with LiveClient(stack.base_url, run_id, stack.api_key) as live:
        live.pump(lambda: live.status().get("status") == "running" and bool(live.frames))
        live.command("take_control")
        live.pump(lambda: live.status().get("paused") is True and live.status().get("you_hold") is True)
        asked = len(fake_llm.requests_for(token))
        with LiveClient(stack.base_url, run_id, stack.api_key) as late:  # the page is idle: no new frames
            late.pump(lambda: bool(late.frames) and bool(late.statuses), timeout=10)  # yet it sees the last
            assert late.status()["held"] is True
        with live.input_socket() as keys:
            keys.send(json.dumps({"type": "mouse", "action": "click", "x": 5, "y": 5}))  # off the fields
            keys.send(json.dumps({"type": "key", "key": "Tab"}))  # the Name field: the first one
            keys.send(json.dumps({"type": "key", "key": "a", "modifiers": ["Control"]}))
            keys.send(json.dumps({"type": "text", "text": TYPED}))
            keys.send(json.dumps({"type": "mouse", "action": "click", "x": 99999, "y": 5}))
            assert "outside the 1280x720 viewport" in json.loads(keys.recv(timeout=10))["detail"]
        live.pump(lambda: any(int(str(header["inputs"])) >= 4 for header in live.headers()))  # it landed
        assert len(fake_llm.requests_for(token)) == asked, "the agent acted while a person held control"
        live.command("give_back")
        live.pump(lambda: live.status().get("final") is True, timeout=60)
    assert len({frame[-4000:] for frame in live.frames}) >= 3  # the view changed as the page did
    assert any(str(header["url"]).endswith(FORM_PATH) for header in live.headers())
    final = stack.wait_final(run_id)
    assert final["status"] == "completed", final["failure_reason"]
    assert final["output"] == {"name": TYPED}
    history = str(fake_llm.requests_for(token)[-1]["messages"])
    assert "a person had control of the browser" in history


def test_takeover_in_the_embedded_server(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                         token: str) -> None:
    take_over_and_type(embedded, fake_llm, sites, token)


@pytest.mark.redis
@pytest.mark.postgres
def test_takeover_on_a_celery_worker(celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                     token: str) -> None:
    take_over_and_type(celery_stack, fake_llm, sites, token)


def test_a_browser_session_shows_its_newest_tab_live(embedded: Stack, sites: SiteServer) -> None:
    with embedded.client() as client:
        session_id = client.post("/v1/browser_sessions", json={"url": sites.url(FORM_PATH)}).json()[
            "browser_session_id"]
        try:
            url = ws_url(embedded.base_url, f"/v1/browser_sessions/{session_id}/live")
            with connect(url, additional_headers={"x-api-key": embedded.api_key}, max_size=None) as socket:
                headers: list[dict[str, object]] = []
                statuses: list[dict[str, Any]] = []
                while not (headers and any(str(h["url"]).endswith(FORM_PATH) for h in headers)):
                    message = socket.recv(timeout=30)
                    if isinstance(message, bytes):
                        headers.append(frame_header(message))
                    else:
                        statuses.append(json.loads(message))
                assert statuses and statuses[-1]["kind"] == "session"
        finally:
            client.post(f"/v1/browser_sessions/{session_id}/close")
