"""A run's timeline in Skyvern's shape (WorkflowRunTimeline) and its webhook attempts.

A stored workflow's run is one `block` entry per block as it ran, a loop's blocks nested as its
children. A task run is one `block` entry (block_type task; login and download_files runs: login,
file_download) holding the run's status, url, goal, output, failure reason, duration and every action.
Its children, oldest first, are one `thought` per step (the model's reasoning, tokens, model;
`output.replay` for a step replayed or healed from a script) and one `metadata` thought per hand-over
recorded in run_events (control taken or given back, a wait for a person).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Action, Run, RunEvent, Step, WebhookAttempt, utcnow
from app.db.models import WorkflowRunBlock as WorkflowRunBlockRow
from app.runs.handover import CONTROL_GIVEN_BACK, CONTROL_TAKEN, WAITING_FOR_PERSON
from app.runs.kinds import DOWNLOAD_FILES_WORKFLOW, LOGIN_WORKFLOW, WORKFLOW_RUN_TYPE
from app.schemas.timeline import (
    ACTION_TYPES,
    ActionType,
    BlockType,
    Thought,
    TimelineAction,
    WebhookAttemptResponse,
    WorkflowRunBlock,
    WorkflowRunTimeline,
)

_BLOCK_TYPES: dict[str | None, BlockType] = {LOGIN_WORKFLOW: "login",
                                              DOWNLOAD_FILES_WORKFLOW: "file_download"}
_HANDOVER_TEXT = {
    CONTROL_TAKEN: "A person took control of the browser",
    CONTROL_GIVEN_BACK: "Control was given back to the agent",
    WAITING_FOR_PERSON: "The run waited for a person",
}


def run_timeline(session: Session, run: Run, llm_model: str) -> list[WorkflowRunTimeline]:
    """The run's one block, its step thoughts and hand-overs as children in order (a stored workflow's
    run: its blocks, `_workflow_timeline`). `llm_model` is the configured planner model (steps do not
    record which model answered them)."""
    if run.workflow_id is not None:
        return _workflow_timeline(session, run, llm_model)
    steps = session.scalars(select(Step).where(Step.run_id == run.id).order_by(Step.index)).all()
    actions = session.scalars(select(Action).where(Action.run_id == run.id)
                              .order_by(Action.created_at, Action.index)).all()
    events = session.scalars(select(RunEvent).where(RunEvent.run_id == run.id)
                             .order_by(RunEvent.created_at, RunEvent.id)).all()
    block_id = "wrb_" + run.id.split("_", 1)[-1]
    workflow_run_id = run.id if run.run_type == WORKFLOW_RUN_TYPE else None
    order = {step.id: step.index for step in steps}
    by_step: dict[str, list[Action]] = {}
    for action in actions:
        by_step.setdefault(action.step_id, []).append(action)
    children = [_step_thought(run, step, by_step.get(step.id, []), block_id, workflow_run_id, llm_model)
                for step in steps]
    children += [_handover_thought(run, event, block_id, workflow_run_id) for event in events]
    children.sort(key=lambda entry: entry.created_at)
    block = WorkflowRunBlock(
        workflow_run_block_id=block_id, workflow_run_id=run.id, organization_id=run.organization_id,
        label=run.title, block_type=_BLOCK_TYPES.get(run.run_request.get("workflow_id"), "task"),
        status=run.status, output=run.output, failure_reason=run.failure_reason, engine=run.engine,
        task_id=run.id, url=run.url, final_url=steps[-1].url if steps else None, navigation_goal=run.prompt,
        data_schema=run.run_request.get("data_extraction_schema"),
        actions=[_action(run, action, order.get(action.step_id, 0), workflow_run_id) for action in actions],
        duration=_duration(run.started_at, run.finished_at), created_at=run.created_at,
        modified_at=run.modified_at)
    return [WorkflowRunTimeline(type="block", block=block, children=children, created_at=run.created_at,
                                modified_at=run.modified_at)]


def _workflow_timeline(session: Session, run: Run, llm_model: str) -> list[WorkflowRunTimeline]:
    """One `block` entry per block of a stored workflow's run as it ran (workflow_run_blocks), oldest
    first; its children: its agent's steps as thoughts and, for a loop, its blocks (one set per
    iteration, with current_index / current_value). An agent block carries its actions."""
    rows = session.scalars(select(WorkflowRunBlockRow).where(WorkflowRunBlockRow.run_id == run.id)
                           .order_by(WorkflowRunBlockRow.position)).all()
    steps = session.scalars(select(Step).where(Step.run_id == run.id).order_by(Step.index)).all()
    actions = session.scalars(select(Action).where(Action.run_id == run.id)
                              .order_by(Action.created_at, Action.index)).all()
    by_step: dict[str, list[Action]] = {}
    for action in actions:
        by_step.setdefault(action.step_id, []).append(action)
    steps_of: dict[str | None, list[Step]] = {}
    for step in steps:
        steps_of.setdefault(step.workflow_run_block_id, []).append(step)
    script_runs = {block.get("workflow_run_block_id"): block  # run_with "code": each agent block's
                   for block in (run.script_run or {}).get("blocks", [])}
    blocks_in: dict[str | None, list[WorkflowRunBlockRow]] = {}
    for row in rows:
        blocks_in.setdefault(row.parent_id, []).append(row)

    def entry(row: WorkflowRunBlockRow) -> WorkflowRunTimeline:
        own = steps_of.get(row.id, [])
        value = row.loop_value
        block = WorkflowRunBlock(
            workflow_run_block_id=row.id, workflow_run_id=run.id, organization_id=run.organization_id,
            parent_workflow_run_block_id=row.parent_id, label=row.label,
            block_type=cast(BlockType, row.block_type), status=row.status, output=row.output,
            failure_reason=row.failure_reason, task_id=run.id, final_url=own[-1].url if own else None,
            actions=[_action(run, action, step.index, run.id)
                     for step in own for action in by_step.get(step.id, [])],
            current_index=row.loop_index,
            current_value=value if isinstance(value, str) or value is None else json.dumps(value),
            script_run=script_runs.get(row.id),
            duration=_duration(row.started_at, row.finished_at), created_at=row.created_at,
            modified_at=row.modified_at)
        children = [_step_thought(run, step, by_step.get(step.id, []), row.id, run.id, llm_model)
                    for step in own]
        children += [entry(child) for child in blocks_in.get(row.id, [])]
        children.sort(key=lambda child: child.created_at)
        return WorkflowRunTimeline(type="block", block=block, children=children, created_at=row.created_at,
                                   modified_at=row.modified_at)

    return [entry(row) for row in blocks_in.get(None, [])]


def _duration(started: datetime | None, finished: datetime | None) -> float | None:
    return ((finished or utcnow()) - started).total_seconds() if started else None


def _action(run: Run, action: Action, step_order: int, workflow_run_id: str | None) -> TimelineAction:
    known = action.action_type in ACTION_TYPES
    text, ref, file_url = (value if isinstance(value := (action.arguments or {}).get(name), str) else None
                           for name in ("text", "ref", "file_url"))
    return TimelineAction(
        action_type=cast(ActionType, action.action_type if known else "null_action"),
        status="completed" if action.succeeded else "failed", action_id=action.id,
        organization_id=run.organization_id, workflow_run_id=workflow_run_id, task_id=run.id,
        step_id=action.step_id, step_order=step_order, action_order=action.index,
        description=action.outcome if known else f"{action.action_type}: {action.outcome}",
        reasoning=action.reasoning, element_id=ref, text=text, file_url=file_url,
        created_at=action.created_at, modified_at=action.modified_at)


def _step_thought(run: Run, step: Step, actions: Sequence[Action], block_id: str,
                  workflow_run_id: str | None, llm_model: str) -> WorkflowRunTimeline:
    reasoning = [action.reasoning for action in actions if action.reasoning]
    marks = {action.replay for action in actions if action.replay}  # run_with "code": from the script
    replay = "healed" if "healed" in marks else "replayed" if marks else None
    if replay == "replayed" and not step.llm_calls:
        reasoning.insert(0, "Replayed from the run's script, with no LLM call.")
    thought = Thought(
        thought_id=step.id, task_id=run.id, organization_id=run.organization_id,
        workflow_run_id=workflow_run_id, workflow_run_block_id=block_id, thought_type="plan",
        thought="\n".join(dict.fromkeys(reasoning)) or None,
        observation=f"Step {step.index + 1} on {step.url}" if step.url else None,
        answer="\n".join(f"{action.action_type} -> {action.outcome}" for action in actions) or None,
        input_token_count=step.prompt_tokens, output_token_count=step.completion_tokens,
        thought_cost=step.llm_cost,
        output={"replay": replay} if replay else None,
        last_llm_model=llm_model if step.llm_calls else None, created_at=step.created_at,
        modified_at=step.modified_at)
    return WorkflowRunTimeline(type="thought", thought=thought, created_at=step.created_at,
                               modified_at=step.modified_at)


def _handover_thought(run: Run, event: RunEvent, block_id: str,
                      workflow_run_id: str | None) -> WorkflowRunTimeline:
    text = _HANDOVER_TEXT.get(event.kind, event.kind)
    thought = Thought(
        thought_id=event.id, task_id=run.id, organization_id=run.organization_id,
        workflow_run_id=workflow_run_id, workflow_run_block_id=block_id, thought_type="metadata",
        thought=f"{text}: {event.detail}" if event.detail else text,
        output={"event": event.kind, "key_id": event.key_id, "detail": event.detail},
        created_at=event.created_at, modified_at=event.modified_at)
    return WorkflowRunTimeline(type="thought", thought=thought, created_at=event.created_at,
                               modified_at=event.modified_at)


def webhook_attempts(session: Session, run_id: str) -> list[WebhookAttemptResponse]:
    """GET /v1/runs/{id}/webhook_attempts: every delivery attempt of the run's webhook, oldest first."""
    rows = session.scalars(select(WebhookAttempt).where(WebhookAttempt.run_id == run_id)
                           .order_by(WebhookAttempt.created_at, WebhookAttempt.attempt)).all()
    return [WebhookAttemptResponse(webhook_attempt_id=row.id, delivery_id=row.delivery_id,
                                   attempt=row.attempt, url=row.url,
                                   status_code=row.status_code, latency_ms=row.latency_ms, error=row.error,
                                   replay=row.replay, created_at=row.created_at) for row in rows]
