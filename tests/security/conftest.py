"""Servers for the security tests: an embedded one for input checks, and a PostgreSQL-backed one holding
two organizations, where organization A has one of every kind of resource (a finished run with
artifacts and a webhook, a credential, an uploaded file, a TOTP code)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.accounts.service import create_api_key, create_organization
from app.db.engine import session_scope
from tests.e2e.conftest import token
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import throwaway_postgres
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Received, webhook_receiver

__all__ = ["CREDENTIAL_PASSWORD", "Tenants", "server", "tenants", "token"]

CREDENTIAL_PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("security"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_MAX_CONCURRENT_RUNS": "2"}) as stack:
        yield stack


@dataclass
class Tenants:
    stack: Stack
    database_url: str
    data_dir: Path
    other_key: str  # organization B's key; stack.api_key is organization A's
    run: dict[str, Any]  # A's finished run (GET /v1/runs/{id})
    ids: dict[str, str]  # path parameter name -> one of A's ids
    webhooks: list[Received]
    responses: list[str] = field(default_factory=list)  # every body A's client was answered


@pytest.fixture(scope="package")
def tenants(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM,
            sites: SiteServer) -> Iterator[Tenants]:
    tmp = tmp_path_factory.mktemp("tenants")
    with throwaway_postgres() as pg_url, webhook_receiver() as receiver, running_stack(
            tmp, llm_base_url=fake_llm.base_url, database_url=pg_url) as stack:
        with session_scope(pg_url) as s:
            other_key = create_api_key(s, create_organization(s, "tenant-b").id)
        token = f"task-{uuid.uuid4().hex[:10]}"
        fake_llm.script(token, form_script())
        responses: list[str] = []
        with stack.client() as client:
            def call(method: str, path: str, **kwargs: Any) -> Any:
                response = client.request(method, path, **kwargs)
                assert response.status_code < 300, response.text
                responses.append(response.text)
                return response.json() if response.content else None

            created = call("POST", "/v1/run/tasks", json={
                "prompt": f"Sign the guest book as Ada ({token})", "url": sites.url(FORM_PATH),
                "webhook_url": receiver.url, "run_with": "code"})  # it records a script too
            run = stack.wait_final(created["run_id"])
            assert run["status"] == "completed", run.get("failure_reason")
            hooks = receiver.wait_for(1)
            run = call("GET", f"/v1/runs/{run['run_id']}")
            artifacts = call("GET", f"/v1/runs/{run['run_id']}/artifacts")
            call("GET", f"/v1/runs/{run['run_id']}/timeline")
            credential = call("POST", "/v1/credentials", json={
                "name": "shop", "credential_type": "password",
                "credential": {"username": "ada", "password": CREDENTIAL_PASSWORD}})
            upload = call("POST", "/v1/upload_file", files={"file": ("a.txt", b"tenant A's file")})
            profile = call("POST", "/v1/browser_profiles", json={"name": "tenant A's profile"})
            browser_session = call("POST", "/v1/browser_sessions", json={})
            call("POST", "/v1/credentials/totp", json={"totp_identifier": "ada@example.com",
                                                        "content": "123456", "task_id": run["run_id"]})
            workflow = call("POST", "/v1/agents", json={"json_definition": {
                "title": "tenant A's workflow",
                "workflow_definition": {"parameters": [], "blocks": [{"block_type": "wait", "label": "w"}]}}})
            wpid = workflow["workflow_permanent_id"]
            folder = call("POST", "/v1/folders", json={"title": "tenant A's folder"})
            call("PUT", f"/v1/agents/{wpid}/folder", json={"folder_id": folder["folder_id"]})
            schedule = call("POST", f"/v1/agents/{wpid}/schedules",
                            json={"cron_expression": "0 9 1 1 *", "timezone": "UTC"})
        ids = {"run_id": run["run_id"], "task_id": run["run_id"], "artifact_id": artifacts[0]["artifact_id"],
               "credential_id": credential["credential_id"], "file_id": upload["file_id"],
               "profile_id": profile["browser_profile_id"],
               "browser_session_id": browser_session["browser_session_id"],
               "script_id": run["script_run"]["script_id"], "workflow_permanent_id": wpid,
               "workflow_id": wpid, "workflow_run_id": run["run_id"], "folder_id": folder["folder_id"],
               "workflow_schedule_id": schedule["schedule"]["workflow_schedule_id"]}
        yield Tenants(stack, pg_url, tmp / "wayfarer-data", other_key, run, ids, hooks, responses)
