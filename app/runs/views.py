"""What clients see of a run, built from its rows: TaskRunResponse, list items, artifacts (the timeline:
timeline.py).

GET /v1/runs/{id} and the webhook payload share `task_run_response`, so both show the same run.
Every URL in them is fetchable without an API key: a presigned S3 URL or our own signed link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.artifacts.links import ArtifactLinks
from app.db.engine import read_session_scope
from app.db.models import Artifact, Run
from app.platform.settings import Settings
from app.runs.kinds import WORKFLOW_RUN_TYPE
from app.schemas.runs import (
    ArtifactResponse,
    FileInfo,
    TaskRunListItem,
    TaskRunResponse,
    WorkflowRunResponse,
)

SCREENSHOT_COUNT = 3
_FALLBACK_SCREENSHOTS = ("screenshot_final", "screenshot_llm")


def run_page_url(settings: Settings, run_id: str, public_base: str) -> str:
    """The run's page in the viewer (Skyvern's `app_url`): under WAYFARER_APP_URL when set, else under
    the public base URL (app/platform/public_url.py), where this server serves it."""
    return f"{(settings.app_url or public_base).rstrip('/')}/runs/{run_id}"


def run_artifacts(session: Session, run_id: str, types: Sequence[str] | None = None) -> Sequence[Artifact]:
    query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.created_at, Artifact.id)
    if types:
        query = query.where(Artifact.artifact_type.in_(list(types)))
    return session.scalars(query).all()


_SHOWN_TYPES = ("recording", "download", "screenshot_action", *_FALLBACK_SCREENSHOTS)


def read_run_response(settings: Settings, links: ArtifactLinks, organization_id: str,
                      run_id: str) -> TaskRunResponse | None:
    """GET /v1/runs/{id}: the organization's run and the artifacts it links to, in one round trip (and
    no BEGIN/COMMIT); None when the organization has no such run."""
    with read_session_scope(settings.database_url) as session:
        rows = session.execute(
            select(Run, Artifact)
            .outerjoin(Artifact, and_(Artifact.run_id == Run.id, Artifact.artifact_type.in_(_SHOWN_TYPES)))
            .where(Run.id == run_id, Run.organization_id == organization_id)
            .order_by(Artifact.created_at, Artifact.id)
        ).all()
        if not rows:
            return None
        artifacts = [artifact for _, artifact in rows if artifact is not None]
        return task_run_response(session, rows[0][0], links, settings, artifacts)


def _newest_first(artifacts: Sequence[Artifact], artifact_type: str) -> list[Artifact]:
    return sorted((a for a in artifacts if a.artifact_type == artifact_type),
                  key=lambda a: (a.created_at, a.id), reverse=True)


def screenshot_artifacts(artifacts: Sequence[Artifact]) -> list[Artifact]:
    shots = _newest_first(artifacts, "screenshot_action")
    for fallback in _FALLBACK_SCREENSHOTS:
        if shots:
            break
        shots = _newest_first(artifacts, fallback)
    return shots[:SCREENSHOT_COUNT]


def task_run_response(session: Session, run: Run, links: ArtifactLinks, settings: Settings,
                      artifacts: Sequence[Artifact] | None = None) -> TaskRunResponse:
    """The run as GET /v1/runs shows it; a `wr_` run comes back as the WorkflowRunResponse subclass."""
    if artifacts is None:
        artifacts = run_artifacts(session, run.id)
    recordings = _newest_first(artifacts, "recording")
    downloads = [a for a in artifacts if a.artifact_type == "download"]
    response_model = WorkflowRunResponse if run.run_type == WORKFLOW_RUN_TYPE else TaskRunResponse
    return response_model(
        **(run_with_fields(run, settings) if response_model is WorkflowRunResponse else {}),
        run_id=run.id,
        run_type=run.run_type,
        status=run.status,
        output=run.output,
        downloaded_files=[FileInfo(url=links.url(a), checksum=a.checksum, filename=a.filename,
                                   file_size=a.size, modified_at=a.modified_at, artifact_id=a.id)
                          for a in downloads],
        recording_url=links.url(recordings[-1]) if recordings else None,
        screenshot_urls=[links.url(a) for a in screenshot_artifacts(artifacts)],
        failure_reason=run.failure_reason,
        created_at=run.created_at,
        modified_at=run.modified_at,
        queued_at=run.queued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        app_url=run_page_url(settings, run.id, links.base_url),
        browser_session_id=run.browser_session_id,
        browser_profile_id=run.browser_profile_id,
        max_screenshot_scrolls=run.run_request.get("max_screenshot_scrolls"),
        script_run=run.script_run,
        errors=list(run.errors or []),
        step_count=run.step_count,
        run_request=run.run_request,
        summary=run.summary,
        llm_call_count=run.llm_calls,
        input_token_count=run.prompt_tokens,
        output_token_count=run.completion_tokens,
        total_cost=run.llm_cost,
    )


def run_with_fields(run: Run, settings: Settings) -> dict[str, Any]:
    """A workflow run's run_with and ai_fallback as it runs them (docs/replay.md)."""
    run_with = run.run_request.get("run_with") or settings.default_run_with
    ai_fallback = run_with == "code" and run.run_request.get("ai_fallback") is not False
    return {"run_with": run_with, "ai_fallback": ai_fallback}


def workflow_run_response(session: Session, run: Run, links: ArtifactLinks,
                          settings: Settings) -> WorkflowRunResponse:
    """A just-created one-off workflow run (login, download_files) as its POST answers it."""
    response = task_run_response(session, run, links, settings, artifacts=[])
    assert isinstance(response, WorkflowRunResponse)
    return response


def list_item(run: Run) -> TaskRunListItem:
    return TaskRunListItem(task_run_id=run.id, run_id=run.id, task_run_type=run.run_type, status=run.status,
                           title=run.title, started_at=run.started_at, finished_at=run.finished_at,
                           created_at=run.created_at, script_run=replayed(run),
                           trigger_type=trigger_type(run), workflow_permanent_id=run.workflow_permanent_id)


def trigger_type(run: Run) -> str:
    """Skyvern's WorkflowRunTriggerType: `scheduled` for a run a schedule started, else `api`."""
    return "scheduled" if run.workflow_schedule_id else "api"


def replayed(run: Run) -> bool:
    """Whether the run replayed a script (TaskRunListItem.script_run)."""
    script_run = run.script_run or {}
    return bool(script_run.get("steps_replayed") or script_run.get("steps_healed"))


def artifact_response(artifact: Artifact, links: ArtifactLinks) -> ArtifactResponse:
    return ArtifactResponse(
        artifact_id=artifact.id, artifact_type=artifact.artifact_type, uri=links.uri(artifact),
        organization_id=artifact.organization_id, created_at=artifact.created_at,
        modified_at=artifact.modified_at, checksum=artifact.checksum, file_size=artifact.size,
        task_id=artifact.run_id, step_id=artifact.step_id, run_id=artifact.run_id,
        signed_url=links.url(artifact),
    )
