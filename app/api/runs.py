"""Skyvern's run endpoints: create a task run, read, list, cancel, artifacts, timeline, webhook replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import SerializeAsAny

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.runs import queries, service
from app.runs.lifecycle import RunStatus
from app.runs.timeline import run_timeline, webhook_attempts
from app.runs.views import (
    artifact_response,
    list_item,
    read_run_response,
    run_artifacts,
    task_run_response,
)
from app.schemas.runs import (
    ArtifactResponse,
    BulkCancelRunsRequest,
    BulkCancelRunsResponse,
    RetryRunWebhookRequest,
    RunType,
    RunWebhookReplayResponse,
    TaskRunListItem,
    TaskRunRequest,
    TaskRunResponse,
)
from app.schemas.timeline import WebhookAttemptResponse, WorkflowRunTimeline

router = APIRouter(tags=["Runs"])


@router.post("/v1/run/tasks", response_model=TaskRunResponse)
def run_task(request: TaskRunRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
             dispatcher: DispatcherDep, links: LinksDep) -> TaskRunResponse:
    run = service.create_task_run(session, settings, dispatcher, caller.organization_id, request,
                                  caller.api_key)
    return task_run_response(session, run, links, settings, artifacts=[])


@router.get("/v1/runs/{run_id}", response_model=SerializeAsAny[TaskRunResponse])  # wr_: all fields
async def get_run(run_id: str, settings: SettingsDep, caller: CallerDep, links: LinksDep) -> TaskRunResponse:
    # async, with one thread-pool hop for the query: the hottest read skips the hops a session dependency
    # and a sync endpoint would each take
    response = await run_in_threadpool(read_run_response, settings, links, caller.organization_id, run_id)
    if response is None:
        raise service.UnknownRun(run_id)
    return response


@router.get("/v1/runs", response_model=list[TaskRunListItem])
def list_runs(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[list[RunStatus] | None, Query()] = None,  # typed: a misspelt filter is a 422, not []
    run_type: Annotated[list[RunType] | None, Query()] = None,
    search_key: Annotated[str | None, Query(min_length=3)] = None,
) -> list[TaskRunListItem]:
    run_filter = queries.RunFilter(statuses=status or (), run_types=run_type or (), search=search_key)
    runs = queries.list_runs(session, caller.organization_id, run_filter, (page - 1) * page_size,
                             page_size)
    return [list_item(run) for run in runs]


@router.post("/v1/runs/cancel", response_model=BulkCancelRunsResponse)
def bulk_cancel_runs(request: BulkCancelRunsRequest, settings: SettingsDep, caller: CallerDep,
                     dispatcher: DispatcherDep) -> BulkCancelRunsResponse:
    cancelled, failed = service.cancel_runs(settings, caller.organization_id, request.run_ids)
    return BulkCancelRunsResponse(cancelled=cancelled, failed=list(failed))


@router.post("/v1/runs/{run_id}/cancel")
def cancel_run(run_id: str, settings: SettingsDep, caller: CallerDep, dispatcher: DispatcherDep) -> None:
    service.cancel_run(settings, caller.organization_id, run_id)


@router.get("/v1/runs/{run_id}/artifacts", response_model=list[ArtifactResponse])
def get_run_artifacts(run_id: str, session: SessionDep, caller: CallerDep, links: LinksDep,
                      artifact_type: Annotated[list[str] | None, Query()] = None) -> list[ArtifactResponse]:
    run = service.require_run(session, caller.organization_id, run_id)
    return [artifact_response(a, links) for a in run_artifacts(session, run.id, artifact_type)]


@router.get("/v1/runs/{run_id}/timeline", response_model=list[WorkflowRunTimeline])
def get_run_timeline(run_id: str, session: SessionDep, settings: SettingsDep,
                     caller: CallerDep) -> list[WorkflowRunTimeline]:
    run = service.require_run(session, caller.organization_id, run_id)
    return run_timeline(session, run, settings.llm_model)


@router.get("/v1/runs/{run_id}/webhook_attempts", response_model=list[WebhookAttemptResponse],
            summary="Get run webhook attempts (a Wayfarer extension)")
def get_run_webhook_attempts(run_id: str, session: SessionDep,
                             caller: CallerDep) -> list[WebhookAttemptResponse]:
    return webhook_attempts(session, service.require_run(session, caller.organization_id, run_id).id)


@router.post("/v1/runs/{run_id}/retry_webhook", response_model=RunWebhookReplayResponse)
def retry_run_webhook(run_id: str, settings: SettingsDep, caller: CallerDep,
                      request: Annotated[RetryRunWebhookRequest | None, Body()] = None) -> dict[str, Any]:
    return service.replay_webhook(settings, caller.organization_id, run_id,
                                  request.webhook_url if request else None, caller.api_key)
