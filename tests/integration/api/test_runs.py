"""Creating, reading, listing and cancelling task runs through the HTTP API."""

from __future__ import annotations

from pathlib import Path

import redis
from fastapi.testclient import TestClient
from skyvern.client.types import BulkCancelRunsResponse, TaskRunListItem
from skyvern.client.types.get_run_response import GetRunResponse_TaskV1
from skyvern.client.types.task_run_response import TaskRunResponse
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Run, WebhookDelivery
from app.main import create_app
from app.runs.lifecycle import RunStatus
from tests.integration.api.conftest import Api, make_settings
from tests.support.services import free_port

SDK_ALL_NULL = {"prompt": "Find the greeting", "url": "http://127.0.0.1:9/", "engine": "skyvern-1.0",
                "title": None, "proxy_location": None, "data_extraction_schema": None,
                "error_code_mapping": None, "max_steps": None, "webhook_url": None, "totp_identifier": None,
                "totp_url": None, "browser_session_id": None, "model": None, "extra_http_headers": None,
                "publish_workflow": False, "include_action_history_in_verification": None,
                "max_screenshot_scrolls": None, "browser_address": None}


def test_sdk_style_all_null_body_creates_a_queued_run_and_enqueues_it(api: Api) -> None:
    response = api.submit(SDK_ALL_NULL)
    assert response.status_code == 200, response.text
    body = response.json()
    created = TaskRunResponse.model_validate(body)
    assert created.run_id.startswith("tsk_") and created.run_id[4:].isdigit()
    assert body["status"] == "queued" and body["run_type"] == "task_v1"
    assert body["run_request"]["prompt"] == "Find the greeting"
    assert body["run_request"]["engine"] == "skyvern-1.0"
    assert body["errors"] == []
    assert body["app_url"] == f"http://ui.example/runs/{created.run_id}"
    with session_scope(api.settings.database_url) as s:
        run = s.get(Run, created.run_id)
        assert run is not None and run.max_steps == api.settings.default_max_steps
        assert run.webhook_key_encrypted and api.api_key not in run.webhook_key_encrypted
    queued = redis.Redis.from_url(api.settings.redis_url or "").lrange("wayfarer.runs", 0, -1)
    assert any(created.run_id.encode() in message for message in queued)


def test_minimal_fern_body_and_engines(api: Api) -> None:
    assert api.create(prompt="p", url="example.com")["run_request"]["url"] == "https://example.com"
    assert api.create(engine="skyvern-2.0")["run_type"] == "task_v2"
    assert api.create(engine="skyvern-3.0", max_steps=3)["run_type"] == "task_v3"
    bad = api.submit({"prompt": "p", "engine": "openai-cua"})
    assert bad.status_code == 400 and "openai-cua" in bad.json()["detail"]


def test_bad_url_scheme_and_missing_prompt_are_422_naming_the_field(api: Api) -> None:
    for url in ("file:///etc/passwd", "javascript:alert(1)", "chrome://settings"):
        response = api.submit({"prompt": "p", "url": url})
        assert response.status_code == 422, url
        assert response.json()["detail"][0]["loc"] == ["body", "url"]
    missing = api.submit({"url": "https://a.test"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "prompt"]
    hook = api.submit({"prompt": "p", "webhook_url": "ftp://x"})
    assert hook.status_code == 422 and hook.json()["detail"][0]["loc"] == ["body", "webhook_url"]


def test_a_proxy_location_without_a_proxy_is_refused_naming_the_setting(api: Api) -> None:
    # it used to be recorded and ignored (a warning in errors): the run went out directly
    for location in ("RESIDENTIAL_GB", {"country": "GB"}):
        refused = api.submit({"prompt": "p", "proxy_location": location})
        assert refused.status_code == 400 and "WAYFARER_PROXY_LOCATIONS" in refused.json()["detail"]
    for direct in ("NONE", None):  # what the official SDKs send when the caller sets nothing is null
        assert api.create(proxy_location=direct)["errors"] == []


def test_get_run_parses_with_the_sdk_and_shows_artifact_links(api: Api) -> None:
    run_id = api.create(webhook_url="http://127.0.0.1:9/hook")["run_id"]
    shots = [api.add_artifact(run_id, "screenshot_action", f"shot{n}".encode(), "image/jpeg")
             for n in range(4)]
    api.add_artifact(run_id, "recording", b"\x1a\x45\xdf\xa3video", "video/webm")
    api.add_artifact(run_id, "download", b"report", "application/pdf", "report.pdf")
    api.set_run(run_id, output={"greeting": "hi"}, step_count=2)
    body = api.client.get(f"/v1/runs/{run_id}", headers=api.headers()).json()
    parsed = GetRunResponse_TaskV1.model_validate(body)
    assert parsed.output == {"greeting": "hi"} and parsed.step_count == 2
    assert len(body["screenshot_urls"]) == 3
    assert [url.split("/v1/artifacts/")[1].split("/")[0] for url in body["screenshot_urls"]] == shots[:0:-1]
    (download,) = body["downloaded_files"]
    assert download["filename"] == "report.pdf" and download["file_size"] == 6
    fetched = api.client.get(download["url"])  # no API key: the link itself is the credential
    assert fetched.status_code == 200 and fetched.content == b"report"
    assert api.client.get(body["recording_url"]).content.startswith(b"\x1a\x45\xdf\xa3")
    missing = api.client.get("/v1/runs/tsk_1", headers=api.headers())
    assert missing.status_code == 404 and missing.json() == {"detail": "Run not found tsk_1"}


def test_list_runs_with_repeated_query_keys(api: Api) -> None:
    first = api.create(title="alpha list run")["run_id"]
    second = api.create(title="beta list run", engine="skyvern-2.0")["run_id"]
    api.set_run(first, status=RunStatus.completed.value)
    response = api.client.get("/v1/runs?status=completed&status=queued&run_type=task_v1&run_type=task_v2"
                              "&search_key=list run&page_size=50", headers=api.headers())
    assert response.status_code == 200
    items = [TaskRunListItem.model_validate(item) for item in response.json()]
    assert [i.run_id for i in items][:2] == [second, first]
    only = api.client.get("/v1/runs?status=completed&search_key=alpha", headers=api.headers()).json()
    assert [i["run_id"] for i in only] == [first]
    assert api.client.get("/v1/runs?page_size=0", headers=api.headers()).status_code == 422


def test_a_misspelt_list_filter_is_refused_naming_it(api: Api) -> None:
    """A filter value outside its enum in the spec is a 422 naming the parameter, not an empty list that
    reads as 'no such runs' (get_runs_v2(status="complete") answered [] before)."""
    workflow = api.client.post("/v1/agents", headers=api.headers(), json={"json_definition": {
        "title": "filters", "workflow_definition": {"blocks": [
            {"block_type": "goto_url", "label": "open", "url": "https://example.com"}]}}}).json()
    for path, name, good in [("/v1/runs", "status", "completed"), ("/v1/runs", "run_type", "workflow_run"),
                             ("/v1/agents/runs", "status", "completed"),
                             (f"/v1/agents/{workflow['workflow_permanent_id']}/runs", "status", "canceled"),
                             ("/v1/agents", "status", "published"),
                             ("/v1/credentials", "credential_type", "secret"),
                             ("/v1/credentials", "vault_type", "skyvern")]:
        assert api.client.get(path, params={name: good}, headers=api.headers()).status_code == 200, path
        refused = api.client.get(path, params={name: "complete"}, headers=api.headers())
        assert refused.status_code == 422, (path, name, refused.text)
        assert refused.json()["detail"][0]["loc"][:2] == ["query", name]
        assert good in refused.json()["detail"][0]["msg"]  # it lists the values there are

    password = {"username": "u", "password": "p"}
    credential = api.client.post("/v1/credentials", headers=api.headers(), json={
        "name": "site", "credential_type": "password", "credential": password}).json()
    for vault, expected in (("skyvern", [credential["credential_id"]]), ("bitwarden", [])):
        listed = api.client.get("/v1/credentials", params={"vault_type": vault}, headers=api.headers()).json()
        assert [c["credential_id"] for c in listed] == expected, vault  # all are in this server's vault


def test_cancel_queued_then_final_then_bulk(api: Api) -> None:
    run_id = api.create(webhook_url="http://127.0.0.1:9/hook")["run_id"]
    response = api.client.post(f"/v1/runs/{run_id}/cancel", headers={"x-api-key": api.api_key})
    assert response.status_code == 200 and response.json() is None
    assert api.client.get(f"/v1/runs/{run_id}", headers=api.headers()).json()["status"] == "canceled"
    with session_scope(api.settings.database_url) as s:  # the API ended it: its webhook is owed
        assert s.scalar(select(WebhookDelivery.status).where(WebhookDelivery.run_id == run_id)) == "pending"
    again = api.client.post(f"/v1/runs/{run_id}/cancel", headers=api.headers())
    assert again.status_code == 400  # paused runs can be canceled too: the answer must not say otherwise
    assert again.json()["detail"] == f"Run {run_id} is already canceled; an ended run cannot be canceled."

    queued = api.create()["run_id"]
    bulk = api.client.post("/v1/runs/cancel", json={"run_ids": [queued, run_id, queued, "tsk_404"]},
                           headers=api.headers())
    assert BulkCancelRunsResponse.model_validate(bulk.json())
    assert bulk.json() == {"cancelled": [queued], "failed": [run_id, "tsk_404"]}


def test_cancel_running_forces_the_end_when_no_runner_stops_it(api: Api) -> None:
    run_id = api.create()["run_id"]
    api.set_run(run_id, status=RunStatus.running.value)
    assert api.client.post(f"/v1/runs/{run_id}/cancel", headers=api.headers()).status_code == 200
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.headers()).json()
    assert run["status"] == "canceled" and "did not stop" in run["failure_reason"]


def test_redis_unreachable_is_503_and_leaves_no_run(api: Api, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api.settings.database_url, f"redis://127.0.0.1:{free_port()}/0",
                             api_key=api.api_key)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/run/tasks", json={"prompt": "unqueued run", "url": "https://a.test"},
                               headers=api.headers())
    assert response.status_code == 503 and "queue is unavailable" in response.json()["detail"]
    with session_scope(api.settings.database_url) as s:
        assert s.scalars(select(Run).where(Run.prompt == "unqueued run")).first() is None
