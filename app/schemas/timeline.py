"""Skyvern's WorkflowRunTimeline (GET /v1/runs/{id}/timeline): `block` and `thought` entries with
children, and the webhook attempts a run's delivery made (GET /v1/runs/{id}/webhook_attempts, an
extension). Field names and enums are the spec's; fields Wayfarer has nothing for are left out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel

ActionType = Literal[
    "click", "input_text", "paste_text", "upload_file", "download_file", "select_option", "checkbox", "wait",
    "hover", "null_action", "solve_captcha", "terminate", "complete", "reload_page", "close_page", "new_tab",
    "switch_tab", "extract", "verification_code", "goto_url", "go_back", "go_forward", "scroll", "keypress",
    "move", "drag", "left_mouse", "execute_js",
]
ACTION_TYPES: frozenset[str] = frozenset(get_args(ActionType))
# the spec's BlockType values a run here can be: a task run's, and a workflow's (app/schemas/workflows.py)
BlockType = Literal["task", "navigation", "extraction", "action", "login", "file_download", "validation",
                    "goto_url", "wait", "for_loop", "conditional", "text_prompt", "http_request",
                    "send_email", "file_url_parser", "code"]
ThoughtType = Literal["plan", "metadata"]  # a step's reasoning; a hand-over of control


class TimelineAction(BaseModel):
    """Skyvern's Action."""

    action_type: ActionType
    status: Literal["completed", "failed"]
    action_id: str
    organization_id: str
    workflow_run_id: str | None = None
    task_id: str
    step_id: str
    step_order: int
    action_order: int
    description: str | None = None  # what the action did (or, for a tool Skyvern has no type for, which)
    reasoning: str | None = None
    element_id: str | None = None
    text: str | None = None
    file_url: str | None = None
    created_at: datetime
    modified_at: datetime


class WorkflowRunBlock(BaseModel):
    workflow_run_block_id: str
    workflow_run_id: str
    organization_id: str
    label: str | None = None
    block_type: BlockType
    status: str
    output: dict[str, Any] | list[Any] | str | None = None
    failure_reason: str | None = None
    engine: str | None = None
    task_id: str
    url: str | None = None
    final_url: str | None = None
    navigation_goal: str | None = None
    data_schema: dict[str, Any] | list[Any] | str | None = None
    actions: list[TimelineAction] = []
    duration: float | None = None  # seconds from start to end (or to now), paused time included
    parent_workflow_run_block_id: str | None = None  # a workflow loop's block: the loop's
    current_index: int | None = None  # in a loop: the iteration
    current_value: str | None = None  # in a loop: the item (JSON unless it is text)
    script_run: dict[str, Any] | None = None  # run_with "code": this block's (the run's script_run.blocks)
    created_at: datetime
    modified_at: datetime


class Thought(BaseModel):
    thought_id: str
    task_id: str
    organization_id: str
    workflow_run_id: str | None = None
    workflow_run_block_id: str | None = None
    thought: str | None = None
    answer: str | None = None
    observation: str | None = None
    thought_type: ThoughtType
    output: dict[str, Any] | None = None
    input_token_count: int | None = None
    output_token_count: int | None = None
    thought_cost: float | None = None
    last_llm_model: str | None = None
    created_at: datetime
    modified_at: datetime


class WorkflowRunTimeline(BaseModel):
    type: Literal["block", "thought"]
    block: WorkflowRunBlock | None = None
    thought: Thought | None = None
    children: list[WorkflowRunTimeline] = []
    created_at: datetime
    modified_at: datetime


class WebhookAttemptResponse(BaseModel):
    """One delivery attempt of the run's webhook (an extension): status_code None when no answer came."""

    webhook_attempt_id: str
    delivery_id: str | None = None  # the same on every attempt of one delivery (the receiver's header)
    attempt: int
    url: str
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    replay: bool
    created_at: datetime
