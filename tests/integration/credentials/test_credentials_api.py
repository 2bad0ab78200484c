"""Credentials, login/download_files runs, uploads and legacy task routes over HTTP (no worker runs them)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from pydantic import TypeAdapter
from skyvern.client.core.pydantic_utilities import parse_obj_as
from skyvern.client.types import CredentialResponse, GetRunResponse, UploadFileResponse, WorkflowRunResponse
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Artifact, Credential
from tests.integration.api.conftest import Api

PASSWORD = "correct-horse-battery-9Z"
TOTP_SECRET = pyotp.random_base32()
CARD = "4111111111111111"


def _create(api: Api, body: dict[str, Any], key: str | None = None) -> Any:
    return api.client.post("/v1/credentials", json=body, headers=api.headers(key))


def _password_credential(api: Api) -> dict[str, Any]:
    response = _create(api, {"name": "shop", "credential_type": "password", "credential": {
        "username": "ada@example.com", "password": PASSWORD, "totp": TOTP_SECRET}})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_credentials_store_secrets_encrypted_and_answer_only_public_parts(api: Api) -> None:
    created = _password_credential(api)
    assert created["credential_id"].startswith("cred_")
    assert created["credential"] == {"username": "ada@example.com", "totp_type": "authenticator",
                                     "totp_identifier": None}
    CredentialResponse.model_validate(created)

    card = _create(api, {"name": "visa", "credential_type": "credit_card", "credential": {
        "card_number": CARD, "card_cvv": "123", "card_exp_month": "12", "card_exp_year": "2030",
        "card_brand": "visa", "card_holder_name": "Ada Lovelace"}}).json()
    assert card["credential"] == {"last_four": "1111", "brand": "visa"}
    secret = _create(api, {"name": "api token", "credential_type": "secret",
                           "credential": {"secret_value": "tok-s3cr3t", "secret_label": "API"}}).json()
    assert secret["credential"] == {"secret_label": "API"}

    one = api.client.get(f"/v1/credentials/{created['credential_id']}", headers=api.headers())
    listed = api.client.get("/v1/credentials", params={"page": 1, "page_size": 100}, headers=api.headers())
    assert one.status_code == 200 and listed.status_code == 200
    assert {c["credential_id"] for c in listed.json()} >= {created["credential_id"], card["credential_id"]}
    for text in (one.text, listed.text, json.dumps([created, card, secret])):
        for value in (PASSWORD, TOTP_SECRET, CARD, "tok-s3cr3t"):
            assert value not in text
    with session_scope(api.settings.database_url) as s:
        stored = s.scalars(select(Credential)).all()
        assert stored
        assert not any(PASSWORD in row.secret_encrypted + json.dumps(row.public) for row in stored)

    updated = api.client.post(f"/v1/credentials/{created['credential_id']}/update", headers=api.headers(),
                              json={"name": "shop 2", "credential_type": "password",
                                    "credential": {"username": "grace", "password": "n3w-pass"}})
    assert updated.status_code == 200
    assert updated.json()["name"] == "shop 2" and updated.json()["credential"]["totp_type"] == "none"

    other = api.new_key("credentials-other")
    assert api.client.get(f"/v1/credentials/{created['credential_id']}",
                          headers=api.headers(other)).status_code == 404
    assert created["credential_id"] not in api.client.get("/v1/credentials", headers=api.headers(other)).text
    assert api.client.post(f"/v1/credentials/{created['credential_id']}/delete",
                           headers=api.headers(other)).status_code == 404

    deleted = api.client.post(f"/v1/credentials/{created['credential_id']}/delete", headers=api.headers())
    assert deleted.status_code == 204
    gone = api.client.get(f"/v1/credentials/{created['credential_id']}", headers=api.headers())
    assert gone.status_code == 404


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"name": "x", "credential_type": "password", "credential": {"username": "a"}}, 422,
     "credential.password"),
    ({"name": "x", "credential_type": "secret", "credential": {}}, 422, "credential.secret_value"),
    ({"name": "x", "credential_type": "password",
      "credential": {"username": "a", "password": "b", "totp": "not base32!"}}, 400, "credential.totp"),
    ({"name": "x", "credential_type": "password", "vault_type": "bitwarden",
      "credential": {"username": "a", "password": "b"}}, 422, "not configured"),
])
def test_bad_credentials_are_refused_naming_the_field(api: Api, body: dict[str, Any], status: int,
                                                      words: str) -> None:
    response = _create(api, body)
    assert response.status_code == status and words in response.text


def test_login_and_download_files_create_workflow_runs(api: Api) -> None:
    credential = _password_credential(api)
    body = {"credential_type": "skyvern", "credential_id": credential["credential_id"],
            "url": "http://127.0.0.1:9/login.html", "prompt": "then open the dashboard", "webhook_url": None}
    response = api.client.post("/v1/run/tasks/login", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    created = WorkflowRunResponse.model_validate(response.json())
    assert created.run_id.startswith("wr_") and created.run_type == "workflow_run"

    fetched = api.client.get(f"/v1/runs/{created.run_id}", headers=api.headers()).json()
    run = TypeAdapter(GetRunResponse).validate_python(fetched)
    assert run.run_type == "workflow_run" and fetched["attempt"] == 1 and fetched["run_with"] == "agent"
    assert run.run_request is not None and run.run_request.workflow_id == "login"
    assert PASSWORD not in json.dumps(fetched)

    assert api.client.post("/v1/run/tasks/login", headers=api.headers(),
                           json={**body, "credential_id": "cred_404"}).status_code == 404
    vault = api.client.post("/v1/run/tasks/login", headers=api.headers(),
                            json={"credential_type": "bitwarden", "bitwarden_item_id": "x",
                                  "url": body["url"]})
    assert vault.status_code == 400 and "not configured here" in vault.text
    other = api.new_key("login-other")
    assert api.client.post("/v1/run/tasks/login", json=body, headers=api.headers(other)).status_code == 404

    download = api.client.post("/v1/run/tasks/download_files", headers=api.headers(), json={
        "navigation_goal": "Download the report", "url": "http://127.0.0.1:9/download.html",
        "download_suffix": "report", "download_timeout": 30, "max_steps_per_run": 4})
    assert download.status_code == 200, download.text
    parsed = WorkflowRunResponse.model_validate(download.json())
    assert parsed.run_id.startswith("wr_") and parsed.run_request is not None
    parameters = parsed.run_request.parameters or {}
    assert parameters["download_suffix"] == "report" and parameters["download_timeout"] == 30.0
    assert parameters["url"] == "http://127.0.0.1:9/download.html"
    assert "Download the report" in parameters["prompt"]
    assert download.json()["run_request"]["max_steps"] == 4
    listed = api.client.get("/v1/runs", params={"run_type": "workflow_run", "page_size": 100},
                            headers=api.headers()).json()
    assert {created.run_id, parsed.run_id} <= {item["run_id"] for item in listed}


def test_upload_file_takes_a_file_part_or_the_sdks_text_field(api: Api) -> None:
    part = api.client.post("/v1/upload_file", headers=api.headers(),
                           files={"file": ("notes v1.txt", b"real file bytes", "text/plain")})
    assert part.status_code == 200, part.text
    uploaded = parse_obj_as(UploadFileResponse, part.json())  # the SDK's aliased s3uri
    assert uploaded.file_id and uploaded.file_id.startswith("file_") and uploaded.expires_at
    fetched = api.client.get(uploaded.presigned_url.replace("http://testserver", ""))
    assert fetched.status_code == 200 and fetched.content == b"real file bytes"
    assert 'filename="notes_v1.txt"' in fetched.headers["content-disposition"]

    text = api.client.post("/v1/upload_file", headers=api.headers(), data={"file": "typed content"})
    assert text.status_code == 200, text.text
    link = text.json()["presigned_url"].replace("http://testserver", "")
    assert api.client.get(link).content == b"typed content"

    assert api.client.post("/v1/upload_file", headers=api.headers(), data={"other": "x"}).status_code == 422
    assert api.client.post("/v1/upload_file", headers=api.headers(),
                           data={"file": "x", "retention_days": "900"}).status_code == 422
    kept = api.client.post("/v1/upload_file", headers=api.headers(),
                           data={"file": "x", "retention_days": "3"})
    assert kept.status_code == 200, kept.text
    with session_scope(api.settings.database_url) as s:
        stored = s.get(Artifact, kept.json()["file_id"])
        assert stored is not None and stored.expires_at is not None
        assert timedelta(days=3) - (stored.expires_at - stored.created_at) < timedelta(seconds=1)
        untimed = s.get(Artifact, text.json()["file_id"])
        assert untimed is not None and untimed.expires_at is None  # kept until deleted (or global retention)

    other = api.new_key("files-other")
    assert api.client.delete(f"/v1/files/{uploaded.file_id}", headers=api.headers(other)).status_code == 404
    assert api.client.delete(f"/v1/files/{uploaded.file_id}", headers=api.headers()).status_code == 204
    assert api.client.delete(f"/v1/files/{uploaded.file_id}", headers=api.headers()).status_code == 404
    assert api.client.get(uploaded.presigned_url.replace("http://testserver", "")).status_code == 404


def test_legacy_task_routes_map_onto_the_same_runs(api: Api) -> None:
    response = api.client.post("/api/v1/tasks", headers={**api.headers(), "x-max-steps-override": "3"}, json={
        "url": "127.0.0.1:9/guestbook.html", "navigation_goal": "Sign the guest book",
        "data_extraction_goal": "the greeting", "navigation_payload": {"name": "Ada"},
        "webhook_callback_url": None, "extracted_information_schema": {"type": "object"}})
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    assert task_id.startswith("tsk_")

    legacy = api.client.get(f"/api/v1/tasks/{task_id}", headers=api.headers()).json()
    assert legacy["task_id"] == task_id and legacy["status"] == "queued" and legacy["max_steps_per_run"] == 3
    assert legacy["request"]["url"] == "https://127.0.0.1:9/guestbook.html"
    assert legacy["request"]["extracted_information_schema"] == {"type": "object"}
    assert '"name": "Ada"' in legacy["request"]["navigation_goal"]
    modern = api.client.get(f"/v1/runs/{task_id}", headers=api.headers()).json()
    assert modern["run_type"] == "task_v1" and modern["run_request"]["max_steps"] == 3

    created = api.create(prompt="made by the new API")
    seen = api.client.get(f"/api/v1/tasks/{created['run_id']}", headers=api.headers()).json()
    assert seen["status"] == "queued"
    listed = api.client.get("/api/v1/tasks", params={"page_size": 100}, headers=api.headers()).json()
    assert {task_id, created["run_id"]} <= {item["task_id"] for item in listed}

    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.headers()).status_code == 200
    assert api.client.get(f"/v1/runs/{task_id}", headers=api.headers()).json()["status"] == "canceled"
    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.headers()).status_code == 400
    assert api.client.get("/api/v1/tasks/tsk_404", headers=api.headers()).status_code == 404
    assert api.client.post("/api/v1/tasks", headers=api.headers(),
                           json={"url": "https://example.com"}).status_code == 400

    totp = api.client.post("/api/v1/totp", headers=api.headers(),
                           json={"totp_identifier": "Ada@Example.com", "content": "Your code is 482913."})
    assert totp.status_code == 200 and totp.json()["code"] == "482913"
