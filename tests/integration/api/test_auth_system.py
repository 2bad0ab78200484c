"""Auth and organization scoping, health and version endpoints, TOTP codes."""

from __future__ import annotations

from skyvern.client.types import TotpCode

from app.accounts.service import list_api_keys, revoke_api_key
from app.db.engine import session_scope
from tests.integration.api.conftest import Api


def test_missing_bad_and_revoked_keys_are_403(api: Api) -> None:
    invalid = {"detail": "Invalid credentials"}
    for headers in ({}, {"x-api-key": ""}, {"x-api-key": "wf_nope"}):
        response = api.client.get("/v1/runs", headers=headers)
        assert response.status_code == 403 and response.json() == invalid
    assert api.client.post("/v1/run/tasks", json={"prompt": "p"}).status_code == 403
    for decorated in (f"  {api.api_key} ", f"Bearer {api.api_key}", f'"{api.api_key}"'):
        assert api.client.get("/v1/runs", headers={"x-api-key": decorated}).status_code == 200
    key = api.new_key("revoked-org")
    assert api.client.get("/v1/runs", headers={"x-api-key": key}).status_code == 200
    with session_scope(api.settings.database_url) as s:
        (row,) = [k for k in list_api_keys(s, None) if key.startswith(k.key_prefix)]
        assert revoke_api_key(s, row.id)
    assert api.client.get("/v1/runs", headers={"x-api-key": key}).status_code == 403


def test_another_organizations_runs_and_artifacts_are_404(api: Api) -> None:
    run_id = api.create()["run_id"]
    artifact_id = api.add_artifact(run_id, "html_scrape", b"<p>x</p>", "text/html")
    other = {"x-api-key": api.new_key()}
    for method, path in (("GET", f"/v1/runs/{run_id}"), ("POST", f"/v1/runs/{run_id}/cancel"),
                         ("GET", f"/v1/runs/{run_id}/artifacts"), ("GET", f"/v1/runs/{run_id}/timeline"),
                         ("POST", f"/v1/runs/{run_id}/retry_webhook"),
                         ("GET", f"/v1/artifacts/{artifact_id}/content")):
        assert api.client.request(method, path, headers=other).status_code == 404, path
    assert run_id not in [r["run_id"] for r in api.client.get("/v1/runs", headers=other).json()]
    own = api.client.get(f"/v1/artifacts/{artifact_id}/content", headers=api.headers())
    assert "sandbox" in own.headers["content-security-policy"]


def test_version_heartbeat_and_healthz_need_no_key(api: Api) -> None:
    assert api.client.get("/v1/version").json()["version"]
    assert api.client.get("/api/v1/heartbeat").status_code == 200
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_totp_codes(api: Api) -> None:
    short = api.client.post("/v1/credentials/totp", headers=api.headers(),
                            json={"totp_identifier": "Ada@Example.com", "content": "123456"})
    assert short.status_code == 200, short.text
    code = TotpCode.model_validate(short.json())
    assert code.code == "123456" and code.totp_identifier == "ada@example.com"
    assert code.totp_code_id.startswith("totp_")
    mail = api.client.post("/v1/credentials/totp", headers=api.headers(),
                           json={"totp_identifier": "u1", "content": "Your code is 48213. It expires soon."})
    assert mail.json()["code"] == "48213"
    none = api.client.post("/v1/credentials/totp", headers=api.headers(),
                           json={"totp_identifier": "u1", "content": "no digits in this long message"})
    assert none.status_code == 400
    unknown_task = api.client.post("/v1/credentials/totp", headers=api.headers(),
                                   json={"totp_identifier": "u1", "content": "1234", "task_id": "tsk_1"})
    assert unknown_task.status_code == 400
