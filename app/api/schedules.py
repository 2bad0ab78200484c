"""Workflow schedules: the eight schedule operations under `/v1/agents/{wpid}/schedules…` and
`GET /v1/schedules` (also under the older `/v1/workflows/{wpid}/schedules…`, hidden from the schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.deps import Caller, CallerDep, SessionDep, SettingsDep
from app.schemas.schedules import (
    DeleteScheduleResponse,
    OrganizationScheduleListResponse,
    WorkflowScheduleListResponse,
    WorkflowScheduleResponse,
    WorkflowScheduleUpsertRequest,
)
from app.workflows import schedules
from app.workflows.schedules import Saver

router = APIRouter(tags=["Schedules"])


def _saver(caller: Caller) -> Saver:
    return Saver(caller.organization_id, caller.api_key)


@router.get("/v1/schedules", response_model=OrganizationScheduleListResponse)
def list_all(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[Literal["active", "paused"] | None, Query(
        description="Filter by status: 'active' or 'paused'")] = None,
    search: Annotated[str | None, Query(max_length=500,
                                        description="Search by workflow title or schedule name")] = None,
) -> OrganizationScheduleListResponse:
    enabled = None if status is None else status == "active"
    rows, total = schedules.list_organization_schedules(session, caller.organization_id, enabled, search,
                                                        (page - 1) * page_size, page_size)
    return OrganizationScheduleListResponse(
        schedules=[schedules.organization_item(row, title) for row, title in rows],
        total_count=total, page=page, page_size=page_size)


def create(workflow_permanent_id: str, request: WorkflowScheduleUpsertRequest, session: SessionDep,
           settings: SettingsDep, caller: CallerDep) -> WorkflowScheduleResponse:
    row = schedules.create_schedule(session, settings, _saver(caller), workflow_permanent_id, request)
    return schedules.schedule_response(row)


def list_for_workflow(workflow_permanent_id: str, session: SessionDep,
                      caller: CallerDep) -> WorkflowScheduleListResponse:
    rows = schedules.list_schedules(session, caller.organization_id, workflow_permanent_id)
    return WorkflowScheduleListResponse(schedules=[schedules.schedule_out(row) for row in rows])


def get(workflow_permanent_id: str, workflow_schedule_id: str, session: SessionDep,
        caller: CallerDep) -> WorkflowScheduleResponse:
    return schedules.schedule_response(schedules.require_schedule(
        session, caller.organization_id, workflow_permanent_id, workflow_schedule_id))


def update(workflow_permanent_id: str, workflow_schedule_id: str, request: WorkflowScheduleUpsertRequest,
           session: SessionDep, settings: SettingsDep, caller: CallerDep) -> WorkflowScheduleResponse:
    row = schedules.update_schedule(session, settings, _saver(caller), workflow_permanent_id,
                                    workflow_schedule_id, request)
    return schedules.schedule_response(row)


def delete(workflow_permanent_id: str, workflow_schedule_id: str, session: SessionDep,
           caller: CallerDep) -> DeleteScheduleResponse:
    schedules.delete_schedule(session, caller.organization_id, workflow_permanent_id, workflow_schedule_id)
    return DeleteScheduleResponse(ok=True)


def enable(workflow_permanent_id: str, workflow_schedule_id: str, session: SessionDep, settings: SettingsDep,
           caller: CallerDep) -> WorkflowScheduleResponse:
    row = schedules.set_enabled(session, settings, _saver(caller), workflow_permanent_id,
                                workflow_schedule_id, True)
    return schedules.schedule_response(row)


def disable(workflow_permanent_id: str, workflow_schedule_id: str, session: SessionDep, settings: SettingsDep,
            caller: CallerDep) -> WorkflowScheduleResponse:
    row = schedules.set_enabled(session, settings, _saver(caller), workflow_permanent_id,
                                workflow_schedule_id, False)
    return schedules.schedule_response(row)


for prefix, listed in (("/v1/agents", True), ("/v1/workflows", False)):
    collection = f"{prefix}/{{workflow_permanent_id}}/schedules"
    one = f"{collection}/{{workflow_schedule_id}}"
    for path, endpoint, method, model in (
        (collection, create, "POST", WorkflowScheduleResponse),
        (collection, list_for_workflow, "GET", WorkflowScheduleListResponse),
        (one, get, "GET", WorkflowScheduleResponse),
        (one, update, "PUT", WorkflowScheduleResponse),
        (one, delete, "DELETE", DeleteScheduleResponse),
        (f"{one}/enable", enable, "POST", WorkflowScheduleResponse),
        (f"{one}/disable", disable, "POST", WorkflowScheduleResponse),
    ):
        router.add_api_route(path, endpoint, methods=[method], response_model=model, include_in_schema=listed)
