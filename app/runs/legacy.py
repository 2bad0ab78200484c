"""Skyvern's legacy tasks (/api/v1/tasks): the same runs as /v1/run/tasks, in the legacy shapes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts.links import ArtifactLinks
from app.db.models import Run
from app.platform.settings import Settings
from app.runs.kinds import LEGACY_RUN_TYPE
from app.runs.service import RunRejected
from app.schemas.legacy import TaskRequest, TaskResponse
from app.schemas.runs import TaskRunRequest
from app.webhooks.payload import task_run_fields


def task_run_request(request: TaskRequest, max_steps: int | None) -> TaskRunRequest:
    """The legacy TaskRequest as a skyvern-1.0 task run; RunRejected when it names no goal."""
    prompt = request.prompt()
    if prompt is None:
        raise RunRejected("navigation_goal or data_extraction_goal is required.")
    return TaskRunRequest(
        prompt=prompt, url=request.url_as_sent or request.url, engine="skyvern-1.0", title=request.title,
        webhook_url=request.webhook_callback_url, totp_url=request.totp_verification_url,
        totp_identifier=request.totp_identifier, proxy_location=request.proxy_location,
        data_extraction_schema=request.extracted_information_schema,
        error_code_mapping=request.error_code_mapping, extra_http_headers=request.extra_http_headers,
        browser_session_id=request.browser_session_id, max_steps=max_steps,
    )


def legacy_task_response(session: Session, settings: Settings, run: Run,
                         links: ArtifactLinks) -> TaskResponse:
    """The webhook payload's fields plus the legacy `request`."""
    fields = task_run_fields(settings, run, session, links)
    run_request = run.run_request or {}
    request = {"url": run.url, "title": run.title, "navigation_goal": run.prompt,
               "webhook_callback_url": run.webhook_url, "totp_verification_url": run.totp_url,
               "totp_identifier": run.totp_identifier,
               "extracted_information_schema": run_request.get("data_extraction_schema"),
               "error_code_mapping": run_request.get("error_code_mapping"),
               "proxy_location": run_request.get("proxy_location"),
               "browser_session_id": run.browser_session_id}
    return TaskResponse.model_validate({**fields, "request": request})


def list_legacy_tasks(session: Session, organization_id: str, page: int, page_size: int) -> Sequence[Run]:
    """The organization's task_v1 runs, newest first."""
    query = (select(Run).where(Run.organization_id == organization_id, Run.run_type == LEGACY_RUN_TYPE)
             .order_by(Run.created_at.desc(), Run.id.desc()).offset((page - 1) * page_size).limit(page_size))
    return session.scalars(query).all()
