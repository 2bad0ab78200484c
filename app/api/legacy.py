"""Skyvern's legacy task routes (/api/v1/tasks), mapped onto the same runs as /v1/run/tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.runs import legacy, service
from app.schemas.legacy import CreateTaskResponse, TaskRequest, TaskResponse

router = APIRouter(tags=["Legacy tasks"], include_in_schema=False)

TASK = "Task"  # what the legacy routes call a run in their errors


@router.post("/api/v1/tasks", response_model=CreateTaskResponse)
def create_task(
    request: TaskRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
    dispatcher: DispatcherDep,
    x_max_steps_override: Annotated[int | None, Header(ge=1, le=1000)] = None,
) -> CreateTaskResponse:
    task = legacy.task_run_request(request, x_max_steps_override)
    run = service.create_task_run(session, settings, dispatcher, caller.organization_id, task, caller.api_key,
                                  texts={"navigation_goal": request.navigation_goal,
                                         "data_extraction_goal": request.data_extraction_goal})
    return CreateTaskResponse(task_id=run.id)


@router.get("/api/v1/tasks/{task_id}", response_model=TaskResponse)
def get_task(task_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep,
             links: LinksDep) -> TaskResponse:
    run = service.require_run(session, caller.organization_id, task_id, TASK)
    return legacy.legacy_task_response(session, settings, run, links)


@router.get("/api/v1/tasks", response_model=list[TaskResponse])
def get_tasks(
    session: SessionDep, settings: SettingsDep, caller: CallerDep, links: LinksDep,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[TaskResponse]:
    return [legacy.legacy_task_response(session, settings, run, links)
            for run in legacy.list_legacy_tasks(session, caller.organization_id, page, page_size)]


@router.post("/api/v1/tasks/{task_id}/cancel")
def cancel_task(task_id: str, settings: SettingsDep, caller: CallerDep, dispatcher: DispatcherDep) -> None:
    service.cancel_run(settings, caller.organization_id, task_id, TASK)
