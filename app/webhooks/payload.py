"""The webhook body of a final run, as Skyvern sends it: a task run's is GET /v1/runs/{id}'s fields merged
with Skyvern's legacy task fields (the legacy GET /api/v1/tasks/{id} answers the same fields); a workflow
run's is Skyvern's workflow run status (WorkflowRunResponseBase) under GET /v1/runs/{id}'s fields. Also
the notice that a run waits for a person."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.artifacts.links import ArtifactLinks
from app.db.models import Artifact, Run
from app.platform.public_url import public_base_url
from app.platform.settings import Settings
from app.runs.kinds import WORKFLOW_RUN_TYPE
from app.runs.views import run_artifacts, run_page_url, run_with_fields, task_run_response
from app.schemas.workflows import WorkflowRunResponseBase


def _compact(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def build_payload(settings: Settings, run: Run, session: Session, links: ArtifactLinks) -> bytes:
    """The run's webhook body: a `wr_` run's as Skyvern sends workflow runs', any other's as it sends
    tasks'."""
    artifacts = run_artifacts(session, run.id)
    if run.run_type == WORKFLOW_RUN_TYPE:
        return _compact(workflow_run_fields(settings, run, session, links, artifacts))
    return _compact(task_run_fields(settings, run, session, links, artifacts))


def task_run_fields(settings: Settings, run: Run, session: Session, links: ArtifactLinks,
                    artifacts: Sequence[Artifact] | None = None) -> dict[str, Any]:
    """get_run's fields (without run_request; with the extensions: summary, token counts, total_cost)
    merged with the fields Skyvern documents for webhooks and its legacy task fields: task_id, prompt,
    url, organization_id, workflow_run_id, proxy_location, webhook_callback_url, ..."""
    if artifacts is None:
        artifacts = run_artifacts(session, run.id)
    response = task_run_response(session, run, links, settings, artifacts).model_dump(
        mode="json", exclude={"run_request"})
    finals = [a for a in artifacts if a.artifact_type == "screenshot_final"]
    console = [a for a in artifacts if a.artifact_type == "browser_console_log"]
    downloads = response["downloaded_files"] or []
    legacy = {
        "task_id": run.id,
        "extracted_information": response["output"],
        "action_screenshot_urls": response["screenshot_urls"],
        "screenshot_url": links.url(finals[-1]) if finals else None,
        "browser_console_log_url": links.url(console[-1]) if console else None,
        "downloaded_file_urls": [f["url"] for f in downloads],
        "failure_category": None,
        "webhook_failure_reason": run.webhook_failure_reason,
        "max_steps_per_run": run.max_steps,
        "workflow_run_id": run.id if run.run_type == WORKFLOW_RUN_TYPE else None,
        "title": run.title,
        "url": run.url,
        "prompt": run.prompt,
        "navigation_goal": run.prompt,
        "organization_id": run.organization_id,
        "proxy_location": (run.run_request or {}).get("proxy_location"),
        "webhook_callback_url": run.webhook_url,
    }
    return {**legacy, **response}


def workflow_run_fields(settings: Settings, run: Run, session: Session, links: ArtifactLinks,
                        artifacts: Sequence[Artifact]) -> dict[str, Any]:
    """Skyvern's workflow run status (workflow_id, parameters, outputs, total_steps, ...) overlaid with
    get_run's fields, run_request included (Skyvern sends both, the run response's winning)."""
    response = task_run_response(session, run, links, settings, artifacts)
    request = run.run_request or {}
    recordings = [response.recording_url] if response.recording_url else None
    status = WorkflowRunResponseBase(
        workflow_id=run.workflow_permanent_id or request.get("workflow_id") or "",
        workflow_run_id=run.id, status=run.status, failure_reason=run.failure_reason,
        proxy_location=request.get("proxy_location"), webhook_callback_url=run.webhook_url,
        webhook_failure_reason=run.webhook_failure_reason, totp_verification_url=run.totp_url,
        totp_identifier=run.totp_identifier, extra_http_headers=request.get("extra_http_headers"),
        cdp_connect_headers=request.get("cdp_connect_headers"), queued_at=run.queued_at,
        started_at=run.started_at, finished_at=run.finished_at, created_at=run.created_at,
        modified_at=run.modified_at, parameters=request.get("parameters") or {},
        screenshot_urls=response.screenshot_urls, recording_url=response.recording_url,
        recording_urls=recordings, downloaded_files=response.downloaded_files,
        downloaded_file_urls=[f.url for f in response.downloaded_files or []], outputs=run.output,
        total_steps=run.step_count, total_cost=run.llm_cost, workflow_title=run.title,
        browser_session_id=run.browser_session_id, browser_profile_id=run.browser_profile_id,
        max_screenshot_scrolls=request.get("max_screenshot_scrolls"),
        browser_address=request.get("browser_address"), run_with=run_with_fields(run, settings)["run_with"],
        script_run=run.script_run, errors=list(run.errors or []))
    return {**status.model_dump(mode="json"), **response.model_dump(mode="json")}


def pause_notice(settings: Settings, run: Run, reason: str) -> bytes:
    """What WAYFARER_PAUSE_NOTICE_URL is told when a run waits for a person."""
    return _compact({"event": "run.waiting_for_person", "run_id": run.id,
                     "organization_id": run.organization_id, "status": run.status, "reason": reason,
                     "app_url": run_page_url(settings, run.id, public_base_url(settings))})
