"""Responses checked against Skyvern's OpenAPI document (shared/skyvern-openapi.json), by schema name."""

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


def assert_matches_spec(schema_name: str, value: Any) -> None:
    """`value` is valid against components.schemas[schema_name] (a list: each item)."""
    schema = {**spec_document(), "$ref": f"#/components/schemas/{schema_name}"}
    items = value if isinstance(value, list) else [value]
    for item in items:
        errors = sorted(Draft202012Validator(schema).iter_errors(item), key=lambda e: list(e.absolute_path))
        assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
