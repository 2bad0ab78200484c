"""Workflow schedules (`wfs_`): create, read, list (a workflow's, the organization's), update, enable,
disable, delete. The scheduler (app/workflows/scheduler.py) fires them.

A schedule is checked when it is saved, so it does not fail at every slot: its cron expression and time
zone (app/workflows/cron.py), and its parameters against the workflow's current version, as a run's are
(app/workflows/runs.check_parameters: a 400 naming the parameter). Saving (create, update, enable) sets
`next_fire_at` to the first slot after now: slots passed while a schedule was disabled are not fired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.db.models import WorkflowSchedule as ScheduleRow
from app.db.models import utcnow
from app.platform.security import encrypt
from app.platform.settings import Settings
from app.runs import ids
from app.schemas.schedules import (
    OrganizationScheduleItem,
    WorkflowSchedule,
    WorkflowScheduleResponse,
    WorkflowScheduleUpsertRequest,
)
from app.workflows import cron
from app.workflows.definitions import current_versions, definition_of, escape_like, require_workflow
from app.workflows.runs import check_parameters

NEXT_RUNS = 5  # upcoming slots shown with a schedule


class UnknownSchedule(LookupError):
    """No such schedule of this workflow in the organization, or it was deleted (HTTP 404)."""

    def __init__(self, workflow_schedule_id: str) -> None:
        super().__init__(f"Schedule not found {workflow_schedule_id}")


@dataclass(frozen=True)
class Saver:
    """Who saves a schedule: its organization, and the API key its runs' webhooks are signed with."""

    organization_id: str
    api_key: str


def create_schedule(session: Session, settings: Settings, saver: Saver, workflow_permanent_id: str,
                    request: WorkflowScheduleUpsertRequest) -> ScheduleRow:
    row = ScheduleRow(id=ids.new_id(ids.WORKFLOW_SCHEDULE), organization_id=saver.organization_id,
                      workflow_permanent_id=workflow_permanent_id)
    _apply(session, settings, saver, row, request)
    session.add(row)
    session.flush()
    return row


def update_schedule(session: Session, settings: Settings, saver: Saver, workflow_permanent_id: str,
                    workflow_schedule_id: str, request: WorkflowScheduleUpsertRequest) -> ScheduleRow:
    row = require_schedule(session, saver.organization_id, workflow_permanent_id, workflow_schedule_id)
    _apply(session, settings, saver, row, request)
    return row


def _apply(session: Session, settings: Settings, saver: Saver, row: ScheduleRow,
           request: WorkflowScheduleUpsertRequest) -> None:
    cron.check(request.cron_expression, request.timezone)
    workflow = require_workflow(session, saver.organization_id, row.workflow_permanent_id)
    parameters = {key: value for key, value in (request.parameters or {}).items() if value is not None}
    check_parameters(session, saver.organization_id, definition_of(workflow), parameters)
    row.cron_expression = request.cron_expression.strip()
    row.timezone = request.timezone
    row.enabled = request.enabled is not False
    row.parameters = parameters or None
    row.name = request.name
    row.description = request.description
    _saved_by(settings, saver, row)


def set_enabled(session: Session, settings: Settings, saver: Saver, workflow_permanent_id: str,
                workflow_schedule_id: str, enabled: bool) -> ScheduleRow:
    row = require_schedule(session, saver.organization_id, workflow_permanent_id, workflow_schedule_id)
    row.enabled = enabled
    _saved_by(settings, saver, row)
    return row


def _saved_by(settings: Settings, saver: Saver, row: ScheduleRow) -> None:
    now = utcnow()
    row.api_key_encrypted = encrypt(settings.resolved_secret_key(), saver.api_key)
    row.next_fire_at = cron.next_slots(row.cron_expression, row.timezone, now, 1)[0]
    row.modified_at = now


def delete_schedule(session: Session, organization_id: str, workflow_permanent_id: str,
                    workflow_schedule_id: str) -> None:
    row = require_schedule(session, organization_id, workflow_permanent_id, workflow_schedule_id)
    row.deleted_at = utcnow()


def require_schedule(session: Session, organization_id: str, workflow_permanent_id: str,
                     workflow_schedule_id: str) -> ScheduleRow:
    """A schedule of this workflow (which must exist: UnknownWorkflow), else UnknownSchedule."""
    require_workflow(session, organization_id, workflow_permanent_id)
    row = session.scalars(_of_workflow(organization_id, workflow_permanent_id)
                          .where(ScheduleRow.id == workflow_schedule_id)).first()
    if row is None:
        raise UnknownSchedule(workflow_schedule_id)
    return row


def list_schedules(session: Session, organization_id: str,
                   workflow_permanent_id: str) -> Sequence[ScheduleRow]:
    require_workflow(session, organization_id, workflow_permanent_id)
    return session.scalars(_of_workflow(organization_id, workflow_permanent_id)
                           .order_by(ScheduleRow.created_at, ScheduleRow.id)).all()


def _of_workflow(organization_id: str, workflow_permanent_id: str) -> Select[ScheduleRow]:
    return select(ScheduleRow).where(ScheduleRow.organization_id == organization_id,
                                     ScheduleRow.workflow_permanent_id == workflow_permanent_id,
                                     ScheduleRow.deleted_at.is_(None))


def list_organization_schedules(session: Session, organization_id: str, enabled: bool | None,
                                search: str | None, offset: int,
                                limit: int) -> tuple[list[tuple[ScheduleRow, str]], int]:
    """(schedule, its workflow's title) newest first, and how many match in all; schedules of deleted
    workflows are left out. `search` is a case-insensitive match in the workflow's title or the name."""
    workflows = current_versions(organization_id).subquery()
    query = (select(ScheduleRow, workflows.c.title)
             .join(workflows, workflows.c.workflow_permanent_id == ScheduleRow.workflow_permanent_id)
             .where(ScheduleRow.organization_id == organization_id, ScheduleRow.deleted_at.is_(None)))
    if enabled is not None:
        query = query.where(ScheduleRow.enabled.is_(enabled))
    if search:
        pattern = f"%{escape_like(search)}%"
        query = query.where(or_(workflows.c.title.ilike(pattern, escape="\\"),
                                ScheduleRow.name.ilike(pattern, escape="\\")))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.execute(query.order_by(ScheduleRow.created_at.desc(), ScheduleRow.id.desc())
                           .offset(offset).limit(limit)).all()
    return [(row, title) for row, title in page], total


# --- response shapes --------------------------------------------------------------------------------

def schedule_out(row: ScheduleRow) -> WorkflowSchedule:
    return WorkflowSchedule(
        workflow_schedule_id=row.id, organization_id=row.organization_id,
        workflow_permanent_id=row.workflow_permanent_id, cron_expression=row.cron_expression,
        timezone=row.timezone, enabled=row.enabled, parameters=row.parameters, name=row.name,
        description=row.description, created_at=row.created_at, modified_at=row.modified_at,
        deleted_at=row.deleted_at)


def upcoming(row: ScheduleRow, count: int) -> list[datetime]:
    """The next slots after now (UTC, with its offset), none for a disabled schedule."""
    if not row.enabled:
        return []
    slots = cron.next_slots(row.cron_expression, row.timezone, utcnow(), count)
    return [slot.replace(tzinfo=UTC) for slot in slots]


def schedule_response(row: ScheduleRow) -> WorkflowScheduleResponse:
    return WorkflowScheduleResponse(schedule=schedule_out(row), next_runs=upcoming(row, NEXT_RUNS))


def organization_item(row: ScheduleRow, workflow_title: str) -> OrganizationScheduleItem:
    return OrganizationScheduleItem(
        **schedule_out(row).model_dump(include=set(OrganizationScheduleItem.model_fields)),
        workflow_title=workflow_title, next_run=next(iter(upcoming(row, 1)), None))

