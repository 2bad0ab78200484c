"""A workflow definition checked before it is stored: every error is a 400 naming the block label and
the field, so a definition that is stored can be run without surprises of that kind.

Checks beyond the models in app/schemas/workflows.py: unique labels and keys; templates that parse and
name only parameters, earlier blocks' outputs, run names, and (inside a loop) the loop's variables; loops
over something that can be a list; labels named by next_block_label / finally_block_label exist;
`code` blocks only when allowed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from app.schemas.workflows import (
    SUPPORTED_BLOCK_TYPES,
    SUPPORTED_PARAMETER_TYPES,
    Block,
    CodeBlockYAML,
    ConditionalBlockYAML,
    ContextParameterYAML,
    ForLoopBlockYAML,
    WorkflowCreateYAMLRequest,
    WorkflowDefinitionYAML,
    WorkflowParameterYAML,
)
from app.workflows.templates import LOOP_NAMES, RUN_NAMES, TemplateInvalid, names_in

# Fields that hold names, enums or schemas rather than templates.
_NOT_TEMPLATED = {"label", "block_type", "next_block_label", "engine", "method", "file_type", "data_schema",
                  "json_schema", "loop_blocks", "loop_over_parameter_key", "loop_variable_reference",
                  "parameter_keys", "criteria_type", "model", "error_code_mapping"}
# Blocks whose output is never a list (nothing to loop over).
_NEVER_LIST = {"goto_url", "wait", "send_email", "validation", "login", "conditional"}


class WorkflowInvalid(ValueError):
    """The definition cannot be stored (HTTP 400); the message names the block label and field."""


def parse_request(body: dict[str, Any], allow_code_blocks: bool) -> WorkflowCreateYAMLRequest:
    """A create/update body — `json_definition`, `yaml_definition` (as the SDKs send), or the definition
    itself as the JSON body — as a checked WorkflowCreateYAMLRequest."""
    raw = _definition_of(body)
    _default_parameter_types(raw)
    try:
        request = WorkflowCreateYAMLRequest.model_validate(raw)
    except ValidationError as exc:
        raise WorkflowInvalid("; ".join(_describe(raw, error) for error in exc.errors()[:3])) from None
    check_definition(request.workflow_definition, allow_code_blocks)
    return request


def _definition_of(body: dict[str, Any]) -> Any:
    if "json_definition" not in body and "yaml_definition" not in body:
        return body
    if body.get("json_definition") is not None:
        return body["json_definition"]
    text = body.get("yaml_definition")
    if not isinstance(text, str) or not text.strip():
        raise WorkflowInvalid("Give the definition as json_definition (an object) or yaml_definition (text).")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowInvalid(f"yaml_definition is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise WorkflowInvalid("yaml_definition must be a mapping with title and workflow_definition.")
    return raw


def _default_parameter_types(raw: Any) -> None:
    """A parameter without parameter_type is a workflow parameter, as in Skyvern's YAML."""
    definition = raw.get("workflow_definition") if isinstance(raw, dict) else None
    parameters = definition.get("parameters") if isinstance(definition, dict) else None
    for parameter in parameters if isinstance(parameters, list) else []:
        if isinstance(parameter, dict):
            parameter.setdefault("parameter_type", "workflow")


def _describe(raw: Any, error: Any) -> str:
    """A pydantic error as `block 'label': field: message`, the label found by walking the raw input."""
    current: Any = raw
    block: str | None = None
    path: list[str] = []
    for part in error["loc"]:
        if isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
            if path and path[-1] in ("blocks", "loop_blocks") and isinstance(current, dict):
                block, path = str(current.get("label", f"#{part + 1}")), []
            else:
                path.append(f"[{part}]")
        elif isinstance(current, dict) and part not in current \
                and part in (current.get("block_type"), current.get("parameter_type")):
            continue  # the union's tag, not a field
        else:
            path.append(str(part))
            current = current.get(part) if isinstance(current, dict) else None
    message = error["msg"]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tag_name = error["ctx"]["discriminator"].strip("'")
        supported = SUPPORTED_PARAMETER_TYPES if tag_name == "parameter_type" else SUPPORTED_BLOCK_TYPES
        problem = f"{error['ctx']['tag']!r} is not supported" if error["type"] == "union_tag_invalid" \
            else f"{tag_name} is required"
        message = f"{problem}; supported: {', '.join(supported)}"
    where = ".".join(path).replace(".[", "[") or "definition"
    return f"block {block!r}: {where}: {message}" if block else f"{where}: {message}"


@dataclass
class _Scope:
    """What a block's templates may name: parameters, outputs of blocks before it, loop variables."""

    parameters: dict[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)  # name -> the block type that produces it
    in_loop: bool = False

    def names(self) -> set[str]:
        loop = set(LOOP_NAMES) if self.in_loop else set()
        return set(self.parameters) | set(self.outputs) | set(RUN_NAMES) | loop


def output_names(label: str) -> tuple[str, str]:
    """The names a block's output is read by: `label_output` (Skyvern's) and `label`."""
    return f"{label}_output", label


def walk_blocks(blocks: Sequence[Block]) -> Iterator[Block]:
    """Every block, loops' blocks included, in definition order."""
    for block in blocks:
        yield block
        if isinstance(block, ForLoopBlockYAML):
            yield from walk_blocks(block.loop_blocks)


def check_definition(definition: WorkflowDefinitionYAML, allow_code_blocks: bool) -> None:
    parameters: dict[str, Any] = {}
    for parameter in definition.parameters:
        if parameter.key in parameters:
            raise WorkflowInvalid(f"parameters: key {parameter.key!r} is used twice")
        parameters[parameter.key] = parameter
    for parameter in definition.parameters:
        if isinstance(parameter, ContextParameterYAML) and parameter.source_parameter_key not in parameters:
            raise WorkflowInvalid(f"parameters: {parameter.key!r}: source_parameter_key "
                                  f"{parameter.source_parameter_key!r} is not a parameter")
    labels: set[str] = set()
    for block in walk_blocks(definition.blocks):
        if block.label in labels:
            raise WorkflowInvalid(f"block {block.label!r}: label: used by another block; labels are unique")
        if block.label in parameters or f"{block.label}_output" in parameters:
            raise WorkflowInvalid(f"block {block.label!r}: label: a parameter has the name of its output")
        if isinstance(block, CodeBlockYAML) and not allow_code_blocks:
            raise WorkflowInvalid(f"block {block.label!r}: block_type: code blocks run arbitrary Python and "
                                  "are refused on this server (WAYFARER_ALLOW_CODE_BLOCKS=true allows them)")
        labels.add(block.label)
    for block in walk_blocks(definition.blocks):
        if isinstance(block, ConditionalBlockYAML):
            _check_branches(block, labels)
        if block.next_block_label is not None and block.next_block_label not in labels:
            raise WorkflowInvalid(f"block {block.label!r}: next_block_label: no block is labelled "
                                  f"{block.next_block_label!r}")
    if definition.finally_block_label is not None and definition.finally_block_label not in labels:
        raise WorkflowInvalid(f"finally_block_label: no block is labelled {definition.finally_block_label!r}")
    every_output = {name: block.label for block in walk_blocks(definition.blocks)
                    for name in output_names(block.label)}
    _check_blocks(definition.blocks, _Scope(parameters), every_output)


def _check_branches(block: ConditionalBlockYAML, labels: set[str]) -> None:
    for index, branch in enumerate(block.branch_conditions):
        where = f"block {block.label!r}: branch_conditions[{index}]"
        if branch.criteria is not None and branch.criteria.criteria_type != "jinja2_template":
            raise WorkflowInvalid(f"{where}.criteria.criteria_type: only jinja2_template expressions are "
                                  "supported here")
        if branch.criteria is None and not branch.is_default:
            raise WorkflowInvalid(f"{where}.criteria: a branch that is not is_default needs criteria")
        if branch.next_block_label is not None and branch.next_block_label not in labels:
            raise WorkflowInvalid(f"{where}.next_block_label: no block is labelled "
                                  f"{branch.next_block_label!r}")


def _check_blocks(blocks: Sequence[Block], scope: _Scope, every_output: dict[str, str]) -> None:
    for block in blocks:
        for field_name, text in _template_fields(block.model_dump(exclude=_NOT_TEMPLATED)):
            _check_names(block.label, field_name, text, scope, every_output)
        if isinstance(block, ForLoopBlockYAML):
            _check_loop(block, scope, every_output)
            _check_blocks(block.loop_blocks, _Scope(scope.parameters, dict(scope.outputs), in_loop=True),
                          every_output)
        for name in output_names(block.label):
            scope.outputs[name] = block.block_type


def _template_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _template_fields(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_fields(item, f"{path}[{index}]")


def _check_names(label: str, field_name: str, text: str, scope: _Scope, every_output: dict[str, str]) -> None:
    try:
        names = names_in(text)
    except TemplateInvalid as exc:
        raise WorkflowInvalid(f"block {label!r}: {field_name}: {exc}") from None
    for name in sorted(names - scope.names()):
        if name in every_output:
            raise WorkflowInvalid(f"block {label!r}: {field_name}: {{{{ {name} }}}} is the output of block "
                                  f"{every_output[name]!r}, which does not run before this block")
        if name in LOOP_NAMES:
            raise WorkflowInvalid(f"block {label!r}: {field_name}: {{{{ {name} }}}} is only defined inside a "
                                  "for_loop's loop_blocks")
        known = ", ".join(sorted(scope.parameters)) or "none"
        raise WorkflowInvalid(f"block {label!r}: {field_name}: {{{{ {name} }}}} names no parameter or "
                              f"earlier block output (parameters: {known})")


def _check_loop(block: ForLoopBlockYAML, scope: _Scope, every_output: dict[str, str]) -> None:
    label = block.label
    reference = block.loop_over_parameter_key or (block.loop_variable_reference or "")
    field_name = "loop_over_parameter_key" if block.loop_over_parameter_key else "loop_variable_reference"
    if not reference.strip():
        raise WorkflowInvalid(f"block {label!r}: loop_over_parameter_key: name the list to loop over "
                              "(a parameter or an earlier block's output), or give loop_variable_reference")
    if "{" in reference:
        _check_names(label, field_name, reference, scope, every_output)
        return
    name = reference.strip()
    if name not in scope.names():
        _check_names(label, field_name, "{{ " + name + " }}", scope, every_output)
    parameter = scope.parameters.get(name)
    if isinstance(parameter, WorkflowParameterYAML):
        if parameter.workflow_parameter_type != "json":
            raise WorkflowInvalid(f"block {label!r}: {field_name}: {name!r} is a "
                                  f"{parameter.workflow_parameter_type} parameter, not a list (use a json "
                                  "parameter holding a list)")
        if parameter.default_value is not None and not isinstance(parameter.default_value, list):
            raise WorkflowInvalid(f"block {label!r}: {field_name}: the default_value of {name!r} is not "
                                  "a list")
    elif scope.outputs.get(name) in _NEVER_LIST:
        raise WorkflowInvalid(f"block {label!r}: {field_name}: {name!r} is the output of a "
                              f"{scope.outputs[name]} block, which is not a list")
