"""Hostile and malformed requests get a clear 4xx naming the problem; hostile URLs never reach the
browser as anything but a failed action."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack

FIFTY_MB = 50 * 1024 * 1024
HOSTILE_URLS = ["file:///etc/passwd", "javascript:alert(document.cookie)", "chrome://settings",
                "view-source:http://127.0.0.1/", "data:text/html,<h1>x</h1>"]


def _nested_request(depth: int) -> bytes:
    """A request whose schema nests `depth` objects (built as text: too deep for json.dumps)."""
    schema = '{"type": "object", "properties": {"inner": ' * depth + '{"type": "string"}' + "}}" * depth
    return f'{{"prompt": "x", "data_extraction_schema": {schema}}}'.encode()


def _detail_names(response_json: dict[str, object], field: str) -> bool:
    detail = response_json["detail"]
    if isinstance(detail, list):
        return any(field in item.get("loc", []) for item in detail if isinstance(item, dict))
    return field in str(detail)


def test_a_50_mb_prompt_is_refused_with_413(server: Stack) -> None:
    body = b'{"prompt": "' + b"a" * FIFTY_MB + b'"}'
    with server.client() as client:
        response = client.post("/v1/run/tasks", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "WAYFARER_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_an_oversized_chunked_body_is_refused_with_413(server: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(12):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    with server.client() as client:  # no Content-Length: the limit counts what arrives
        response = client.post("/v1/run/tasks", content=chunks(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "WAYFARER_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_a_deeply_nested_extraction_schema_is_422(server: Stack) -> None:
    with server.client() as client:
        response = client.post("/v1/run/tasks", content=_nested_request(40),
                               headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert _detail_names(response.json(), "data_extraction_schema")
    assert "nested deeper than 32 levels" in response.text


def test_json_too_deep_to_parse_is_a_4xx_and_the_server_lives_on(server: Stack) -> None:
    with server.client() as client:
        response = client.post("/v1/run/tasks", content=_nested_request(20000),
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert "parsing the body" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("schema", [{"type": "objekt"}, {"type": "object", "properties": {"a": {"type": 5}}},
                                    {"type": "object", "required": "name"}])
def test_an_invalid_json_schema_is_422_naming_the_field(server: Stack, schema: dict[str, object]) -> None:
    with server.client() as client:
        response = client.post("/v1/run/tasks", json={"prompt": "x", "data_extraction_schema": schema})
    assert response.status_code == 422, response.text
    assert _detail_names(response.json(), "data_extraction_schema")
    assert "not a valid JSON Schema" in response.text


def test_a_valid_extraction_schema_is_accepted_as_object_or_json_text(server: Stack) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    with server.client() as client:
        for value in (schema, '{"type": "object"}', "the page title"):
            response = client.post("/v1/run/tasks", json={"prompt": "x", "url": "http://127.0.0.1:9/",
                                                          "data_extraction_schema": value})
            assert response.status_code == 200, response.text
            client.post(f"/v1/runs/{response.json()['run_id']}/cancel")


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_start_url_that_is_not_http_is_refused(server: Stack, url: str) -> None:
    with server.client() as client:
        response = client.post("/v1/run/tasks", json={"prompt": "x", "url": url})
    assert response.status_code == 422
    assert _detail_names(response.json(), "url")


def test_goto_url_to_a_hostile_scheme_fails_the_action_not_the_worker(
    server: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    fake_llm.script(token, [[{"name": "goto_url", "args": {"url": url}}] for url in HOSTILE_URLS]
                    + [[{"name": "complete", "args": {"output": {"ok": True}, "summary": "done"}}]])
    created = server.create_run(prompt=f"Open things ({token})", url=sites.url(FORM_PATH))
    run = server.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    with server.client() as client:
        timeline = client.get(f"/v1/runs/{created['run_id']}/timeline").json()
    hostile = [action for entry in timeline for action in entry["block"]["actions"]
               if action["action_type"] == "goto_url"]  # the script opens only hostile URLs
    assert len(hostile) == len(HOSTILE_URLS)
    for action in hostile:
        assert action["status"] == "failed"
        assert "only http(s) URLs can be opened" in action["description"], action


def test_upload_file_never_takes_a_file_from_the_workers_disk(
    server: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    secret_file = Path(server.env["WAYFARER_DATA_DIR"]) / "wayfarer.db"
    attach = {"role": "button", "name": "Attach a file"}
    targets = ["/etc/passwd", "file:///etc/passwd", str(secret_file)]
    fake_llm.script(token, [[{"name": "upload_file", "args": {"ref": attach, "file_url": target}}]
                            for target in targets]
                    + [[{"name": "complete", "args": {"output": {"ok": True}, "summary": "done"}}]])
    created = server.create_run(prompt=f"Attach files ({token})", url=sites.url("/upload.html"))
    assert server.wait_final(created["run_id"])["status"] == "completed"
    with server.client() as client:
        timeline = client.get(f"/v1/runs/{created['run_id']}/timeline").json()
    uploads = [action for entry in timeline for action in entry["block"]["actions"]
               if action["action_type"] == "upload_file"]
    assert sorted(action["file_url"] for action in uploads) == sorted(targets)
    for action in uploads:
        assert action["status"] == "failed"
        assert "WAYFARER_ALLOW_LOCAL_FILES" in action["description"], action
