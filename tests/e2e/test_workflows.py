"""Workflows ("agents") through the official SDK against a real server: created from YAML, run with
parameters by the same workers and agent as tasks, on the test pages with the fake LLM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from skyvern import Skyvern
from skyvern.client.core.api_error import ApiError

from app.platform.security import sign_hex
from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import SiteServer
from tests.support.spec import assert_fields_match_spec, assert_matches_spec
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver

DOWNLOAD_PATH = "/download.html"
# The fields of Skyvern's workflow run status (WorkflowRunResponseBase, skyvern 1.0.56), which its workflow
# run webhook sends under the WorkflowRunResponse fields; the spec has no schema of it.
WORKFLOW_RUN_STATUS_FIELDS = frozenset({
    "workflow_id", "workflow_run_id", "agent_id", "agent_run_id", "status", "failure_reason",
    "failure_category", "retried_from_workflow_run_id", "retried_by_workflow_run_id", "proxy_location",
    "webhook_callback_url", "webhook_failure_reason", "totp_verification_url", "totp_identifier",
    "extra_http_headers", "cdp_connect_headers", "queued_at", "started_at", "finished_at", "created_at",
    "modified_at", "parameters", "screenshot_urls", "recording_url", "recording_urls", "recording_archived",
    "downloaded_files", "downloaded_file_urls", "outputs", "total_steps", "total_cost", "credits_used",
    "cached_credits_used", "task_v2", "workflow_title", "browser_session_id", "browser_profile_id",
    "browser_seed_source", "browser_sink_profile_id", "max_screenshot_scrolls", "browser_address",
    "run_with", "browser_type", "script_run", "script_id", "errors"})


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def download_steps() -> list[Any]:
    return [[call("download_file", ref={"role": "link", "name": "Download report"})],
            [call("complete", output=None, summary="downloaded")]]


def guestbook_yaml(token: str, sites: SiteServer) -> str:
    return f"""
title: Guest book {token}
workflow_definition:
  parameters:
    - key: name
      workflow_parameter_type: string
    - key: reports
      workflow_parameter_type: json
  blocks:
    - block_type: navigation
      label: sign
      url: {sites.url(FORM_PATH)}
      navigation_goal: "Sign the guest book as {{{{ name }}}} ({token}-sign)"
    - block_type: text_prompt
      label: summary
      prompt: "Did {{{{ name }}}} sign? The page said {{{{ sign_output }}}} ({token}-summary)"
      json_schema: {{type: object, properties: {{signed: {{type: boolean}}}}}}
    - block_type: for_loop
      label: each_report
      loop_over_parameter_key: reports
      loop_blocks:
        - block_type: file_download
          label: fetch
          url: "{{{{ current_value }}}}"
          navigation_goal: "Download report number {{{{ current_index }}}} ({token}-dl)"
"""


def test_a_workflow_created_from_yaml_runs_with_parameters(embedded: Stack, fake_llm: FakeLLM,
                                                          sites: SiteServer, receiver: Receiver,
                                                          token: str) -> None:
    fake_llm.script(f"{token}-sign", form_script("Ada"))
    fake_llm.script(f"{token}-summary", [{"content": json.dumps({"signed": True})}])
    fake_llm.script(f"{token}-dl", download_steps() * 2)

    reports = [sites.url(DOWNLOAD_PATH), sites.url(DOWNLOAD_PATH)]

    async def scenario() -> tuple[str, str]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(yaml_definition=guestbook_yaml(token, sites))
        wpid = workflow.workflow_permanent_id
        with pytest.raises(ApiError) as missing:
            await skyvern.run_workflow(wpid, parameters={"reports": []})
        assert missing.value.status_code == 400 and "'name' is required" in str(missing.value.body)
        with pytest.raises(ApiError) as wrong:
            await skyvern.run_workflow(wpid, parameters={"name": 7, "reports": []})
        assert wrong.value.status_code == 400 and "'name' must be a string" in str(wrong.value.body)

        done = await skyvern.run_workflow(wpid, parameters={"name": "Ada", "reports": reports},
                                          webhook_url=receiver.url, wait_for_completion=True, timeout=240)
        assert done.run_id.startswith("wr_") and done.status == "completed", done.failure_reason
        assert done.output is not None
        assert done.output["sign"] == GREETING
        assert done.output["summary"] == {"signed": True}
        assert [sorted(item) for item in done.output["each_report"]] == [["fetch"], ["fetch"]]
        assert done.downloaded_files is not None and len(done.downloaded_files) == 2
        assert done.recording_url and done.screenshot_urls

        runs = await skyvern.get_workflow_runs_by_id(wpid)
        assert [run.workflow_run_id for run in runs] == [done.run_id]
        assert done.run_id in [run.workflow_run_id for run in await skyvern.get_workflow_runs()]
        return done.run_id, wpid

    run_id, wpid = asyncio.run(scenario())
    with embedded.client() as client:
        body = client.get(f"/v1/runs/{run_id}").json()
    assert_matches_spec("WorkflowRunResponse", body)
    assert body["run_type"] == "workflow_run"
    hooks = [hook for hook in receiver.wait_for(1) if json.loads(hook.body).get("run_id") == run_id]
    assert len(hooks) == 1
    assert hooks[0].headers["x-skyvern-signature"] == sign_hex(embedded.api_key, hooks[0].body)
    _assert_skyvern_workflow_webhook(json.loads(hooks[0].body), body, wpid,
                                     {"name": "Ada", "reports": reports})


def _assert_skyvern_workflow_webhook(payload: dict[str, Any], run: dict[str, Any], wpid: str,
                                     parameters: dict[str, Any]) -> None:
    """The body Skyvern's clients get for a workflow run: its workflow run status under the run's
    GET /v1/runs fields, and none of a task's legacy fields."""
    assert_matches_spec("WorkflowRunResponse", payload)
    assert "status" in assert_fields_match_spec("WorkflowRun", payload)
    assert not WORKFLOW_RUN_STATUS_FIELDS - set(payload), sorted(WORKFLOW_RUN_STATUS_FIELDS - set(payload))
    assert not {"task_id", "prompt", "navigation_goal", "extracted_information"} & set(payload)
    assert set(run) <= set(payload)  # GET /v1/runs's fields win, as in Skyvern (links are signed anew)
    stable = ("run_id", "run_type", "status", "output", "created_at", "finished_at", "step_count",
              "run_request", "app_url", "run_with")
    assert {key: payload[key] for key in stable} == {key: run[key] for key in stable}
    assert payload["workflow_id"] == payload["agent_id"] == wpid
    assert payload["workflow_run_id"] == payload["agent_run_id"] == run["run_id"]
    assert payload["status"] == "completed" and payload["run_type"] == "workflow_run"
    assert payload["parameters"] == payload["run_request"]["parameters"] == parameters
    assert payload["run_request"]["workflow_id"] == wpid
    assert payload["outputs"] == payload["output"] and payload["outputs"]["summary"] == {"signed": True}
    assert payload["total_steps"] == payload["step_count"] and payload["total_steps"] > 0
    assert payload["downloaded_file_urls"] == [f["url"] for f in payload["downloaded_files"]]
    assert len(payload["downloaded_file_urls"]) == 2
    assert payload["recording_urls"] == [payload["recording_url"]]
    assert payload["webhook_callback_url"] == run["run_request"]["webhook_url"]
    assert payload["workflow_title"] == run["run_request"]["title"]


def test_a_failing_block_is_named_and_the_run_can_be_retried(embedded: Stack, fake_llm: FakeLLM,
                                                            sites: SiteServer, token: str) -> None:
    fake_llm.script(token, [[call("terminate", reason="no guest book today")]])
    definition = {"title": f"Fails {token}", "workflow_definition": {"parameters": [], "blocks": [
        {"block_type": "goto_url", "label": "open", "url": sites.url(FORM_PATH)},
        {"block_type": "navigation", "label": "sign", "navigation_goal": f"Sign the guest book ({token})"},
        {"block_type": "wait", "label": "never_reached", "wait_sec": 0},
    ]}}

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        failed = await skyvern.run_workflow(workflow.workflow_permanent_id, wait_for_completion=True,
                                            timeout=120)
        assert failed.status == "terminated"
        assert failed.failure_reason is not None and "Block 'sign' (navigation)" in failed.failure_reason
        assert "no guest book today" in failed.failure_reason
        assert failed.output is not None and "never_reached" not in failed.output

        fake_llm.script(token, form_script())
        retried = await skyvern.retry_workflow_run(failed.run_id)
        assert retried.run_id != failed.run_id
        again = await _wait(skyvern, retried.run_id)
        assert again.status == "completed", again.failure_reason

    asyncio.run(scenario())


def test_cancel_stops_a_workflow_at_its_current_block(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                      token: str) -> None:
    fake_llm.script(token, stall_script())
    definition = {"title": f"Stalls {token}", "workflow_definition": {"parameters": [], "blocks": [
        {"block_type": "navigation", "label": "stall", "url": sites.url(FORM_PATH),
         "navigation_goal": f"Wait ({token})"}]}}

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        started = await skyvern.run_workflow(workflow.workflow_permanent_id)
        async with asyncio.timeout(120):
            while (await skyvern.get_run(started.run_id)).status != "running":
                await asyncio.sleep(0.5)
        await skyvern.cancel_run(started.run_id)
        assert (await skyvern.get_run(started.run_id)).status == "canceled"

    asyncio.run(scenario())


def test_max_elapsed_time_minutes_times_a_run_out_in_its_block(embedded: Stack, sites: SiteServer,
                                                               token: str) -> None:
    """The run request's limit (1 minute) wins over the workflow's (30); the run ends timed_out in the
    long wait, naming the limit and that block (whose row ends timed_out too), keeps what the block
    before it produced, and still runs its finally block."""
    definition = {"title": f"Lingers {token}", "max_elapsed_time_minutes": 30, "workflow_definition": {
        "parameters": [], "finally_block_label": "cleanup", "blocks": [
            {"block_type": "goto_url", "label": "open", "url": sites.url(FORM_PATH)},
            {"block_type": "wait", "label": "linger", "wait_sec": 600},
            {"block_type": "wait", "label": "never_reached", "wait_sec": 0},
            {"block_type": "goto_url", "label": "cleanup", "url": sites.url(DOWNLOAD_PATH)}]}}

    async def scenario() -> tuple[dict[str, Any], Any]:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        wpid = workflow.workflow_permanent_id
        started = await skyvern.run_workflow(wpid, max_elapsed_time_minutes=1)
        ended = await asyncio.to_thread(embedded.wait_final, started.run_id, 240)
        listed = next(run for run in await skyvern.get_workflow_runs_by_id(wpid)
                      if run.workflow_run_id == started.run_id)
        return ended, listed

    ended, listed = asyncio.run(scenario())
    assert ended["status"] == "timed_out", ended["failure_reason"]
    assert "max elapsed runtime limit of 1 minute" in ended["failure_reason"]
    assert "block 'linger' (wait)" in ended["failure_reason"]
    assert ended["output"] == {"open": {"url": sites.url(FORM_PATH)},
                               "cleanup": {"url": sites.url(DOWNLOAD_PATH)}}
    assert ended["run_request"]["max_elapsed_time_minutes"] == 1
    assert listed.max_elapsed_time_minutes == 1
    with embedded.client() as client:
        timeline = client.get(f"/v1/runs/{ended['run_id']}/timeline").json()
    blocks = {entry["block"]["label"]: entry["block"] for entry in timeline if entry["type"] == "block"}
    assert set(blocks) == {"open", "linger", "cleanup"}
    assert blocks["open"]["status"] == blocks["cleanup"]["status"] == "completed"
    assert blocks["linger"]["status"] == "timed_out"
    assert blocks["linger"]["failure_reason"] == ended["failure_reason"]


def test_a_finally_block_after_the_deadline_has_a_short_limit_of_its_own(
        fake_llm: FakeLLM, sites: SiteServer, token: str, tmp_path: Path) -> None:
    """At the server's deadline (3 s here) the run stops in its block and runs its finally block, which
    stops at WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS (2 s here): the run stays timed_out for the
    deadline, the finally block's row says why it stopped."""
    definition = {"title": f"Lingers twice {token}", "workflow_definition": {
        "parameters": [], "finally_block_label": "cleanup", "blocks": [
            {"block_type": "wait", "label": "linger", "wait_sec": 600},
            {"block_type": "wait", "label": "cleanup", "wait_sec": 600}]}}
    env = {"WAYFARER_RUN_DEADLINE_SECONDS": "3", "WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS": "2"}
    with running_stack(tmp_path, llm_base_url=fake_llm.base_url, extra_env=env) as stack:

        async def scenario() -> dict[str, Any]:
            skyvern = Skyvern(base_url=stack.base_url, api_key=stack.api_key)
            workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
            started = await skyvern.run_workflow(workflow.workflow_permanent_id)
            return await asyncio.to_thread(stack.wait_final, started.run_id, 120)

        ended = asyncio.run(scenario())
        with stack.client() as client:
            timeline = client.get(f"/v1/runs/{ended['run_id']}/timeline").json()
    assert ended["status"] == "timed_out", ended["failure_reason"]
    assert ended["failure_reason"].startswith("The run hit its wall-clock deadline of 3 s "
                                              "(WAYFARER_RUN_DEADLINE_SECONDS) during block 'linger' (wait)")
    blocks = {entry["block"]["label"]: entry["block"] for entry in timeline if entry["type"] == "block"}
    assert blocks["linger"]["status"] == blocks["cleanup"]["status"] == "timed_out"
    assert "(WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS) during block 'cleanup' (wait)" in \
        blocks["cleanup"]["failure_reason"]


async def _wait(skyvern: Skyvern, run_id: str) -> Any:
    async with asyncio.timeout(120):
        while True:
            run = await skyvern.get_run(run_id)
            if run.status in ("completed", "failed", "terminated", "canceled", "timed_out"):
                return run
            await asyncio.sleep(0.5)


def test_a_celery_worker_runs_a_workflow(celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                         token: str) -> None:
    fake_llm.script(token, form_script("Grace"))
    definition = {"title": f"Celery {token}", "workflow_definition": {
        "parameters": [{"key": "name", "workflow_parameter_type": "string"}],
        "blocks": [{"block_type": "navigation", "label": "sign", "url": sites.url(FORM_PATH),
                    "navigation_goal": f"Sign the guest book as {{{{ name }}}} ({token})"}]}}

    async def scenario() -> Any:
        skyvern = Skyvern(base_url=celery_stack.base_url, api_key=celery_stack.api_key)
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        return await skyvern.run_workflow(workflow.workflow_permanent_id, parameters={"name": "Grace"},
                                          wait_for_completion=True, timeout=180)

    done = asyncio.run(scenario())
    assert done.status == "completed", done.failure_reason
    assert done.output == {"sign": {"greeting": "Thanks, Grace!"}}


def test_workflow_runs_in_a_browser_session_share_its_browser(embedded: Stack, fake_llm: FakeLLM,
                                                              sites: SiteServer, token: str) -> None:
    """One workflow run opens a page in the session; the next one's agent block starts on that page."""
    fake_llm.script(token, [[call("complete", output={"seen": True}, summary="seen")]])
    opener = {"title": f"Open {token}", "workflow_definition": {"parameters": [], "blocks": [
        {"block_type": "goto_url", "label": "open", "url": sites.url(FORM_PATH)}]}}
    looker = {"title": f"Look {token}", "workflow_definition": {"parameters": [], "blocks": [
        {"block_type": "navigation", "label": "look", "navigation_goal": f"Look at the page ({token})"}]}}

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        session_id = (await skyvern.create_browser_session(timeout=15)).browser_session_id
        for definition in (opener, looker):
            workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
            run = await skyvern.run_workflow(workflow.workflow_permanent_id, browser_session_id=session_id)
            assert run.browser_session_id == session_id
            final = await asyncio.to_thread(embedded.wait_final, run.run_id)
            assert final["status"] == "completed", final["failure_reason"]
        await skyvern.close_browser_session(session_id)

    asyncio.run(scenario())
    assert sites.url(FORM_PATH) in last_user_text(fake_llm.requests_for(token)[0])
