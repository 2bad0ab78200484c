"""The live sockets' doors: credentials, another organization's run (404 as for a missing one), tokens
bound to one run that expire and cannot be forged, and no input socket unless the viewer holds the
paused run; input is validated."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.accounts.service import create_api_key, create_organization
from app.db.engine import session_scope
from app.db.models import Run
from app.live import access
from app.platform.settings import Settings
from tests.e2e.flows import FORM_PATH, stall_script
from tests.e2e.live_client import LiveClient, ws_url
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("live-security"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_MAX_CONCURRENT_RUNS": "2"}) as running:
        yield running


def _handshake_status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with connect(url, additional_headers=headers or {}) as socket:
            socket.recv(timeout=10)
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def _database(stack: Stack) -> str:
    return f"sqlite:///{(Path(stack.env['WAYFARER_DATA_DIR']) / 'wayfarer.db').resolve()}"


def _signed(stack: Stack, payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    settings = Settings(secret_key=stack.env["WAYFARER_SECRET_KEY"])
    return f"{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{access._signature(settings, raw)}"


def test_live_sockets_admit_only_the_run_organization_with_valid_credentials(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, stall_script())
    run_id = stack.create_run(prompt=f"Keep busy ({token})", url=sites.url(FORM_PATH))["run_id"]
    fake_llm.script(f"{token}-b", stall_script())
    other_run = stack.create_run(prompt=f"Keep busy too ({token}-b)", url=sites.url(FORM_PATH))["run_id"]
    with session_scope(_database(stack)) as s:
        organization_id = s.get(Run, run_id).organization_id  # type: ignore[union-attr]
        foreign_key = create_api_key(s, create_organization(s, "other").id)
        colleague_key = create_api_key(s, organization_id)
    live = ws_url(stack.base_url, f"/v1/runs/{run_id}/live")
    keys = ws_url(stack.base_url, f"/v1/runs/{run_id}/live/input")
    mine = {"x-api-key": stack.api_key}

    assert _handshake_status(live) == 403
    assert _handshake_status(live, {"x-api-key": "wf_not_a_key"}) == 403
    assert _handshake_status(live, {"x-api-key": foreign_key}) == 404
    assert _handshake_status(keys, {"x-api-key": foreign_key}) == 404
    assert _handshake_status(ws_url(stack.base_url, "/v1/runs/tsk_1/live"), mine) == 404
    with stack.client() as client:
        foreign = client.post(f"/v1/runs/{run_id}/live_token", headers={"x-api-key": foreign_key})
        assert foreign.status_code == 404
        issued = client.post(f"/v1/runs/{run_id}/live_token").json()
    assert issued["live_url"].startswith("ws://") and issued["expires_at"] > time.time()
    assert _handshake_status(issued["live_url"]) == 101
    assert _handshake_status(f"{live}?token={issued['token']}") == 101
    other_live = ws_url(stack.base_url, f"/v1/runs/{other_run}/live")
    assert _handshake_status(f"{other_live}?token={issued['token']}") == 403  # bound to its run
    forged = issued["token"][:-4] + ("0000" if not issued["token"].endswith("0000") else "1111")
    assert _handshake_status(f"{live}?token={forged}") == 403
    key_id = json.loads(base64.urlsafe_b64decode(issued["token"].split(".")[0] + "=="))["k"]
    expired = _signed(stack, {"t": f"run:{run_id}", "o": organization_id, "k": key_id,
                              "e": int(time.time()) - 1})
    assert _handshake_status(f"{live}?token={expired}") == 403
    fresh = _signed(stack, {"t": f"run:{run_id}", "o": organization_id, "k": key_id,
                            "e": int(time.time()) + 60})
    assert _handshake_status(f"{live}?token={fresh}") == 101

    assert _handshake_status(keys, mine) == 409  # nobody holds it: no input socket
    with LiveClient(stack.base_url, run_id, stack.api_key) as viewer:
        viewer.command("take_control")
        viewer.pump(lambda: bool(viewer.status().get("paused") and viewer.status().get("you_hold")))
        assert _handshake_status(keys, {"x-api-key": colleague_key}) == 409  # held by another key
        with LiveClient(stack.base_url, run_id, colleague_key) as colleague:
            colleague.command("give_back")
            colleague.pump(lambda: bool(colleague.errors))
            assert "another API key" in colleague.errors[0]
        with connect(keys, additional_headers=mine) as socket:
            for event, refusal in (
                    ({"type": "mouse", "action": "click", "x": -1, "y": 3}, "greater than or equal to 0"),
                    ({"type": "mouse", "action": "click", "x": 10, "y": 721}, "outside the 1280x720"),
                    ({"type": "key", "key": "rm -rf /; echo"}, "at most 12 characters"),
                    ({"type": "key", "key": "Hyper"}, "not a known key"),
                    ({"type": "text", "text": "x" * 1001}, "at most 1000 characters"),
                    ({"type": "eval", "script": "alert(1)"}, "does not match any of the expected tags")):
                socket.send(json.dumps(event))
                assert refusal in json.loads(socket.recv(timeout=10))["detail"], event
        viewer.command("give_back")
        viewer.pump(lambda: viewer.status().get("paused") is False)
    assert _handshake_status(keys, mine) == 409  # given back: no input socket again
    with stack.client() as client:
        for run in (run_id, other_run):
            assert client.post(f"/v1/runs/{run}/cancel").status_code == 200
