"""Every SDK-facing operation this server provides, called with the organization's real ids, answers
what Skyvern's spec declares for that status (the response schema of the operation, not only a named
model): the objects the SDK parses are checked as the spec writes them."""

from __future__ import annotations

import re
from typing import Any

from app.api.not_provided import find_operation, not_provided_detail
from tests.integration.api.conftest import Api
from tests.integration.api.test_workflows import definition
from tests.support.spec import assert_answers_as_declared, spec_document


def _created(api: Api, path: str, **request: Any) -> dict[str, Any]:
    response = api.client.post(path, headers=api.headers(), **request)
    assert response.status_code in (200, 201), (path, response.text)  # each as the spec declares it
    assert assert_answers_as_declared("POST", path, response.status_code, response.json()), path
    return dict(response.json())


def _ids(api: Api) -> dict[str, str]:
    """One of each resource, created the way the SDK creates it (each answer checked too)."""
    run = _created(api, "/v1/run/tasks", json={"prompt": "Find the greeting", "url": "http://127.0.0.1:9/"})
    api.set_run(run["run_id"], status="completed", output={"greeting": "hi"})
    artifact = api.add_artifact(run["run_id"], "screenshot_final", b"\xff\xd8", "image/jpeg")
    credential = _created(api, "/v1/credentials", json={
        "name": "site", "credential_type": "password", "credential": {"username": "u", "password": "p"}})
    profile = _created(api, "/v1/browser_profiles", json={"name": "blank"})
    session = _created(api, "/v1/browser_sessions", json={"timeout": 15})
    upload = _created(api, "/v1/upload_file", files={"file": ("a.txt", b"hello", "text/plain")})
    workflow = _created(api, "/v1/agents", json={"json_definition": definition("spec check")})
    folder = _created(api, "/v1/folders", json={"title": "spec check"})
    return {"run_id": run["run_id"], "workflow_run_id": run["run_id"], "artifact_id": artifact,
            "credential_id": credential["credential_id"], "profile_id": profile["browser_profile_id"],
            "browser_session_id": session["browser_session_id"], "file_id": upload["file_id"],
            "workflow_id": workflow["workflow_permanent_id"],
            "workflow_permanent_id": workflow["workflow_permanent_id"], "folder_id": folder["folder_id"]}


def test_each_provided_read_answers_as_the_spec_declares(api: Api) -> None:
    ids = _ids(api)
    checked = []
    for path, item in spec_document()["paths"].items():
        names = re.findall(r"\{([^/}]+)\}", path)
        if "get" not in item or any(name not in ids for name in names):
            continue
        concrete = re.sub(r"\{([^/}]+)\}", lambda m: ids[m[1]], path)
        response = api.client.get(concrete, headers=api.headers())
        if not response.headers["content-type"].startswith("application/json"):
            assert response.status_code == 200, concrete  # artifact bytes: nothing to check as JSON
            continue
        op = find_operation("GET", concrete)
        if op is not None and response.json() == {"detail": not_provided_detail(op)}:
            continue  # not provided here: test_not_provided checks that answer
        assert response.status_code == 200, (concrete, response.text[:300])
        if assert_answers_as_declared("GET", path, 200, response.json()):
            checked.append(path)
    assert {"/v1/runs/{run_id}", "/v1/runs", "/v1/runs/{run_id}/artifacts", "/v1/runs/{run_id}/timeline",
            "/v1/credentials/{credential_id}", "/v1/browser_sessions/{browser_session_id}",
            "/v1/browser_profiles/{profile_id}", "/v1/agents/{workflow_permanent_id}",
            "/v1/folders/{folder_id}", "/v1/agents/runs", "/v1/folders", "/v1/schedules",
            "/v1/agents/{workflow_permanent_id}/schedules"} <= set(checked), checked
