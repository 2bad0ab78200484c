"""Cancel (queued and running), the step budget and a planner stuck in a loop, through the embedded
server."""

from __future__ import annotations

import time

from tests.e2e.flows import FORM_PATH, stall_script
from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import SiteServer
from tests.support.stack import Stack
from tests.support.webhook_receiver import Receiver


def _wait_status(stack: Stack, run_id: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while client.get(f"/v1/runs/{run_id}").json()["status"] != status:
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.1)


def test_cancel_running_then_queued(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                    receiver: Receiver, token: str) -> None:
    # the embedded stack has 2 slots: two stalling runs hold them, a third stays queued
    runs = []
    for n in range(3):
        fake_llm.script(f"{token}-{n}", stall_script())
        runs.append(embedded.create_run(prompt=f"Wait ({token}-{n})", url=sites.url(FORM_PATH),
                                        webhook_url=receiver.url)["run_id"])
    _wait_status(embedded, runs[0], "running")
    _wait_status(embedded, runs[1], "running")
    with embedded.client() as client:
        assert client.get(f"/v1/runs/{runs[2]}").json()["status"] == "queued"

        assert client.post(f"/v1/runs/{runs[2]}/cancel").status_code == 200
        assert client.get(f"/v1/runs/{runs[2]}").json()["status"] == "canceled"

        started = time.monotonic()
        assert client.post(f"/v1/runs/{runs[0]}/cancel").status_code == 200
        assert embedded.wait_final(runs[0], timeout=10)["status"] == "canceled"
        assert time.monotonic() - started < 8
        canceled = client.get(f"/v1/runs/{runs[0]}").json()
        assert canceled["recording_url"], "a canceled run still keeps its recording"

        again = client.post(f"/v1/runs/{runs[0]}/cancel")
        assert again.status_code == 400 and "canceled" in again.json()["detail"]

        bulk = client.post("/v1/runs/cancel", json={"run_ids": [runs[1], runs[0]]}).json()
        assert bulk == {"cancelled": [runs[1]], "failed": [runs[0]]}
    hooks = receiver.wait_for(3)
    assert sorted(h.body.count(b'"status":"canceled"') > 0 for h in hooks) == [True, True, True]


def test_step_budget_ends_timed_out_with_reason(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                               token: str) -> None:
    fake_llm.script(token, stall_script())
    created = embedded.create_run(prompt=f"Never done ({token})", url=sites.url(FORM_PATH), max_steps=2)
    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "timed_out"
    assert "2 steps" in run["failure_reason"]
    assert run["step_count"] == 2


def test_a_planner_that_repeats_itself_is_warned_then_the_run_ends_terminated(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    same = [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada"},
             "reasoning": "Type the name."}]
    fake_llm.script(token, [same] * 24)  # it used to type 24 times, until the step limit
    created = embedded.create_run(prompt=f"Sign the guest book as Ada ({token})", url=sites.url(FORM_PATH),
                                  max_steps=24)
    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "terminated", run["failure_reason"]
    assert run["failure_reason"].startswith(
        "The model was stuck in a loop: it repeated input_text textbox 'Name' 4 times in a row with no "
        "change on the page, even after being told (step 5).")
    # typed once (the field changed), then 3 times on the unchanged page: warned; once more: ended
    prompts = [last_user_text(body) for body in fake_llm.requests_for(token)]
    warned = ["Warning: you did the same thing (input_text textbox 'Name') 3 times in a row" in prompt
              for prompt in prompts]
    assert warned == [False, False, False, False, True]
