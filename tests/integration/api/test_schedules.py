"""Workflow schedules through the API (SQLite and PostgreSQL) and the official SDK's client: the eight
schedule operations against the spec's schemas, 400s naming the field (cron expression, time zone,
parameters checked against the workflow's), 404s, organization scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from skyvern.client import Skyvern

from tests.integration.api.conftest import Api
from tests.integration.api.test_workflows import create, definition
from tests.support.spec import assert_matches_spec

NEVER_SOON = "0 9 1 1 *"  # 9:00 on January 1st: no scheduler thread of the test app fires it


def new_workflow(api: Api, title: str = "scheduled") -> str:
    return str(create(api, {"json_definition": definition(title)})["workflow_permanent_id"])


def schedule(api: Api, wpid: str, **body: Any) -> Any:
    body.setdefault("cron_expression", NEVER_SOON)
    body.setdefault("timezone", "Europe/Paris")
    body.setdefault("parameters", {"start_url": "https://example.com/"})
    return api.client.post(f"/v1/agents/{wpid}/schedules", json=body, headers=api.headers())


def created(api: Api, wpid: str, **body: Any) -> dict[str, Any]:
    response = schedule(api, wpid, **body)
    assert response.status_code == 200, response.text
    assert_matches_spec("WorkflowScheduleResponse", response.json())
    return dict(response.json())


def test_create_get_update_enable_disable_delete(api: Api) -> None:
    wpid = new_workflow(api)
    made = created(api, wpid, cron_expression="30 8 * * 1-5", name="weekday mornings",
                   description="before the office opens", parameters={"start_url": "https://a.example/",
                                                                     "months": None})
    item = made["schedule"]
    assert item["workflow_schedule_id"].startswith("wfs_")
    assert (item["workflow_permanent_id"], item["organization_id"]) == (wpid, api.organization_id)
    assert (item["cron_expression"], item["timezone"]) == ("30 8 * * 1-5", "Europe/Paris") and item["enabled"]
    assert item["parameters"] == {"start_url": "https://a.example/"}  # a null falls through to the default
    next_runs = [datetime.fromisoformat(moment) for moment in made["next_runs"]]
    assert len(next_runs) == 5 and next_runs == sorted(next_runs) and next_runs[0] > datetime.now(UTC)
    paris = [moment.astimezone(ZoneInfo("Europe/Paris")) for moment in next_runs]
    assert {(moment.hour, moment.minute) for moment in paris} == {(8, 30)}
    assert all(moment.weekday() < 5 for moment in paris)

    sid = item["workflow_schedule_id"]
    path = f"/v1/agents/{wpid}/schedules/{sid}"
    got = api.client.get(path, headers=api.headers()).json()
    assert_matches_spec("WorkflowScheduleResponse", got)
    assert got["schedule"] == item

    updated = api.client.put(path, headers=api.headers(), json={
        "cron_expression": "0 */6 * * *", "timezone": "UTC", "parameters": {"start_url": "https://b.example/"}})
    assert updated.status_code == 200, updated.text
    assert_matches_spec("WorkflowScheduleResponse", updated.json())
    assert updated.json()["schedule"]["cron_expression"] == "0 */6 * * *"
    assert updated.json()["schedule"]["name"] is None  # an upsert: what is not sent is cleared
    assert {datetime.fromisoformat(m).hour % 6 for m in updated.json()["next_runs"]} == {0}

    disabled = api.client.post(f"{path}/disable", headers=api.headers())
    assert disabled.status_code == 200 and disabled.json()["schedule"]["enabled"] is False
    assert disabled.json()["next_runs"] == []
    enabled = api.client.post(f"{path}/enable", headers=api.headers())
    assert enabled.json()["schedule"]["enabled"] is True and len(enabled.json()["next_runs"]) == 5

    listed = api.client.get(f"/v1/agents/{wpid}/schedules", headers=api.headers())
    assert_matches_spec("WorkflowScheduleListResponse", listed.json())
    assert [s["workflow_schedule_id"] for s in listed.json()["schedules"]] == [sid]

    deleted = api.client.delete(path, headers=api.headers())
    assert deleted.status_code == 200
    assert_matches_spec("DeleteScheduleResponse", deleted.json())
    assert deleted.json() == {"ok": True}
    assert api.client.get(path, headers=api.headers()).status_code == 404
    assert api.client.get(f"/v1/agents/{wpid}/schedules", headers=api.headers()).json() == {"schedules": []}


def test_the_older_workflows_paths_answer_too(api: Api) -> None:
    wpid = new_workflow(api)
    response = api.client.post(f"/v1/workflows/{wpid}/schedules", headers=api.headers(), json={
        "cron_expression": NEVER_SOON, "timezone": "UTC", "parameters": {"start_url": "https://a.example/"}})
    assert response.status_code == 200, response.text
    sid = response.json()["schedule"]["workflow_schedule_id"]
    assert api.client.get(f"/v1/workflows/{wpid}/schedules/{sid}", headers=api.headers()).status_code == 200


@pytest.mark.parametrize(("body", "status", "expected"), [
    ({"cron_expression": "every day"}, 400, ["cron_expression", "'every day'", "5 fields"]),
    ({"cron_expression": "61 * * * *"}, 400, ["cron_expression", "'61 * * * *' is not valid", "minute 0-59"]),
    ({"cron_expression": "0 0 30 2 *"}, 400, ["cron_expression", "never comes"]),
    ({"cron_expression": "0 0 * * * *"}, 400, ["cron_expression", "5 fields"]),
    ({"timezone": "Mars/Olympus"}, 400, ["timezone", "'Mars/Olympus'", "IANA"]),
    ({"parameters": {}}, 400, ["parameters", "'start_url' is required"]),
    ({"parameters": {"start_url": "https://a.example/", "colour": "red"}}, 400,
     ["parameters", "'colour' is not a parameter", "start_url"]),
    ({"parameters": {"start_url": 7}}, 400, ["parameters", "'start_url' must be a string"]),
    ({"cron_expression": None, "interval_seconds": 60}, 422, ["interval_seconds", "only cron schedules"]),
    ({"timezone": None}, 422, ["timezone"]),
])
def test_invalid_schedules_are_4xx_naming_the_field(api: Api, body: dict[str, Any], status: int,
                                                    expected: list[str]) -> None:
    wpid = new_workflow(api)
    sent = {key: value for key, value in {"cron_expression": NEVER_SOON, "timezone": "UTC",
                                          "parameters": {"start_url": "https://a.example/"},
                                          **body}.items() if value is not None}
    response = api.client.post(f"/v1/agents/{wpid}/schedules", json=sent, headers=api.headers())
    assert response.status_code == status, response.text
    for part in expected:
        assert part in response.text, response.text


def test_404s_and_organization_scope(api: Api) -> None:
    wpid = new_workflow(api)
    sid = created(api, wpid)["schedule"]["workflow_schedule_id"]
    assert schedule(api, "wpid_404").status_code == 404
    other_wpid = new_workflow(api, "another")
    wrong_workflow = api.client.get(f"/v1/agents/{other_wpid}/schedules/{sid}", headers=api.headers())
    assert wrong_workflow.status_code == 404
    assert wrong_workflow.json() == {"detail": f"Schedule not found {sid}"}
    body = {"cron_expression": NEVER_SOON, "timezone": "UTC"}
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/enable"),
                           ("POST", "/disable")):
        response = api.client.request(method, f"/v1/agents/{wpid}/schedules/wfs_404{suffix}",
                                      headers=api.headers(), json=body if method == "PUT" else None)
        assert response.status_code == 404, method
        assert response.json() == {"detail": "Schedule not found wfs_404"}

    other = api.new_key(f"other-{uuid.uuid4().hex[:6]}")
    assert api.client.get(f"/v1/agents/{wpid}/schedules/{sid}", headers=api.headers(other)).status_code == 404
    assert api.client.get(f"/v1/agents/{wpid}/schedules", headers=api.headers(other)).status_code == 404
    assert api.client.get("/v1/schedules", headers=api.headers(other)).json()["total_count"] == 0


def test_the_organization_list_pages_filters_and_searches(api: Api) -> None:
    marker = uuid.uuid4().hex[:8]
    wpid = new_workflow(api, f"Report {marker}")
    made = [created(api, wpid, name=f"slot {n}")["schedule"]["workflow_schedule_id"] for n in range(3)]
    named = created(api, new_workflow(api, "unrelated"), name=f"named {marker.upper()}")
    api.client.post(f"/v1/agents/{wpid}/schedules/{made[0]}/disable", headers=api.headers())

    first = api.client.get("/v1/schedules", params={"search": marker, "page_size": 3}, headers=api.headers())
    assert first.status_code == 200
    assert_matches_spec("OrganizationScheduleListResponse", first.json())
    body = first.json()
    assert (body["total_count"], body["page"], body["page_size"]) == (4, 1, 3)
    assert [s["workflow_schedule_id"] for s in body["schedules"]] == [
        named["schedule"]["workflow_schedule_id"], made[2], made[1]]
    assert body["schedules"][1]["workflow_title"] == f"Report {marker}"
    assert body["schedules"][1]["next_run"] is not None
    second = api.client.get("/v1/schedules", params={"search": marker, "page_size": 3, "page": 2},
                            headers=api.headers()).json()
    assert [s["workflow_schedule_id"] for s in second["schedules"]] == [made[0]]
    assert second["schedules"][0]["next_run"] is None  # paused

    paused = api.client.get("/v1/schedules", params={"search": marker, "status": "paused"},
                            headers=api.headers()).json()
    assert [s["workflow_schedule_id"] for s in paused["schedules"]] == [made[0]]
    active = api.client.get("/v1/schedules", params={"search": marker, "status": "active"},
                            headers=api.headers()).json()
    assert active["total_count"] == 3
    bad = api.client.get("/v1/schedules", params={"status": "sleeping"}, headers=api.headers())
    assert bad.status_code == 422 and "status" in bad.text

    api.client.post(f"/v1/agents/{wpid}/delete", headers=api.headers())
    after = api.client.get("/v1/schedules", params={"search": marker}, headers=api.headers()).json()
    assert [s["workflow_schedule_id"] for s in after["schedules"]] == [
        named["schedule"]["workflow_schedule_id"]]


def test_the_official_sdk_client_drives_schedules(api: Api) -> None:
    client = Skyvern(base_url=str(api.client.base_url), api_key=api.api_key, httpx_client=api.client)
    wpid = new_workflow(api, "sdk scheduled")
    made = client.schedules.create(wpid, cron_expression="15 7 * * *", timezone="America/New_York",
                                   parameters={"start_url": "https://a.example/"}, name="sdk")
    sid = made.schedule.workflow_schedule_id
    assert made.schedule.enabled and len(made.next_runs or []) == 5
    assert client.schedules.get(wpid, sid).schedule.name == "sdk"
    assert [s.workflow_schedule_id for s in client.schedules.list(wpid).schedules] == [sid]
    assert client.schedules.disable(wpid, sid).schedule.enabled is False
    assert client.schedules.enable(wpid, sid).schedule.enabled is True
    updated = client.schedules.update(wpid, sid, cron_expression="45 7 * * *", timezone="America/New_York",
                                      parameters={"start_url": "https://b.example/"})
    assert updated.schedule.cron_expression == "45 7 * * *"
    everything = client.schedules.list_all(search="sdk scheduled")
    assert [s.workflow_schedule_id for s in everything.schedules] == [sid]
    assert client.schedules.delete(wpid, sid).ok is True
