"""Responses checked against Skyvern's OpenAPI document (shared/skyvern-openapi.json), by schema name or by
the response an operation declares."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

SPEC_PATH = Path(os.environ.get("WAYFARER_SKYVERN_SPEC", "/work/shared/skyvern-openapi.json"))


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


def spec_document() -> dict[str, Any]:
    """Skyvern's OpenAPI document; skips the test when it is not on this machine."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Skyvern's OpenAPI document is not at {SPEC_PATH} (set WAYFARER_SKYVERN_SPEC)")
    return _spec()


def _assert_valid(schema: dict[str, Any], value: Any) -> None:
    errors = sorted(Draft202012Validator({**spec_document(), **schema}).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


def assert_matches_spec(schema_name: str, value: Any) -> None:
    """`value` is valid against components.schemas[schema_name] (a list: each item)."""
    for item in value if isinstance(value, list) else [value]:
        _assert_valid({"$ref": f"#/components/schemas/{schema_name}"}, item)


def assert_fields_match_spec(schema_name: str, value: dict[str, Any]) -> list[str]:
    """Each of `value`'s fields that components.schemas[schema_name] defines is valid against that
    property's schema (for a body Skyvern builds from that model and others); returns the fields checked."""
    properties = spec_document()["components"]["schemas"][schema_name]["properties"]
    checked = sorted(set(properties) & set(value))
    for name in checked:
        try:
            _assert_valid(properties[name], value[name])
        except AssertionError as exc:
            raise AssertionError(f"{schema_name}.{name}: {exc}") from None
    return checked


def assert_answers_as_declared(method: str, path: str, status: int, value: Any) -> bool:
    """`value` is valid against the JSON response the spec's operation (`path` as the spec writes it, e.g.
    /v1/runs/{run_id}) declares for `status`; False when it declares none to check against."""
    operation = spec_document()["paths"][path][method.lower()]
    declared = operation["responses"].get(str(status), {}).get("content", {}).get("application/json")
    if not declared or not declared.get("schema"):
        return False
    _assert_valid(declared["schema"], value)
    return True
