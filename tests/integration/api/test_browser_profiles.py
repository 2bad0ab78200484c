"""Browser profiles over HTTP (SQLite and PostgreSQL): CRUD, name conflicts, sources, other
organizations; the profile functions sessions call; what run creation checks of profiles, files and
browser_address (no worker runs these runs)."""

from __future__ import annotations

import json
from typing import Any

from skyvern.client.core.pydantic_utilities import parse_obj_as
from skyvern.client.types import BrowserProfile
from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import BrowserProfile as ProfileRow
from app.db.models import Run
from app.profiles import service as browser_profiles
from tests.integration.api.conftest import Api

STATE = {"cookies": [{"name": "sid", "value": "cookie-value-7f3a", "domain": "127.0.0.1", "path": "/",
                      "expires": -1, "httpOnly": False, "secure": False, "sameSite": "Lax"}],
         "origins": [{"origin": "http://127.0.0.1",
                      "localStorage": [{"name": "k", "value": "ls-value-9c1e"}]}]}


def _post(api: Api, body: dict[str, Any], key: str | None = None) -> Any:
    return api.client.post("/v1/browser_profiles", json=body, headers=api.headers(key))


def test_profile_crud_conflicts_and_other_organizations(api: Api) -> None:
    created = _post(api, {"name": "shop", "description": "logged in to the shop"})
    assert created.status_code == 200, created.text
    profile = parse_obj_as(BrowserProfile, created.json())
    assert profile.browser_profile_id.startswith("bp_") and profile.organization_id == api.organization_id
    profile_id = profile.browser_profile_id
    path = f"/v1/browser_profiles/{profile_id}"

    duplicate = _post(api, {"name": "shop"})
    assert duplicate.status_code == 409 and "shop" in duplicate.json()["detail"]
    assert _post(api, {"name": ""}).status_code == 422

    other = api.new_key("profiles-other")
    assert _post(api, {"name": "shop"}, other).status_code == 200  # names are per organization
    for method in ("GET", "DELETE", "PATCH"):
        response = api.client.request(method, path, json={"name": "x"}, headers=api.headers(other))
        assert response.status_code == 404, (method, response.text)
    assert profile_id not in api.client.get("/v1/browser_profiles", headers=api.headers(other)).text

    renamed = api.client.patch(path, json={"name": "shop 2", "description": None}, headers=api.headers())
    assert renamed.status_code == 200 and renamed.json()["name"] == "shop 2"
    assert renamed.json()["description"] is None
    _post(api, {"name": "bank"})
    assert api.client.patch(path, json={"name": "bank"}, headers=api.headers()).status_code == 409
    found = api.client.get("/v1/browser_profiles", params={"search_key": "SHOP"}, headers=api.headers())
    assert [p["browser_profile_id"] for p in found.json()] == [profile_id]
    managed = api.client.get("/v1/browser_profiles", params={"managed": True}, headers=api.headers())
    assert managed.json() == []

    assert api.client.delete(path, headers=api.headers()).status_code == 204
    assert api.client.get(path, headers=api.headers()).status_code == 404
    assert api.client.delete(path, headers=api.headers()).status_code == 404
    listed = api.client.get("/v1/browser_profiles", params={"include_deleted": True, "page_size": 100},
                            headers=api.headers()).json()
    (gone,) = [p for p in listed if p["browser_profile_id"] == profile_id]
    assert gone["deleted_at"] is not None
    assert _post(api, {"name": "shop 2"}).status_code == 200  # a deleted profile's name is free again


def test_profiles_from_sessions_and_workflow_runs(api: Api) -> None:
    with session_scope(api.settings.database_url) as s:
        first = browser_profiles.save_profile_from_state(api.settings, s, api.organization_id, name="saved",
                                                         storage_state=STATE, browser_session_id="pbs_1")
        second = browser_profiles.save_profile_from_state(api.settings, s, api.organization_id, name="saved",
                                                          storage_state=STATE, browser_session_id="pbs_2")
        assert browser_profiles.load_storage_state(api.settings, s, api.organization_id, first) == STATE
        assert s.get(ProfileRow, second).name == "saved (2)"  # type: ignore[union-attr]
        try:
            browser_profiles.load_storage_state(api.settings, s, "o_someone_else", first)
            raise AssertionError("another organization's profile was loaded")
        except LookupError:
            pass
        stored = " ".join(row.storage_state_encrypted for row in s.scalars(select(ProfileRow)).all())
    assert "cookie-value-7f3a" not in stored and "ls-value-9c1e" not in stored

    from_session = _post(api, {"name": "from session", "browser_session_id": "pbs_1"})
    assert from_session.status_code == 200, from_session.text
    unsaved = _post(api, {"name": "unsaved", "browser_session_id": "pbs_never"})
    assert unsaved.status_code == 400 and "generate_browser_profile" in unsaved.json()["detail"]

    run = api.create(prompt="a task run keeps no state")
    no_state = _post(api, {"name": "task run", "workflow_run_id": run["run_id"]})
    assert no_state.status_code == 400 and "still" in no_state.json()["detail"]
    api.set_run(run["run_id"], status="completed")
    no_state = _post(api, {"name": "task run", "workflow_run_id": run["run_id"]})
    assert no_state.status_code == 400 and "no saved browser state" in no_state.json()["detail"]
    with session_scope(api.settings.database_url) as s:
        browser_profiles.keep_run_state(api.settings, s, run["run_id"], STATE)
        kept = s.get(Run, run["run_id"])
        assert kept is not None and "cookie-value-7f3a" not in (kept.storage_state_encrypted or "")
    from_run = _post(api, {"name": "from run", "workflow_run_id": run["run_id"]})
    assert from_run.status_code == 200, from_run.text
    with session_scope(api.settings.database_url) as s:
        state = browser_profiles.load_storage_state(api.settings, s, api.organization_id,
                                                    from_run.json()["browser_profile_id"])
    assert state == STATE
    assert _post(api, {"name": "unknown run", "workflow_run_id": "wr_1"}).status_code == 400


def test_run_creation_checks_profile_files_and_browser_address(api: Api) -> None:
    profile_id = _post(api, {"name": "for runs"}).json()["browser_profile_id"]
    assert api.create(browser_profile_id=profile_id)["browser_profile_id"] == profile_id
    unknown = api.submit({"prompt": "x", "browser_profile_id": "bp_404"})
    assert unknown.status_code == 404 and "browser_profile_id" in unknown.json()["detail"]
    other = api.new_key("runs-other")
    foreign = api.client.post("/v1/run/tasks", json={"prompt": "x", "browser_profile_id": profile_id},
                              headers=api.headers(other))
    assert foreign.status_code == 404

    missing_file = api.submit({"prompt": "x", "file_ids": ["file_404"]})
    assert missing_file.status_code == 404 and "file_ids" in missing_file.json()["detail"]
    too_many = api.submit({"prompt": "x", "file_ids": [f"file_{n}" for n in range(51)]})
    assert too_many.status_code == 422 and "file_ids" in too_many.text

    for address in ("ftp://127.0.0.1:9222", "127.0.0.1:9222", "ws://"):
        bad = api.submit({"prompt": "x", "browser_address": address})
        assert bad.status_code == 422 and "browser_address" in bad.text, address
    both = api.submit({"prompt": "x", "browser_address": "http://127.0.0.1:9222",
                       "browser_profile_id": profile_id})
    assert both.status_code == 400 and "browser_address" in both.json()["detail"]

    secret = "Bearer cdp-secret-4e1d"
    created = api.create(browser_address="ws://127.0.0.1:9222/devtools/browser/x",
                         cdp_connect_headers={"Authorization": secret})
    fetched = api.client.get(f"/v1/runs/{created['run_id']}", headers=api.headers()).json()
    for body in (created, fetched):
        assert body["run_request"]["cdp_connect_headers"] == {"Authorization": "********"}
        assert secret not in json.dumps(body)
    with session_scope(api.settings.database_url) as s:
        row = s.get(Run, created["run_id"])
        assert row is not None and secret not in json.dumps(row.run_request)
        assert secret not in (row.cdp_connect_headers_encrypted or "")
