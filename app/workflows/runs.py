"""Runs of stored workflows: start one (parameters typed and checked first), retry one, list them.

A workflow run is a run (`wr_`, run_type workflow_run) created by app/runs/service.create_task_run with a
WorkflowSource naming the workflow version; the same dispatcher and workers take it, and the runner hands
it to the workflow engine (workers/workflows/) instead of the task agent loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.credentials.vault import find_credential
from app.db.models import Run
from app.db.models import Workflow as WorkflowRow
from app.dispatch import Dispatcher
from app.platform.settings import Settings
from app.runs import service
from app.runs.kinds import WORKFLOW_RUN_TYPE
from app.runs.service import RunRejected, UnknownRun, WorkflowSource
from app.runs.views import run_with_fields, trigger_type
from app.schemas.runs import TaskRunRequest, normalize_http_url
from app.schemas.workflows import (
    CredentialParameterYAML,
    WorkflowCreateYAMLRequest,
    WorkflowParameterYAML,
    WorkflowRun,
    WorkflowRunRequest,
)
from app.workflows.definitions import UnknownWorkflow, definition_of, require_workflow, run_cache_key
from app.workflows.templates import TemplateInvalid


def start_workflow_run(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                       request: WorkflowRunRequest, api_key: str, version: WorkflowRow | None = None,
                       schedule_id: str | None = None) -> Run:
    """Queue a run of the workflow's current version (or `version`); RunRejected (400) for parameters
    that are missing, unknown or of the wrong type, UnknownWorkflow (404)."""
    workflow_permanent_id = request.agent_id or request.workflow_id
    if not workflow_permanent_id:
        raise RunRejected("agent_id is required: the workflow's wpid_ id (workflow_id is accepted too).")
    row = version or require_workflow(session, organization_id, workflow_permanent_id)
    spec = definition_of(row)
    parameters = check_parameters(session, organization_id, spec, request.parameters or {})
    task = TaskRunRequest(
        prompt=f"Workflow: {spec.title}", title=request.title or spec.title,
        proxy_location=request.proxy_location if request.proxy_location is not None else spec.proxy_location,
        webhook_url=request.webhook_url or spec.webhook_callback_url,
        totp_identifier=request.totp_identifier or spec.totp_identifier,
        totp_url=request.totp_url or spec.totp_verification_url,
        browser_session_id=request.browser_session_id,
        browser_profile_id=request.browser_profile_id or spec.browser_profile_id,
        extra_http_headers=request.extra_http_headers or spec.extra_http_headers,
        max_screenshot_scrolls=request.max_screenshot_scrolls or spec.max_screenshot_scrolls,
        browser_address=request.browser_address, cdp_connect_headers=request.cdp_connect_headers,
        model=spec.model, run_with=request.run_with or ("code" if spec.run_with == "code" else None),
        ai_fallback=spec.ai_fallback if request.ai_fallback is None else request.ai_fallback,
        cache_key=_cache_key(spec, row.workflow_permanent_id, parameters))
    source = WorkflowSource(row.workflow_permanent_id, parameters, version_id=row.id, schedule_id=schedule_id,
                            max_elapsed_time_minutes=request.max_elapsed_time_minutes
                            or spec.max_elapsed_time_minutes, max_steps_override=request.max_steps_override)
    return service.create_task_run(session, settings, dispatcher, organization_id, task, api_key, source)


def _cache_key(spec: WorkflowCreateYAMLRequest, workflow_permanent_id: str,
               parameters: dict[str, Any]) -> str:
    try:
        return run_cache_key(spec, workflow_permanent_id, parameters)
    except TemplateInvalid as exc:
        raise RunRejected(f"cache_key: the workflow's cache_key {exc}") from None


def retry_workflow_run(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                       run_id: str, api_key: str, max_steps_override: int | None = None) -> Run:
    """A new run of the same workflow version with the same request (the original stays as it ended);
    `max_steps_override` replaces the request's."""
    run = find_workflow_run(session, organization_id, run_id)
    if run.status not in ("failed", "terminated", "canceled", "timed_out", "completed"):
        raise RunRejected(f"Workflow run {run_id} is still {run.status}; only an ended run can be retried.")
    version = session.scalars(select(WorkflowRow).where(
        WorkflowRow.id == run.workflow_id, WorkflowRow.deleted_at.is_(None))).first()
    if version is None:
        raise UnknownWorkflow(run.workflow_permanent_id or "")
    request = WorkflowRunRequest.model_validate({**run.run_request, "agent_id": run.workflow_permanent_id})
    if max_steps_override is not None:
        request.max_steps_override = max_steps_override
    return start_workflow_run(session, settings, dispatcher, organization_id, request, api_key, version)


def find_workflow_run(session: Session, organization_id: str, run_id: str) -> Run:
    """A run of a stored workflow; UnknownRun (404), or RunRejected (400) for a login / download_files run,
    which GET /v1/runs shows as a workflow run but has no stored workflow to run again."""
    run = service.find_run(session, organization_id, run_id)
    if run is None or run.run_type != WORKFLOW_RUN_TYPE:
        raise UnknownRun(run_id, "Workflow run")
    if run.workflow_id is None:
        kind = (run.run_request or {}).get("workflow_id")
        raise RunRejected(f"Workflow run {run_id} is a {kind} run, not a run of a stored workflow: start it "
                          f"again with POST /v1/run/tasks/{kind}.")
    return run


def list_workflow_runs(session: Session, organization_id: str, workflow_permanent_id: str | None,
                       statuses: Sequence[str], offset: int, limit: int) -> Sequence[Run]:
    """Runs of stored workflows (of one, when given), newest first."""
    query = select(Run).where(Run.organization_id == organization_id, Run.workflow_id.is_not(None))
    if workflow_permanent_id is not None:
        query = query.where(Run.workflow_permanent_id == workflow_permanent_id)
    if statuses:
        query = query.where(Run.status.in_(list(statuses)))
    query = query.order_by(Run.created_at.desc(), Run.id.desc())
    return session.scalars(query.offset(offset).limit(limit)).all()


# --- parameters -------------------------------------------------------------------------------------

def check_parameters(session: Session, organization_id: str, spec: WorkflowCreateYAMLRequest,
                     given: dict[str, Any]) -> dict[str, Any]:
    """The run's parameter values, typed: each workflow parameter given or defaulted, each of its type;
    credentials the organization has. RunRejected naming the parameter otherwise."""
    declared = {p.key: p for p in spec.workflow_definition.parameters if isinstance(p, WorkflowParameterYAML)}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise RunRejected(f"parameters: {', '.join(map(repr, unknown))} is not a parameter of this workflow "
                          f"(its parameters: {', '.join(declared) or 'none'})")
    values: dict[str, Any] = {}
    for key, parameter in declared.items():
        value = given.get(key, parameter.default_value)
        if value is None and (key in given or parameter.default_value is None):
            raise RunRejected(f"parameters: {key!r} is required ({parameter.workflow_parameter_type}) "
                              "and has no default_value")
        values[key] = _typed(key, parameter.workflow_parameter_type, value)
    credential_ids = [values[key] for key, parameter in declared.items()
                      if parameter.workflow_parameter_type == "credential_id"]
    credential_ids += [p.credential_id for p in spec.workflow_definition.parameters
                       if isinstance(p, CredentialParameterYAML)]
    for credential_id in credential_ids:
        if find_credential(session, organization_id, credential_id) is None:
            raise RunRejected(f"parameters: Credential not found {credential_id}", status_code=404)
    return values


def _typed(key: str, kind: str, value: Any) -> Any:
    article = "an" if kind == "integer" else "a"
    problem = f"parameters: {key!r} must be {article} {kind}, got {json.dumps(value)[:80]}"
    if kind in ("string", "credential_id"):
        if not isinstance(value, str):
            raise RunRejected(problem)
        return value
    if kind == "integer":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RunRejected(problem)
        return value
    if kind == "float":
        try:
            number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) \
                else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise RunRejected(problem)
        return number
    if kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise RunRejected(problem)
        return value
    if kind == "file_url":
        if not isinstance(value, str):
            raise RunRejected(problem)
        try:
            return normalize_http_url(value)
        except ValueError as exc:
            raise RunRejected(f"{problem} ({exc})") from None
    if isinstance(value, str):  # json: a JSON text is taken as its value
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def workflow_run_item(run: Run, settings: Settings) -> WorkflowRun:
    request = run.run_request or {}
    return WorkflowRun(
        **run_with_fields(run, settings), script_run=run.script_run,
        max_elapsed_time_minutes=request.get("max_elapsed_time_minutes"),
        workflow_run_id=run.id, workflow_id=run.workflow_id or "", organization_id=run.organization_id,
        workflow_permanent_id=run.workflow_permanent_id or "", status=run.status,
        browser_session_id=run.browser_session_id, browser_profile_id=run.browser_profile_id,
        proxy_location=request.get("proxy_location"), webhook_callback_url=run.webhook_url,
        webhook_failure_reason=run.webhook_failure_reason, totp_verification_url=run.totp_url,
        totp_identifier=run.totp_identifier, failure_reason=run.failure_reason, workflow_title=run.title,
        trigger_type=trigger_type(run), workflow_schedule_id=run.workflow_schedule_id,
        queued_at=run.queued_at, started_at=run.started_at, finished_at=run.finished_at,
        created_at=run.created_at, modified_at=run.modified_at)
