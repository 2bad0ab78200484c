"""Runs a stored workflow's blocks in order inside one run: plain functions over a WorkflowContext.

Blocks follow each other in definition order unless one names its `next_block_label` (or a conditional
picks a branch). Each block's output is stored under its label (and read by later templates as
`{{ label_output }}`); a block that does not complete ends the run with a reason naming it, unless it
has `continue_on_failure` (or, inside a loop, `next_loop_on_failure`: on with the next item). The
`finally_block_label` block runs last, whatever happened before (not after a cancel); a run stopped at
its deadline runs it afterwards (`run_finally_block`, with a short limit of its own: workers/runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.db.engine import session_scope
from app.db.models import Run
from app.db.models import Workflow as WorkflowRow
from app.platform.settings import Settings
from app.schemas.workflows import (
    AgentBlockYAML,
    Block,
    CodeBlockYAML,
    ConditionalBlockYAML,
    ContextParameterYAML,
    CredentialParameterYAML,
    FileParserBlockYAML,
    ForLoopBlockYAML,
    HttpRequestBlockYAML,
    SendEmailBlockYAML,
    TextPromptBlockYAML,
    UrlBlockYAML,
    ValidationBlockYAML,
    WaitBlockYAML,
    WorkflowCreateYAMLRequest,
    WorkflowParameterYAML,
)
from app.workflows.templates import evaluate
from app.workflows.validation import output_names, walk_blocks
from workers.agent.contract import OutcomeStatus, RunOutcome
from workers.workflows import blocks
from workers.workflows.agent_blocks import run_agent_block
from workers.workflows.context import BlockResult, WorkflowContext

log = logging.getLogger(__name__)

MAX_BLOCK_RUNS = 1000  # per list of blocks: next_block_label can make a cycle
_ENDING = {"failed", "terminated", "timed_out", "canceled"}


@dataclass(frozen=True)
class RunWorkflow:
    """What a workflow run executes: the stored version's definition and the run's starting values."""

    spec: WorkflowCreateYAMLRequest
    values: dict[str, Any]
    credentials: dict[str, str]
    parameter_keys: tuple[str, ...]  # workflow parameters other than credentials (script references)
    output_keys: tuple[str, ...]  # `label_output` of every block, loops' included (script references)


def load_run_workflow(settings: Settings, run: Run) -> RunWorkflow:
    """The run's workflow version (read even if the workflow was deleted since) and its values:
    parameters, credential ids, context parameters and the run's names."""
    with session_scope(settings.database_url) as s:
        row = s.get(WorkflowRow, run.workflow_id)
        if row is None:
            raise LookupError(f"the workflow version {run.workflow_id} of this run no longer exists")
        spec = WorkflowCreateYAMLRequest.model_validate(row.definition)
    values: dict[str, Any] = {"workflow_run_id": run.id, "workflow_id": run.workflow_permanent_id,
                              "workflow_permanent_id": run.workflow_permanent_id,
                              "workflow_title": spec.title}
    given = (run.run_request or {}).get("parameters") or {}
    credentials: dict[str, str] = {}
    parameter_keys: list[str] = []
    for parameter in spec.workflow_definition.parameters:
        if isinstance(parameter, WorkflowParameterYAML):
            values[parameter.key] = given.get(parameter.key, parameter.default_value)
            if parameter.workflow_parameter_type == "credential_id":
                credentials[parameter.key] = values[parameter.key]
            else:
                parameter_keys.append(parameter.key)
        elif isinstance(parameter, CredentialParameterYAML):
            credentials[parameter.key] = parameter.credential_id
            values[parameter.key] = parameter.credential_id
    for parameter in spec.workflow_definition.parameters:
        if isinstance(parameter, ContextParameterYAML):
            source = values.get(parameter.source_parameter_key)
            values[parameter.key] = source.get(parameter.key) if isinstance(source, dict) else source
    blocks_of_run = walk_blocks(spec.workflow_definition.blocks)
    output_keys = tuple(output_names(block.label)[0] for block in blocks_of_run)
    return RunWorkflow(spec, values, credentials, tuple(parameter_keys), output_keys)


async def run_workflow(wf: WorkflowContext, definition: Sequence[Block],
                       finally_label: str | None) -> RunOutcome:
    outputs = wf.outputs  # kept on the context: a run stopped midway still has what its blocks produced
    main = [block for block in definition if block.label != finally_label]
    stop = await _run_sequence(wf, main, wf.values, outputs)
    if finally_label is not None and (stop is None or stop.status != "canceled"):
        final_stop = await _run_finally(wf, definition, finally_label)
        stop = stop or final_stop
    if stop is not None:
        return RunOutcome(stop.status, output=outputs, failure_reason=stop.reason)
    return RunOutcome("completed", output=outputs)


async def run_finally_block(wf: WorkflowContext, definition: Sequence[Block], finally_label: str) -> None:
    """The finally block of a run the runner stopped at its deadline, unless it had started: the run's
    outcome is the deadline's, the block's own is on its row."""
    await _run_finally(wf, definition, finally_label)


async def _run_finally(wf: WorkflowContext, definition: Sequence[Block], finally_label: str) -> _Stop | None:
    if wf.finally_started:  # once: a finally block the deadline cut short is not started again
        return None
    wf.finally_started = True
    block = next(block for block in definition if block.label == finally_label)
    return await _run_sequence(wf, [block], wf.values, wf.outputs)


@dataclass(frozen=True)
class _Stop:
    """Why a list of blocks stopped early."""

    status: OutcomeStatus
    reason: str
    next_iteration: bool = False  # next_loop_on_failure: the loop goes on with its next item


async def _run_sequence(wf: WorkflowContext, sequence: Sequence[Block], values: dict[str, Any],
                        outputs: dict[str, Any], parent_id: str | None = None, loop_index: int | None = None,
                        loop_value: Any = None) -> _Stop | None:
    position = {block.label: index for index, block in enumerate(sequence)}
    index = runs = 0
    while index < len(sequence):
        runs += 1
        if runs > MAX_BLOCK_RUNS:
            return _Stop("failed", f"more than {MAX_BLOCK_RUNS} blocks ran: do next_block_label labels "
                                   "form a cycle?")
        block = sequence[index]
        result = await _run_block(wf, block, values, parent_id, loop_index, loop_value)
        outputs[block.label] = result.output
        for name in output_names(block.label):
            values[name] = result.output
        if not result.succeeded:
            reason = f"Block '{block.label}' ({block.block_type}) {result.status}: " \
                     f"{result.failure_reason or 'no reason given'}"
            if result.status == "canceled":
                return _Stop("canceled", reason)
            if block.next_loop_on_failure and loop_index is not None:
                return _Stop(result.status, reason, next_iteration=True)
            if not block.continue_on_failure:
                return _Stop(result.status if result.status in _ENDING else "failed", reason)
        following = result.next_label or block.next_block_label
        if following is None:
            index += 1
        elif following in position:
            index = position[following]
        else:
            return _Stop("failed", f"Block '{block.label}' names next block {following!r}, which is not "
                                   "among the blocks it runs with (a loop's blocks can only name each other)")
    return None


async def _run_block(wf: WorkflowContext, block: Block, values: dict[str, Any], parent_id: str | None,
                     loop_index: int | None, loop_value: Any) -> BlockResult:
    block_id = await wf.recorder.start(block.label, block.block_type, parent_id, loop_index, loop_value)
    try:
        result = await _execute(wf, block, block_id, values)
    except asyncio.CancelledError:
        stop = wf.recorder.stopped_by or RunOutcome("canceled")
        await asyncio.shield(wf.recorder.finish(block_id, stop.status,
                                                failure_reason=stop.failure_reason or "the run was stopped"))
        raise
    except Exception as exc:  # a block's own error is that block's failure, named by the caller
        log.warning("block %s failed: %s", block.label, exc)
        result = BlockResult("failed", failure_reason=str(exc) or type(exc).__name__)
    output = json.loads(json.dumps(result.output, default=str))
    await wf.recorder.finish(block_id, result.status, output, result.failure_reason)
    return result


_Handler = Callable[[WorkflowContext, Any, str, dict[str, Any]], Awaitable[BlockResult]]


def _without_id(handler: Callable[[WorkflowContext, Any, dict[str, Any]], Awaitable[BlockResult]]
                ) -> _Handler:
    async def call(wf: WorkflowContext, block: Any, block_id: str, values: dict[str, Any]) -> BlockResult:
        return await handler(wf, block, values)
    return call


async def _execute(wf: WorkflowContext, block: Block, block_id: str, values: dict[str, Any]) -> BlockResult:
    # by class, most derived first: the agent block types (task, login, ...) share AgentBlockYAML's entry
    handler = next((_HANDLERS[kind] for kind in type(block).__mro__ if kind in _HANDLERS), None)
    if handler is None:
        raise AssertionError(f"no handler for {block.block_type}")  # the union is closed
    return await handler(wf, block, block_id, values)


async def _for_loop(wf: WorkflowContext, block: ForLoopBlockYAML, block_id: str,
                    values: dict[str, Any]) -> BlockResult:
    items = loop_items(block, values)
    iterations: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        scope = {**values, "current_value": item, "current_item": item, "current_index": index}
        outputs: dict[str, Any] = {}
        stop = await _run_sequence(wf, block.loop_blocks, scope, outputs, block_id, index, item)
        iterations.append(outputs)
        if stop is not None and not stop.next_iteration:
            return BlockResult(stop.status, iterations, f"iteration {index}: {stop.reason}")
    return BlockResult("completed", iterations)


def loop_items(block: ForLoopBlockYAML, values: dict[str, Any]) -> list[Any]:
    """The list a loop runs over: a parameter or output by name, or a `{{ expression }}`. A JSON text is
    parsed; an object holding exactly one list (an extraction's `{"invoices": [...]}`) gives that list."""
    reference = (block.loop_over_parameter_key or block.loop_variable_reference or "").strip()
    if "{" in reference:
        value = evaluate(reference, values)
    elif reference in values:
        value = values[reference]
    else:
        raise ValueError(f"loop_over_parameter_key {reference!r} has no value")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict):
        lists = [item for item in value.values() if isinstance(item, list)]
        value = lists[0] if len(lists) == 1 else value
    if not isinstance(value, list):
        raise ValueError(f"{reference!r} is not a list: it is {type(value).__name__} "
                         f"{json.dumps(value, default=str)[:100]}")
    return value


async def _conditional(wf: WorkflowContext, block: ConditionalBlockYAML,
                       values: dict[str, Any]) -> BlockResult:
    default = next((branch for branch in block.branch_conditions if branch.is_default), None)
    for branch in block.branch_conditions:
        if branch.is_default or branch.criteria is None:
            continue
        if _truthy(evaluate(branch.criteria.expression, values)):
            return BlockResult("completed", {"executed_branch_expression": branch.criteria.expression,
                                             "executed_branch_next_block": branch.next_block_label},
                               next_label=branch.next_block_label)
    chosen = default.next_block_label if default else None
    output = {"executed_branch_expression": None, "executed_branch_next_block": chosen}
    return BlockResult("completed", output, next_label=chosen)


_HANDLERS: dict[type, _Handler] = {
    AgentBlockYAML: run_agent_block,
    ValidationBlockYAML: run_agent_block,
    ForLoopBlockYAML: _for_loop,
    ConditionalBlockYAML: _without_id(_conditional),
    UrlBlockYAML: _without_id(blocks.goto_url),
    WaitBlockYAML: _without_id(blocks.wait),
    TextPromptBlockYAML: _without_id(blocks.text_prompt),
    HttpRequestBlockYAML: _without_id(blocks.http_request),
    SendEmailBlockYAML: _without_id(blocks.send_email),
    FileParserBlockYAML: _without_id(blocks.file_url_parser),
    CodeBlockYAML: _without_id(blocks.code),
}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "none", "null")
    return bool(value)
