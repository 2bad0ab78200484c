"""Runs of workflows ("agents"): start one, list them (all, or one workflow's), retry one. Reading and
cancelling a run are the run routes' (GET /v1/runs/{id}, POST /v1/runs/{id}/cancel).

Every route answers under its spec path and under the older `/v1/run/workflows` / `/v1/workflows…` names
(hidden from the schema). Registered before app/api/workflows.py, whose `/v1/agents/{id}` would take
`/v1/agents/runs`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.runs.lifecycle import RunStatus
from app.runs.views import workflow_run_response
from app.schemas.runs import WorkflowRunResponse
from app.schemas.workflows import WorkflowRun, WorkflowRunRequest
from app.workflows import runs
from app.workflows.definitions import require_workflow

router = APIRouter(tags=["Agents"])


MaxStepsOverride = Annotated[int | None, Header(ge=1, le=1000)]  # x-max-steps-override


def run_workflow(request: WorkflowRunRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                 dispatcher: DispatcherDep, links: LinksDep,
                 x_max_steps_override: MaxStepsOverride = None) -> WorkflowRunResponse:
    if x_max_steps_override is not None:
        request.max_steps_override = x_max_steps_override
    run = runs.start_workflow_run(session, settings, dispatcher, caller.organization_id, request,
                                  caller.api_key)
    return workflow_run_response(session, run, links, settings)


def get_workflow_runs(
    session: SessionDep, settings: SettingsDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[list[RunStatus] | None, Query()] = None,
) -> list[WorkflowRun]:
    rows = runs.list_workflow_runs(session, caller.organization_id, None, status or (),
                                   (page - 1) * page_size, page_size)
    return [runs.workflow_run_item(run, settings) for run in rows]


def get_workflow_runs_by_id(
    workflow_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[list[RunStatus] | None, Query()] = None,
) -> list[WorkflowRun]:
    require_workflow(session, caller.organization_id, workflow_id)
    rows = runs.list_workflow_runs(session, caller.organization_id, workflow_id, status or (),
                                   (page - 1) * page_size, page_size)
    return [runs.workflow_run_item(run, settings) for run in rows]


def retry_workflow_run(workflow_run_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                       dispatcher: DispatcherDep, links: LinksDep,
                       x_max_steps_override: MaxStepsOverride = None) -> WorkflowRunResponse:
    run = runs.retry_workflow_run(session, settings, dispatcher, caller.organization_id, workflow_run_id,
                                  caller.api_key, x_max_steps_override)
    return workflow_run_response(session, run, links, settings)


for run_path, prefix, listed in (("/v1/run/agents", "/v1/agents", True),
                                 ("/v1/run/workflows", "/v1/workflows", False)):
    router.add_api_route(run_path, run_workflow, methods=["POST"], response_model=WorkflowRunResponse,
                         include_in_schema=listed)
    router.add_api_route(f"{prefix}/runs", get_workflow_runs, methods=["GET"],
                         response_model=list[WorkflowRun], include_in_schema=listed)
    router.add_api_route(f"{prefix}/runs/{{workflow_run_id}}/retry", retry_workflow_run, methods=["POST"],
                         response_model=WorkflowRunResponse, include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_id}}/runs", get_workflow_runs_by_id, methods=["GET"],
                         response_model=list[WorkflowRun], include_in_schema=listed)
