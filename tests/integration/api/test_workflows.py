"""Workflow definitions through the API (SQLite and PostgreSQL) and through the official SDK's client:
create from JSON, YAML and a bare body, versions, list and search, delete, and 400s naming block and field."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import yaml
from skyvern.client import Skyvern

from app.db.engine import session_scope
from app.db.models import WorkflowRunBlock, utcnow
from app.runs import ids, lifecycle
from tests.integration.api.conftest import Api
from tests.support.spec import assert_matches_spec


def definition(title: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "description": "log in, list invoices, download each",
        "webhook_callback_url": "https://hooks.example/wf",
        "workflow_definition": {
            "parameters": [
                {"parameter_type": "workflow", "key": "start_url", "workflow_parameter_type": "string"},
                {"parameter_type": "workflow", "key": "months", "workflow_parameter_type": "json",
                 "default_value": ["jan", "feb"]},
            ],
            "blocks": [
                {"block_type": "goto_url", "label": "open", "url": "{{ start_url }}"},
                {"block_type": "extraction", "label": "invoices", "data_extraction_goal": "List the invoices",
                 "data_schema": {"type": "array", "items": {"type": "object"}}},
                {"block_type": "for_loop", "label": "each_invoice",
                 "loop_over_parameter_key": "invoices_output",
                 "loop_blocks": [
                     {"block_type": "file_download", "label": "download",
                      "navigation_goal": "Download invoice {{ current_value.number }} ({{ current_index }})"},
                 ]},
                {"block_type": "text_prompt", "label": "summary",
                 "prompt": "Summarise {{ invoices_output }} for {{ months }}"},
                {"block_type": "send_email", "label": "mail", "sender": "a@example.com",
                 "recipients": ["b@example.com"], "subject": "Invoices", "body": "{{ summary_output }}"},
                {"block_type": "conditional", "label": "check", "branch_conditions": [
                    {"criteria": {"expression": "{{ months | length > 1 }}"}, "next_block_label": "mail"},
                    {"is_default": True}]},
                {"block_type": "http_request", "label": "notify", "url": "https://hooks.example/x"},
                {"block_type": "file_url_parser", "label": "parse", "file_url": "https://files.example/a.csv"},
                {"block_type": "wait", "label": "pause", "wait_sec": 1},
            ],
        },
    }
    body.update(overrides)
    return body


def blocks_with(*blocks: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"json_definition": {"title": "bad", "workflow_definition": {
        "parameters": parameters or [{"key": "name", "workflow_parameter_type": "string"}],
        "blocks": list(blocks)}}}


def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/agents", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    workflow: dict[str, Any] = response.json()
    assert_matches_spec("Workflow", workflow)
    return workflow


def test_create_from_json_yaml_and_bare_body_then_read(api: Api) -> None:
    from_json = create(api, {"json_definition": definition("from json")})
    assert from_json["workflow_permanent_id"].startswith("wpid_")
    assert from_json["agent_id"] == from_json["workflow_permanent_id"]
    assert from_json["workflow_id"].startswith("w_") and from_json["version"] == 1
    blocks = from_json["workflow_definition"]["blocks"]
    assert [b["label"] for b in blocks][:4] == ["open", "invoices", "each_invoice", "summary"]
    assert blocks[2]["loop_blocks"][0]["output_parameter"]["key"] == "download_output"
    assert from_json["webhook_callback_url"] == "https://hooks.example/wf"

    from_yaml = create(api, {"yaml_definition": yaml.safe_dump(definition("from yaml"))})
    assert from_yaml["title"] == "from yaml"
    def shape(workflow: dict[str, Any]) -> list[Any]:
        return [{k: v for k, v in b.items() if not isinstance(v, dict | list) or k == "recipients"}
                for b in workflow["workflow_definition"]["blocks"]]
    assert shape(from_yaml) == shape(from_json)

    bare = create(api, definition("bare body"))
    got = api.client.get(f"/v1/workflows/{bare['workflow_permanent_id']}", headers=api.headers())
    assert got.status_code == 200 and got.json()["title"] == "bare body"


def test_update_adds_a_version_and_old_versions_stay_readable(api: Api) -> None:
    first = create(api, {"json_definition": definition("versioned")})
    wpid = first["workflow_permanent_id"]
    response = api.client.post(f"/v1/agents/{wpid}", headers=api.headers(),
                               json={"json_definition": definition("versioned v2")})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["version"] == 2 and second["workflow_permanent_id"] == wpid
    assert second["workflow_id"] != first["workflow_id"]

    current = api.client.get(f"/v1/agents/{wpid}", headers=api.headers()).json()
    assert current["title"] == "versioned v2"
    old = api.client.get(f"/v1/agents/{wpid}", params={"version": 1}, headers=api.headers()).json()
    assert old["title"] == "versioned" and old["workflow_id"] == first["workflow_id"]
    versions = api.client.get(f"/v1/agents/{wpid}/versions", headers=api.headers()).json()
    assert_matches_spec("Workflow", versions)
    assert [v["version"] for v in versions] == [1, 2]


def test_list_pages_searches_and_hides_deleted(api: Api) -> None:
    marker = uuid.uuid4().hex[:8]
    made = [create(api, {"json_definition": definition(f"Invoices {marker} {n}")}) for n in range(3)]
    listed = api.client.get("/v1/agents", params={"search_key": marker.upper(), "page_size": 2},
                            headers=api.headers()).json()
    assert_matches_spec("Workflow", listed)
    assert [w["title"] for w in listed] == [f"Invoices {marker} 2", f"Invoices {marker} 1"]
    page2 = api.client.get("/v1/agents", params={"search_key": marker, "page_size": 2, "page": 2},
                           headers=api.headers()).json()
    assert [w["title"] for w in page2] == [f"Invoices {marker} 0"]

    wpid = made[0]["workflow_permanent_id"]
    deleted = api.client.post(f"/v1/agents/{wpid}/delete", headers=api.headers())
    assert deleted.status_code == 200
    assert api.client.get(f"/v1/agents/{wpid}", headers=api.headers()).status_code == 404
    after = api.client.get("/v1/agents", params={"search_key": marker}, headers=api.headers()).json()
    assert wpid not in [w["workflow_permanent_id"] for w in after]


def test_another_organization_cannot_see_a_workflow(api: Api) -> None:
    wpid = create(api, {"json_definition": definition("private")})["workflow_permanent_id"]
    other = api.new_key(f"other-{uuid.uuid4().hex[:6]}")
    assert api.client.get(f"/v1/agents/{wpid}", headers=api.headers(other)).status_code == 404
    assert api.client.post(f"/v1/agents/{wpid}/delete", headers=api.headers(other)).status_code == 404


@pytest.mark.parametrize(("body", "expected"), [
    (blocks_with({"block_type": "teleport", "label": "beam"}),
     ["'beam'", "'teleport' is not supported", "goto_url", "for_loop"]),
    (blocks_with({"block_type": "navigation", "label": "go"}), ["'go'", "navigation_goal", "required"]),
    (blocks_with({"block_type": "goto_url", "label": "open", "url": "{{ site }}"}),
     ["'open'", "url", "{{ site }}", "parameters: name"]),
    (blocks_with({"block_type": "text_prompt", "label": "early", "prompt": "{{ late_output }}"},
                 {"block_type": "text_prompt", "label": "late", "prompt": "hi"}),
     ["'early'", "prompt", "late_output", "'late'", "does not run before"]),
    (blocks_with({"block_type": "for_loop", "label": "each", "loop_over_parameter_key": "name",
                  "loop_blocks": [{"block_type": "wait", "label": "pause"}]}),
     ["'each'", "loop_over_parameter_key", "string parameter, not a list"]),
    (blocks_with({"block_type": "goto_url", "label": "open", "url": "https://a.example"},
                 {"block_type": "for_loop", "label": "each", "loop_over_parameter_key": "open_output",
                  "loop_blocks": [{"block_type": "wait", "label": "pause"}]}),
     ["'each'", "goto_url block, which is not a list"]),
    (blocks_with({"block_type": "goto_url", "label": "open", "url": "{{ current_value }}"}),
     ["'open'", "only defined inside a for_loop"]),
    (blocks_with({"label": "untyped"}), ["'untyped'", "block_type is required", "text_prompt"]),
    (blocks_with({"block_type": "wait", "label": "twice"}, {"block_type": "wait", "label": "twice"}),
     ["'twice'", "label", "unique"]),
    (blocks_with({"block_type": "code", "label": "py", "code": "print(1)"}),
     ["'py'", "WAYFARER_ALLOW_CODE_BLOCKS"]),
    (blocks_with({"block_type": "goto_url", "label": "open", "url": "{{ name"}),
     ["'open'", "url", "template"]),
    (blocks_with({"block_type": "wait", "label": "w"},
                 parameters=[{"key": "x", "parameter_type": "aws_secret"}]),
     ["parameters[0]", "'aws_secret' is not supported", "workflow, output, credential"]),
    ({"yaml_definition": "title: [unclosed"}, ["yaml_definition", "YAML"]),
    (blocks_with({"block_type": "conditional", "label": "which", "branch_conditions": [
        {"criteria": {"criteria_type": "prompt", "expression": "is it sunny?"}}]}),
     ["'which'", "branch_conditions[0].criteria.criteria_type", "jinja2_template"]),
    (blocks_with({"block_type": "conditional", "label": "which", "branch_conditions": [
        {"criteria": {"expression": "{{ name }}"}, "next_block_label": "nowhere"}]}),
     ["'which'", "branch_conditions[0].next_block_label", "'nowhere'"]),
    ({"json_definition": {"title": "t", "persist_browser_session": True,
                          "workflow_definition": {"parameters": [], "blocks": [
                              {"block_type": "wait", "label": "w"}]}}},
     ["persist_browser_session", "browser_session_id"]),
    ({"json_definition": {**blocks_with({"block_type": "wait", "label": "w"})["json_definition"],
                          "run_with": "python"}}, ["run_with", "'python'", "agent, code"]),
    ({"json_definition": {**blocks_with({"block_type": "wait", "label": "w"})["json_definition"],
                          "cache_key": "{{ region }}"}}, ["cache_key", "'region' is not a parameter"]),
])
def test_invalid_definitions_are_400s_naming_block_and_field(api: Api, body: dict[str, Any],
                                                             expected: list[str]) -> None:
    response = api.client.post("/v1/agents", json=body, headers=api.headers())
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    for part in expected:
        assert part in detail, detail


def test_the_official_sdk_client_drives_definitions(api: Api) -> None:
    client = Skyvern(base_url=str(api.client.base_url), api_key=api.api_key, httpx_client=api.client)
    created = client.create_workflow(yaml_definition=yaml.safe_dump(definition("sdk yaml")))
    assert created.workflow_permanent_id.startswith("wpid_")
    assert created.workflow_definition.blocks[2].block_type == "for_loop"
    from_json = client.create_workflow(json_definition=definition("sdk json"))  # type: ignore[arg-type]
    updated = client.update_workflow(from_json.workflow_permanent_id,
                                     yaml_definition=yaml.safe_dump(definition("sdk json v2")))
    assert updated.version == 2
    assert [w.version for w in client.get_workflow_versions(from_json.workflow_permanent_id)] == [1, 2]
    assert client.get_workflow(from_json.workflow_permanent_id, version=1).title == "sdk json"
    listed = client.get_workflows(search_key="sdk json", page_size=10)
    assert [w.title for w in listed] == ["sdk json v2"]
    client.delete_workflow(created.workflow_permanent_id)
    assert created.workflow_permanent_id not in [w.workflow_permanent_id for w in client.get_workflows()]


TYPED = {"title": "typed", "workflow_definition": {"parameters": [
    {"key": "text", "workflow_parameter_type": "string"},
    {"key": "count", "workflow_parameter_type": "integer"},
    {"key": "ratio", "workflow_parameter_type": "float", "default_value": 0.5},
    {"key": "flag", "workflow_parameter_type": "boolean"},
    {"key": "items", "workflow_parameter_type": "json"},
    {"key": "link", "workflow_parameter_type": "file_url"},
], "blocks": [{"block_type": "wait", "label": "pause"}]}}
GOOD = {"text": "hi", "count": "5", "flag": "true", "items": "[1, 2]", "link": "files.example/a.csv"}


def start(api: Api, body: dict[str, Any], path: str = "/v1/run/agents") -> Any:
    return api.client.post(path, json=body, headers=api.headers())


def test_a_run_gets_typed_parameters_and_a_wr_id(api: Api) -> None:
    wpid = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    response = start(api, {"agent_id": wpid, "parameters": GOOD, "title": "typed run"})
    assert response.status_code == 200, response.text
    run = response.json()
    assert_matches_spec("WorkflowRunResponse", run)
    assert run["run_id"].startswith("wr_") and run["status"] == "queued"
    assert run["run_request"]["workflow_id"] == wpid
    assert run["run_request"]["parameters"] == {"text": "hi", "count": 5, "ratio": 0.5, "flag": True,
                                                "items": [1, 2], "link": "https://files.example/a.csv"}
    alias = start(api, {"workflow_id": wpid, "parameters": GOOD}, "/v1/run/workflows")
    assert alias.status_code == 200, alias.text

    listed = api.client.get(f"/v1/agents/{wpid}/runs", headers=api.headers()).json()
    assert_matches_spec("WorkflowRun", listed)
    assert [r["workflow_run_id"] for r in listed] == [alias.json()["run_id"], run["run_id"]]
    assert run["run_id"] in [r["workflow_run_id"] for r in
                             api.client.get("/v1/workflows/runs", headers=api.headers()).json()]
    in_runs_list = api.client.get("/v1/runs", params={"run_type": "workflow_run", "page_size": 100},
                                  headers=api.headers()).json()
    assert {item["run_id"]: item["workflow_permanent_id"] for item in in_runs_list}[run["run_id"]] == wpid
    retry = api.client.post(f"/v1/agents/runs/{run['run_id']}/retry", headers=api.headers())
    assert retry.status_code == 400 and "still queued" in retry.json()["detail"]


def test_retrying_a_download_files_run_says_how_to_start_it_again(api: Api) -> None:
    """A download_files (or login) run is a workflow run in GET /v1/runs but has no stored workflow: its
    retry is refused saying so, not a 404 claiming the run does not exist."""
    created = api.client.post("/v1/run/tasks/download_files", headers=api.headers(), json={
        "navigation_goal": "Download the report", "url": "http://127.0.0.1:9/"})
    assert created.status_code == 200, created.text
    run_id = created.json()["run_id"]
    api.set_run(run_id, status="completed")
    retry = api.client.post(f"/v1/agents/runs/{run_id}/retry", headers=api.headers())
    assert retry.status_code == 400, retry.text
    assert retry.json()["detail"] == (f"Workflow run {run_id} is a download_files run, not a run of a stored "
                                      "workflow: start it again with POST /v1/run/tasks/download_files.")
    task = api.create()["run_id"]
    assert api.client.post(f"/v1/agents/runs/{task}/retry", headers=api.headers()).status_code == 404


@pytest.mark.parametrize(("parameters", "expected"), [
    ({**GOOD, "extra": 1}, "'extra' is not a parameter"),
    ({k: v for k, v in GOOD.items() if k != "count"}, "'count' is required (integer)"),
    ({**GOOD, "count": 1.5}, "'count' must be an integer"),
    ({**GOOD, "flag": "maybe"}, "'flag' must be a boolean"),
    ({**GOOD, "ratio": "lots"}, "'ratio' must be a float"),
    ({**GOOD, "text": ["a"]}, "'text' must be a string"),
    ({**GOOD, "link": "ftp://x/y"}, "'link' must be a file_url"),
])
def test_run_parameters_are_checked_before_a_run_exists(api: Api, parameters: dict[str, Any],
                                                       expected: str) -> None:
    wpid = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    response = start(api, {"agent_id": wpid, "parameters": parameters})
    assert response.status_code == 400, response.text
    assert expected in response.json()["detail"]
    assert api.client.get(f"/v1/agents/{wpid}/runs", headers=api.headers()).json() == []


def test_run_with_code_comes_from_the_run_or_the_definition_with_its_cache_key(api: Api) -> None:
    """The run's run_with: the request's, else the definition's "code"; its scripts' key: the definition's
    cache_key rendered over the parameters, under the workflow's id (docs/replay.md)."""
    coded = create(api, {"json_definition": {**TYPED, "run_with": "code", "ai_fallback": False,
                                             "cache_key": "daily-{{ text }}"}})
    assert (coded["run_with"], coded["ai_fallback"]) == ("code", False)
    assert coded["cache_key"] == "daily-{{ text }}"
    wpid = coded["workflow_permanent_id"]
    run = start(api, {"agent_id": wpid, "parameters": GOOD}).json()
    assert (run["run_with"], run["ai_fallback"]) == ("code", False)
    assert run["run_request"]["cache_key"] == f"{wpid}/daily-hi"
    agent = start(api, {"agent_id": wpid, "parameters": GOOD, "run_with": "agent"}).json()
    assert (agent["run_with"], agent["ai_fallback"]) == ("agent", False)
    listed = api.client.get(f"/v1/agents/{wpid}/runs", headers=api.headers()).json()
    assert_matches_spec("WorkflowRun", listed)
    assert [item["run_with"] for item in listed] == ["agent", "code"]
    plain = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    fallback = start(api, {"agent_id": plain, "parameters": GOOD, "run_with": "code"}).json()
    assert (fallback["run_with"], fallback["ai_fallback"]) == ("code", True)
    assert fallback["run_request"]["cache_key"] == plain  # "default": the workflow's own scripts
    bad = start(api, {"agent_id": plain, "parameters": GOOD, "run_with": "python"})
    assert bad.status_code == 422 and "run_with" in bad.text


def test_a_run_s_max_elapsed_time_minutes_is_the_request_s_else_the_workflow_s(api: Api) -> None:
    limited = create(api, {"json_definition": {**TYPED, "max_elapsed_time_minutes": 30}})
    wpid = limited["workflow_permanent_id"]
    inherited = start(api, {"agent_id": wpid, "parameters": GOOD}).json()
    own = start(api, {"agent_id": wpid, "parameters": GOOD, "max_elapsed_time_minutes": 5}).json()
    assert inherited["run_request"]["max_elapsed_time_minutes"] == 30
    assert own["run_request"]["max_elapsed_time_minutes"] == 5
    listed = api.client.get(f"/v1/agents/{wpid}/runs", headers=api.headers()).json()
    assert_matches_spec("WorkflowRun", listed)
    assert [item["max_elapsed_time_minutes"] for item in listed] == [5, 30]
    for bad in (True, 0, 481):
        refused = start(api, {"agent_id": wpid, "parameters": GOOD, "max_elapsed_time_minutes": bad})
        assert refused.status_code == 422 and "max_elapsed_time_minutes" in refused.text


def test_running_an_unknown_or_deleted_workflow_is_a_404(api: Api) -> None:
    assert start(api, {"agent_id": "wpid_404"}).status_code == 404
    assert start(api, {}).status_code == 400
    wpid = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    api.client.post(f"/v1/agents/{wpid}/delete", headers=api.headers())
    assert start(api, {"agent_id": wpid, "parameters": GOOD}).status_code == 404


def test_a_workflow_run_whose_worker_was_lost_fails_naming_its_block(api: Api) -> None:
    wpid = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    run_id = start(api, {"agent_id": wpid, "parameters": GOOD}).json()["run_id"]
    long_ago = utcnow() - timedelta(minutes=10)
    api.set_run(run_id, status="running", heartbeat_at=long_ago, started_at=long_ago)
    with session_scope(api.settings.database_url) as s:
        s.add(WorkflowRunBlock(id=ids.new_id(ids.WORKFLOW_RUN_BLOCK), run_id=run_id, label="pause",
                               block_type="wait", status="running", position=1, started_at=long_ago))
    with session_scope(api.settings.database_url) as s:
        assert run_id in lifecycle.expire_lost_runs(s, timedelta(seconds=120))
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.headers()).json()
    assert run["status"] == "failed"
    assert run["failure_reason"].startswith("Block 'pause' (wait) failed: The worker running this run")


def test_a_run_names_what_it_cannot_use(api: Api) -> None:
    wpid = create(api, {"json_definition": TYPED})["workflow_permanent_id"]
    proxied = start(api, {"agent_id": wpid, "parameters": GOOD, "proxy_location": "RESIDENTIAL_GB"})
    assert proxied.status_code == 400 and "WAYFARER_PROXY_LOCATIONS" in proxied.json()["detail"]
    assert start(api, {"agent_id": wpid, "parameters": GOOD, "proxy_location": "NONE"}).status_code == 200
    session = start(api, {"agent_id": wpid, "parameters": GOOD, "browser_session_id": "pbs_404"})
    assert session.status_code == 404 and "pbs_404" in session.json()["detail"]
    profile = start(api, {"agent_id": wpid, "parameters": GOOD, "browser_profile_id": "bp_404"})
    assert profile.status_code == 404 and "browser_profile_id" in profile.json()["detail"]
    stored = api.client.post("/v1/agents", headers=api.headers(),
                             json={"json_definition": {**TYPED, "proxy_location": "RESIDENTIAL_GB"}})
    assert stored.status_code == 400 and "WAYFARER_PROXY_LOCATIONS" in stored.json()["detail"]
