"""Artifact listing and bytes (signed links, Range), and the run timeline."""

from __future__ import annotations

from datetime import timedelta

from skyvern.client.types import Artifact as SdkArtifact
from skyvern.client.types import WorkflowRunTimeline

from app.db.engine import session_scope
from app.db.models import Action, Step, WebhookAttempt, utcnow
from app.runs import ids
from tests.integration.api.conftest import Api


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


def test_timeline_orders_steps_actions_and_webhook_attempts(api: Api) -> None:
    run_id = api.create()["run_id"]
    start = utcnow() - timedelta(minutes=1)
    step_id = ids.new_id(ids.STEP)
    with session_scope(api.settings.database_url) as s:
        s.add(Step(id=step_id, run_id=run_id, index=0, url="http://127.0.0.1:9/", created_at=start,
                   modified_at=start))
        s.flush()
        for n, kind in enumerate(("click", "input_text")):
            at = start + timedelta(seconds=n + 1)
            s.add(Action(id=ids.new_id(ids.ACTION), run_id=run_id, step_id=step_id, index=n, action_type=kind,
                         arguments={"ref": "e1"}, reasoning="why", succeeded=True, outcome="done",
                         created_at=at, modified_at=at))
        later = start + timedelta(seconds=30)
        s.add(WebhookAttempt(id=ids.new_id(ids.WEBHOOK_ATTEMPT), run_id=run_id, attempt=1,
                             url="http://127.0.0.1:9/hook", status_code=500, latency_ms=3, error="HTTP 500",
                             created_at=later, modified_at=later))
    items = api.client.get(f"/v1/runs/{run_id}/timeline", headers=api.headers()).json()
    parsed = [WorkflowRunTimeline.model_validate(item) for item in items]
    assert [item.type for item in parsed] == ["step", "webhook_attempt"]
    assert [child["action"]["action_type"] for child in items[0]["children"]] == ["click", "input_text"]
    assert items[0]["step"]["step_id"] == step_id
    assert items[1]["webhook_attempt"]["status_code"] == 500
