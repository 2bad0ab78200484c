"""The official Skyvern Python SDK, unchanged, against a real Wayfarer server (only base_url set)."""

from __future__ import annotations

import asyncio
from typing import Any

from skyvern import Skyvern

from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack
from tests.support.webhook_receiver import Receiver


def test_official_sdk_round_trip(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver,
                                 token: str) -> None:
    fake_llm.script(token, form_script())
    fake_llm.script(f"{token}-stall", stall_script())

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        done = await skyvern.run_task(prompt=f"Sign the guest book as Ada ({token})",
                                      url=sites.url(FORM_PATH), webhook_url=receiver.url,
                                      wait_for_completion=True, timeout=120)
        assert done.status == "completed"
        assert done.output == GREETING

        fetched = await skyvern.get_run(done.run_id)
        assert fetched.run_id == done.run_id and fetched.run_type == "task_v1"
        artifacts = await skyvern.get_run_artifacts(done.run_id, artifact_type="recording")
        assert [a.artifact_type for a in artifacts] == ["recording"]

        replay = await skyvern.retry_run_webhook(done.run_id)
        assert replay.status_code == 200 and replay.run_id == done.run_id

        listed = await skyvern.get_runs_v2(page=1, page_size=50, status=["completed"])
        assert done.run_id in [item.run_id for item in listed]

        stalled = await skyvern.run_task(prompt=f"Wait ({token}-stall)", url=sites.url(FORM_PATH),
                                         webhook_url=receiver.url)
        await skyvern.cancel_run(stalled.run_id)
        assert (await skyvern.get_run(stalled.run_id)).status == "canceled"

    asyncio.run(scenario())
    assert len(receiver.wait_for(3)) >= 3  # completed, the replay, canceled


def test_run_workflow_max_steps_override_limits_each_block(embedded: Stack, fake_llm: FakeLLM,
                                                           sites: SiteServer, token: str) -> None:
    """run_workflow(max_steps_override=N) and retry_workflow_run send the x-max-steps-override header:
    each agent block gets N steps, over the block's own max_steps_per_run (Skyvern's order)."""
    fake_llm.script(token, stall_script())
    definition = {"title": "Stalls", "workflow_definition": {"blocks": [
        {"block_type": "navigation", "label": "busy", "url": sites.url(FORM_PATH), "max_steps_per_run": 20,
         "navigation_goal": f"Keep busy ({token})"}]}}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)
        started = await skyvern.run_workflow(workflow.workflow_permanent_id, max_steps_override=2)
        first = embedded.wait_final(started.run_id)
        retried = await skyvern.retry_workflow_run(started.run_id)  # keeps the run's override
        return first, embedded.wait_final(retried.run_id)

    for run in asyncio.run(scenario()):
        assert run["step_count"] == 2, (run["status"], run["failure_reason"])
        assert run["run_request"]["max_steps_override"] == 2
