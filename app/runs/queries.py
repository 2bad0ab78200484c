"""Reads of an organization's runs: the filtered list (GET /v1/runs, the viewer's runs page) and one run
with everything it recorded (the viewer's run page). Another organization's run is simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db.models import Action, Artifact, Run, Step, WebhookAttempt
from app.runs.service import find_run


@dataclass(frozen=True)
class RunFilter:
    statuses: Sequence[str] = ()
    run_types: Sequence[str] = ()
    search: str | None = None  # a substring of the id, title, prompt or start URL (case-insensitive)
    browser_session_id: str | None = None


def list_runs(session: Session, organization_id: str, run_filter: RunFilter, offset: int,
              limit: int) -> Sequence[Run]:
    """The organization's runs, newest first, from `offset` on, at most `limit`."""
    query = select(Run).where(Run.organization_id == organization_id)
    if run_filter.statuses:
        query = query.where(Run.status.in_(list(run_filter.statuses)))
    if run_filter.run_types:
        query = query.where(Run.run_type.in_(list(run_filter.run_types)))
    if run_filter.search:
        pattern = f"%{run_filter.search}%"
        query = query.where(or_(Run.id.ilike(pattern), Run.title.ilike(pattern), Run.prompt.ilike(pattern),
                                Run.url.ilike(pattern)))
    if run_filter.browser_session_id:
        query = query.where(Run.browser_session_id == run_filter.browser_session_id)
    query = query.order_by(Run.created_at.desc(), Run.id.desc())
    return session.scalars(query.offset(offset).limit(limit)).all()


@dataclass
class StepRecord:
    step: Step
    actions: list[Action] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    def artifact(self, artifact_type: str) -> Artifact | None:
        """The step's newest artifact of that type."""
        found = [a for a in self.artifacts if a.artifact_type == artifact_type]
        return found[-1] if found else None


@dataclass
class RunRecord:
    """A run and all it recorded, in order: steps with their actions and artifacts, the run's own
    artifacts (recording, downloads, console log, final screenshot), webhook attempts."""

    run: Run
    steps: list[StepRecord]
    artifacts: list[Artifact]
    webhook_attempts: Sequence[WebhookAttempt]

    def artifacts_of(self, artifact_type: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.artifact_type == artifact_type]


def run_record(session: Session, organization_id: str, run_id: str) -> RunRecord | None:
    run = find_run(session, organization_id, run_id)
    if run is None:
        return None
    steps = {step.id: StepRecord(step) for step in session.scalars(
        select(Step).where(Step.run_id == run.id).order_by(Step.index))}
    for action in session.scalars(select(Action).where(Action.run_id == run.id)
                                  .order_by(Action.created_at, Action.index)):
        if action.step_id in steps:
            steps[action.step_id].actions.append(action)
    run_artifacts: list[Artifact] = []
    for artifact in session.scalars(select(Artifact).where(Artifact.run_id == run.id)
                                    .order_by(Artifact.created_at, Artifact.id)):
        owner = steps.get(artifact.step_id or "")
        (owner.artifacts if owner else run_artifacts).append(artifact)
    attempts = session.scalars(select(WebhookAttempt).where(WebhookAttempt.run_id == run.id)
                               .order_by(WebhookAttempt.created_at)).all()
    return RunRecord(run, list(steps.values()), run_artifacts, attempts)
