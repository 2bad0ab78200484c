"""Artifact listing and bytes (signed links, Range), the run timeline (Skyvern's shape) and webhook
attempts."""

from __future__ import annotations

import json
from datetime import timedelta

from skyvern.client import Skyvern
from skyvern.client.types import Artifact as SdkArtifact
from skyvern.client.types import WorkflowRunTimeline

from app.db.engine import session_scope
from app.db.models import Action, RunEvent, Step, WebhookAttempt, utcnow
from app.runs import ids
from tests.integration.api.conftest import Api
from tests.support.spec import assert_matches_spec


def test_artifacts_list_filter_and_content(api: Api) -> None:
    run_id = api.create()["run_id"]
    shot = api.add_artifact(run_id, "screenshot_final", b"\xff\xd8final", "image/jpeg")
    log_id = api.add_artifact(run_id, "browser_console_log", b"0123456789", "text/plain")
    listed = api.client.get(f"/v1/runs/{run_id}/artifacts?artifact_type=screenshot_final"
                            "&artifact_type=browser_console_log", headers=api.headers()).json()
    assert {a["artifact_id"] for a in listed} == {shot, log_id}
    for item in listed:
        SdkArtifact.model_validate(item)
    only = api.client.get(f"/v1/runs/{run_id}/artifacts?artifact_type=screenshot_final",
                          headers=api.headers()).json()
    assert [a["artifact_id"] for a in only] == [shot]

    with_key = api.client.get(f"/v1/artifacts/{log_id}/content", headers=api.headers())
    assert with_key.status_code == 200 and with_key.content == b"0123456789"
    assert with_key.headers["content-type"].startswith("text/plain")
    assert with_key.headers["accept-ranges"] == "bytes"

    signed = next(a["signed_url"] for a in listed if a["artifact_id"] == log_id)
    assert api.client.get(signed).content == b"0123456789"  # no key needed
    partial = api.client.get(signed, headers={"Range": "bytes=2-5"})
    assert partial.status_code == 206 and partial.content == b"2345"
    assert partial.headers["content-range"] == "bytes 2-5/10"
    assert api.client.get(signed, headers={"Range": "bytes=-3"}).content == b"789"
    unsatisfiable = api.client.get(signed, headers={"Range": "bytes=50-"})
    assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == "bytes */10"

    tampered = signed.replace("signature=", "signature=0")
    assert api.client.get(tampered).status_code == 403
    assert api.client.get(tampered).json() == {"detail": "Invalid or expired artifact URL"}
    other_artifact = signed.replace(log_id, shot)
    assert api.client.get(other_artifact).status_code == 403
    expired = signed.split("?")[0] + "?expires=1&signature=" + signed.split("signature=")[1]
    assert api.client.get(expired).status_code == 403
    assert api.client.get(f"/v1/artifacts/{log_id}/content").status_code == 403


def _record_run(api: Api, run_id: str) -> str:
    """Two steps with their actions, a takeover between them and a webhook attempt, as a run leaves them."""
    start = utcnow() - timedelta(minutes=1)
    api.set_run(run_id, status="completed", output={"greeting": "hi"}, started_at=start,
                finished_at=start + timedelta(seconds=30), step_count=2)
    at = [start + timedelta(seconds=n) for n in range(12)]
    steps = [ids.new_id(ids.STEP), ids.new_id(ids.STEP)]
    with session_scope(api.settings.database_url) as s:
        for index, (began, ended) in enumerate(((at[1], at[3]), (at[6], at[8]))):
            s.add(Step(id=steps[index], run_id=run_id, index=index, url=f"http://127.0.0.1:9/{index}",
                       prompt_tokens=900, completion_tokens=40, llm_calls=1, llm_cost=0.0027,
                       created_at=began, modified_at=ended))
        s.flush()
        for step_id, index, kind, arguments, when in (
                (steps[0], 0, "click", {"ref": "e1"}, at[2]),
                (steps[0], 1, "input_text", {"ref": "e2", "text": "Ada"}, at[2]),
                (steps[1], 0, "ask_human", {"reason": "a CAPTCHA"}, at[7]),
                (steps[1], 1, "complete", {"output": {"greeting": "hi"}}, at[7])):
            s.add(Action(id=ids.new_id(ids.ACTION), run_id=run_id, step_id=step_id, index=index,
                         action_type=kind, arguments=arguments, reasoning=f"why {kind}",
                         succeeded=kind != "input_text", outcome=f"{kind} done", created_at=when,
                         modified_at=when))
        s.add(RunEvent(id=ids.new_id(ids.RUN_EVENT), run_id=run_id, kind="control_taken", key_id="key_1",
                       detail="checking", created_at=at[4], modified_at=at[4]))
        s.add(RunEvent(id=ids.new_id(ids.RUN_EVENT), run_id=run_id, kind="control_given_back", key_id="key_1",
                       created_at=at[5], modified_at=at[5]))
        s.add(WebhookAttempt(id=ids.new_id(ids.WEBHOOK_ATTEMPT), run_id=run_id, attempt=1,
                             url="http://127.0.0.1:9/hook", status_code=500, latency_ms=3, error="HTTP 500",
                             created_at=at[11], modified_at=at[11]))
    return steps[0]


def test_timeline_is_skyverns_block_with_step_thoughts_and_hand_overs(api: Api) -> None:
    run_id = api.create(prompt="Sign the guest book", url="http://127.0.0.1:9/")["run_id"]
    first_step = _record_run(api, run_id)
    items = api.client.get(f"/v1/runs/{run_id}/timeline", headers=api.headers()).json()
    assert_matches_spec("WorkflowRunTimeline", items)
    [entry] = [WorkflowRunTimeline.model_validate(item) for item in items]
    assert entry.type == "block" and entry.block is not None
    block = entry.block
    assert (block.block_type, block.status, block.output, block.url, block.navigation_goal) == (
        "task", "completed", {"greeting": "hi"}, "http://127.0.0.1:9/", "Sign the guest book")
    assert block.duration == 30.0
    assert block.task_id == block.workflow_run_id == run_id and block.final_url == "http://127.0.0.1:9/1"
    assert [(a.action_type, a.status, a.step_order, a.action_order) for a in block.actions] == [
        ("click", "completed", 0, 0), ("input_text", "failed", 0, 1), ("null_action", "completed", 1, 0),
        ("complete", "completed", 1, 1)]
    assert block.actions[1].text == "Ada" and block.actions[0].element_id == "e1"
    assert block.actions[2].description == "ask_human: ask_human done"  # Skyvern has no such action type
    thoughts = [child.thought for child in entry.children]
    assert [child.type for child in entry.children] == ["thought"] * 4
    assert [(t.thought_type, t.thought_id == first_step) for t in thoughts if t] == [
        ("plan", True), ("metadata", False), ("metadata", False), ("plan", False)]
    plan = thoughts[0]
    assert plan is not None and plan.thought == "why click\nwhy input_text"
    assert (plan.input_token_count, plan.output_token_count, plan.thought_cost, plan.last_llm_model) == (
        900, 40, 0.0027, api.settings.llm_model)
    taken = thoughts[1]
    assert taken is not None and taken.thought == "A person took control of the browser: checking"
    assert taken.output == {"event": "control_taken", "key_id": "key_1", "detail": "checking"}
    assert "webhook" not in json.dumps(items)

    sdk = Skyvern(base_url=str(api.client.base_url), api_key=api.api_key, httpx_client=api.client)
    assert sdk.get_run_timeline(run_id)[0].block.actions[0].action_type == "click"  # type: ignore[union-attr]


def test_webhook_attempts_have_their_own_route(api: Api) -> None:
    run_id = api.create()["run_id"]
    _record_run(api, run_id)
    attempts = api.client.get(f"/v1/runs/{run_id}/webhook_attempts", headers=api.headers()).json()
    assert [(a["attempt"], a["status_code"], a["error"], a["replay"]) for a in attempts] == [
        (1, 500, "HTTP 500", False)]
    missing = api.client.get("/v1/runs/tsk_1/webhook_attempts", headers=api.headers())
    assert (missing.status_code, missing.json()) == (404, {"detail": "Run not found tsk_1"})
