"""ask_human end to end with the fake LLM: the run pauses with the model's reason (shown to viewers), the
operator's notice URL gets a signed notice, a person takes control and gives it back and the run goes on;
nobody within WAYFARER_MAX_PAUSE_SECONDS ends it terminated with the reason."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.flows import FORM_PATH
from tests.e2e.live_client import LiveClient
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver, webhook_receiver

MAX_PAUSE_S = 6
REASON = "Solve the CAPTCHA on the page, then give control back."


@pytest.fixture(scope="module")
def notices() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM, notices: Receiver) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("ask-human"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_MAX_PAUSE_SECONDS": str(MAX_PAUSE_S), "WAYFARER_PAUSE_NOTICE_URL": notices.url,
            "WAYFARER_APP_URL": "http://wayfarer.example"}) as running:
        yield running


def _asks(then: list[Any]) -> list[Any]:
    return [[{"name": "ask_human", "args": {"reason": REASON}}], *then]


def test_the_run_waits_for_a_person_and_goes_on_after_give_back(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, notices: Receiver, token: str) -> None:
    fake_llm.script(token, _asks([[{"name": "complete", "args": {"output": {"ok": True}, "summary": "ok"}}]]))
    run_id = stack.create_run(prompt=f"Sign up ({token})", url=sites.url(FORM_PATH))["run_id"]
    with LiveClient(stack.base_url, run_id, stack.api_key) as live:
        live.pump(lambda: live.status().get("paused") is True)
        assert live.status()["reason"] == REASON and live.status()["held"] is False
        (notice,) = [hook for hook in notices.wait_for(1)
                     if json.loads(hook.body)["run_id"] == run_id]
        body = json.loads(notice.body)
        assert body == {"event": "run.waiting_for_person", "run_id": run_id,
                        "organization_id": body["organization_id"], "status": "paused", "reason": REASON,
                        "app_url": f"http://wayfarer.example/runs/{run_id}"}
        expected = hmac.new(stack.api_key.encode(), notice.body, hashlib.sha256).hexdigest()
        assert notice.headers["x-skyvern-signature"] == expected
        asked = len(fake_llm.requests_for(token))
        live.command("take_control")
        live.pump(lambda: live.status().get("you_hold") is True)
        live.command("give_back")
        live.pump(lambda: live.status().get("final") is True, timeout=60)
    final = stack.wait_final(run_id)
    assert final["status"] == "completed" and final["output"] == {"ok": True}
    assert len(fake_llm.requests_for(token)) == asked + 1
    history = str(fake_llm.requests_for(token)[-1]["messages"])
    assert f"waiting for a person: {REASON}" in history and "a person had control" in history


def test_nobody_comes_and_the_run_ends_terminated_with_the_reason(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, _asks([[{"name": "complete", "args": {"output": None, "summary": "never"}}]]))
    run_id = stack.create_run(prompt=f"Sign up alone ({token})", url=sites.url(FORM_PATH))["run_id"]
    final = stack.wait_final(run_id, timeout=MAX_PAUSE_S + 60)
    assert final["status"] == "terminated"
    assert REASON in final["failure_reason"] and "WAYFARER_MAX_PAUSE_SECONDS" in final["failure_reason"]
    assert len(fake_llm.requests_for(token)) == 1
