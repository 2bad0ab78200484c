"""data_extraction_schema, in one place: checked when a run is created, shown to the model, and the
model's complete() output validated against it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MAX_SCHEMA_DEPTH = 32
JSON_SCHEMA_KEYS = ("type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "enum")


def json_depth(value: Any) -> int:
    """Nesting depth of decoded JSON ({} is 1, a scalar 0), computed level by level, not recursively."""
    depth = 0
    level = [value]
    while containers := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        level = [child for item in containers
                 for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def check_extraction_schema(schema: Any) -> Any:
    """A data_extraction_schema no deeper than MAX_SCHEMA_DEPTH and, when it is an object, a valid JSON
    Schema. Raises ValueError with what is wrong."""
    if isinstance(schema, str):
        try:
            decoded = json.loads(schema)
        except ValueError:
            return schema  # Skyvern takes a plain-language description too
        if not isinstance(decoded, dict | list):
            return schema
        check_extraction_schema(decoded)
        return schema
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    if isinstance(schema, dict):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path)
            raise ValueError(f"is not a valid JSON Schema: {exc.message}"
                             + (f" (at {where})" if where else "")) from None
    return schema


def as_json_schema(schema: Any) -> dict[str, Any] | None:
    """data_extraction_schema as a JSON schema to validate against, or None when it only describes.

    A dict with schema keywords is a JSON schema; a list holding one such dict means "an array of
    those"; anything else (a string, a list of examples) is a description handed to the model.
    """
    if isinstance(schema, dict) and any(key in schema for key in JSON_SCHEMA_KEYS):
        return schema
    if isinstance(schema, list) and len(schema) == 1 and as_json_schema(schema[0]) is not None:
        return {"type": "array", "items": schema[0]}
    return None


def output_problem(schema: Any, output: Any) -> str | None:
    """Why `output` does not satisfy data_extraction_schema (a JSON schema), or None."""
    json_schema = as_json_schema(schema)
    if json_schema is None:
        return None
    try:
        jsonschema.validate(output, json_schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        at = f" at {where}" if where else ""
        return f"output{at} does not match data_extraction_schema: {exc.message}."
    except jsonschema.SchemaError as exc:
        return f"data_extraction_schema is not a valid JSON schema ({exc.message}); output cannot be checked."
    return None
