"""Every operation of Skyvern's OpenAPI document answers here: its real response, or a 404 whose detail
names the operation and says this server does not provide it (never a bare "Not Found", never 5xx)."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import pytest
from skyvern.client import Skyvern
from skyvern.client.core.api_error import ApiError
from starlette.routing import Match

from app.api.not_provided import find_operation, not_provided_detail
from tests.integration.api.conftest import Api
from tests.support.spec import spec_document

METHODS = ("get", "post", "put", "patch", "delete")


def _spec_operations() -> list[list[str]]:
    return [[method.upper(), path, op.get("x-fern-sdk-method-name") or op["operationId"],
             op.get("summary", "")] for path, item in spec_document()["paths"].items()
            for method, op in item.items() if method in METHODS]


def test_the_operations_table_is_the_specs() -> None:
    shipped = json.loads(files("app.schemas").joinpath("skyvern_operations.json").read_text())
    expected = _spec_operations()
    assert shipped == expected, ("app/schemas/skyvern_operations.json differs from the spec; write it as:\n"
                                 + "[\n" + ",\n".join(json.dumps(row) for row in expected) + "\n]")


def _served_by_a_route(api: Api, method: str, path: str) -> bool:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b""}
    app: Any = api.client.app
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def test_each_spec_operation_answers_for_real_or_explains_it_is_not_provided(api: Api) -> None:
    provided, missing = [], []
    for method, template, name, _ in _spec_operations():
        path = re.sub(r"\{([^/}]+)\}", r"missing_\1", template)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = api.client.request(method, path, json=body, headers=api.headers())
        where = f"{method} {path} ({name}): {response.status_code} {response.text[:300]}"
        assert response.status_code < 500 and response.status_code != 405, where
        assert response.json() != {"detail": "Not Found"}, where
        op = find_operation(method, path)
        assert op is not None and op.name == name, where
        if _served_by_a_route(api, method, path):
            provided.append(name)
            assert response.json() != {"detail": not_provided_detail(op)}, where
        else:
            missing.append(name)
            explained = {"detail": not_provided_detail(op)}
            assert (response.status_code, response.json()) == (404, explained), where
            assert f"Skyvern's {name} operation" in response.json()["detail"]
    assert "run_task" in provided and "get_run_timeline" in provided
    assert {"list_tag_keys", "list_custom_llms", "get_workflow_tags", "run_sdk_action"} <= set(missing)


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v2/runs"])
def test_paths_outside_the_spec_keep_the_plain_404(api: Api, path: str) -> None:
    response = api.client.get(path, headers=api.headers())
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_the_sdk_reads_the_explanation(api: Api) -> None:
    client = Skyvern(base_url=str(api.client.base_url), api_key=api.api_key, httpx_client=api.client)
    for call, name in ((client.list_tag_keys, "list_tag_keys"), (client.list_tag_values, "list_tag_values"),
                       (client.list_custom_llms, "list_custom_llms")):
        with pytest.raises(ApiError) as raised:  # these operations declare no 404: the plain ApiError
            call()
        assert raised.value.status_code == 404
        assert f"does not provide Skyvern's {name} operation" in raised.value.body["detail"]


def test_older_sdks_workflow_paths_are_explained_under_their_agents_names(api: Api) -> None:
    response = api.client.get("/v1/workflows/wpid_1/tags", headers=api.headers())
    assert response.status_code == 404
    assert "get_workflow_tags operation" in response.json()["detail"]
