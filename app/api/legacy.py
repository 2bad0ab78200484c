"""Skyvern's legacy task routes (/api/v1/tasks), mapped onto the same runs as /v1/run/tasks."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.db.models import Run
from app.platform.settings import Settings
from app.runs import service
from app.runs.kinds import LEGACY_RUN_TYPE
from app.runs.views import ArtifactLinks
from app.schemas.legacy import CreateTaskResponse, TaskRequest, TaskResponse
from app.schemas.runs import TaskRunRequest
from app.webhooks import delivery as webhooks

router = APIRouter(tags=["Legacy tasks"], include_in_schema=False)



@router.post("/api/v1/tasks", response_model=CreateTaskResponse)
def create_task(
    request: TaskRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
    dispatcher: DispatcherDep,
    x_max_steps_override: Annotated[int | None, Header(ge=1, le=1000)] = None,
) -> CreateTaskResponse:
    prompt = request.prompt()
    if prompt is None:
        raise HTTPException(status_code=400, detail="navigation_goal or data_extraction_goal is required.")
    task = TaskRunRequest(
        prompt=prompt, url=request.url, engine="skyvern-1.0", title=request.title,
        webhook_url=request.webhook_callback_url, totp_url=request.totp_verification_url,
        totp_identifier=request.totp_identifier, proxy_location=request.proxy_location,
        data_extraction_schema=request.extracted_information_schema,
        error_code_mapping=request.error_code_mapping, extra_http_headers=request.extra_http_headers,
        browser_session_id=request.browser_session_id, max_steps=x_max_steps_override,
    )
    try:
        run = service.create_task_run(session, settings, dispatcher, caller.organization_id, task,
                                      caller.api_key)
    except service.RunRejected as exc:
        raise HTTPException(status_code=exc.status_code, detail=str(exc)) from exc
    except service.QueueUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return CreateTaskResponse(task_id=run.id)


def legacy_task_response(session: Session, settings: Settings, run: Run,
                         links: ArtifactLinks) -> TaskResponse:
    fields = json.loads(webhooks.build_payload(settings, run, session, links))
    run_request = run.run_request or {}
    request = {"url": run.url, "title": run.title, "navigation_goal": run.prompt,
               "webhook_callback_url": run.webhook_url, "totp_verification_url": run.totp_url,
               "totp_identifier": run.totp_identifier,
               "extracted_information_schema": run_request.get("data_extraction_schema"),
               "error_code_mapping": run_request.get("error_code_mapping"),
               "proxy_location": run_request.get("proxy_location"),
               "browser_session_id": run.browser_session_id}
    return TaskResponse.model_validate({**fields, "request": request})


def _run_or_404(session: Session, caller: CallerDep, task_id: str) -> Run:
    run = service.find_run(session, caller.organization_id, task_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"Task not found {task_id}")
    return run


@router.get("/api/v1/tasks/{task_id}", response_model=TaskResponse)
def get_task(task_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep,
             links: LinksDep) -> TaskResponse:
    return legacy_task_response(session, settings, _run_or_404(session, caller, task_id), links)


@router.get("/api/v1/tasks", response_model=list[TaskResponse])
def get_tasks(
    session: SessionDep, settings: SettingsDep, caller: CallerDep, links: LinksDep,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[TaskResponse]:
    query = (select(Run).where(Run.organization_id == caller.organization_id, Run.run_type == LEGACY_RUN_TYPE)
             .order_by(Run.created_at.desc(), Run.id.desc()).offset((page - 1) * page_size).limit(page_size))
    return [legacy_task_response(session, settings, run, links) for run in session.scalars(query)]


@router.post("/api/v1/tasks/{task_id}/cancel")
def cancel_task(task_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                dispatcher: DispatcherDep) -> None:
    _run_or_404(session, caller, task_id)
    session.close()  # cancel_runs works in its own sessions and waits
    _, failed = service.cancel_runs(settings, dispatcher, caller.organization_id, [task_id])
    if failed:
        raise HTTPException(status_code=400, detail=failed[task_id])
