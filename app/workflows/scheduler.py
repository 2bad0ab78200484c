"""The scheduler: a thread in every API process (embedded or not) and every Celery worker that starts
the runs of due schedules.

Each slot of a schedule fires once, however many processes look: the process that fires it inserts the
slot's `schedule_firings` row (unique per schedule and slot) in the same transaction that creates the
run and moves `next_fire_at` on, so a second process's insert fails (PostgreSQL makes it wait for the
first transaction, then refuses it; SQLite serialises the writers) and nothing of it is kept. A process
that dies before committing leaves nothing either: the slot is still due and another process fires it.

Slots missed while no process ran (or while one was down long enough): only the latest one fires, once,
when the scheduler next looks; the others are not made up. A slot whose run cannot be created (the
workflow was deleted, its parameters no longer fit, the organization is at its run limit, the queue is
down) is recorded with the reason (`error`) and the schedule moves on to its next slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.models import ScheduleFiring, utcnow
from app.db.models import Workflow as WorkflowRow
from app.db.models import WorkflowSchedule as ScheduleRow
from app.dispatch import Dispatcher
from app.platform.security import decrypt
from app.platform.settings import Settings
from app.runs import ids
from app.schemas.workflows import WorkflowRunRequest
from app.workflows import cron
from app.workflows.runs import start_workflow_run

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]  # naive UTC now; tests move it instead of waiting for real minutes


@dataclass(frozen=True)
class Fired:
    """A slot this process claimed: the run it started, or why none was started."""

    schedule_id: str
    slot_at: datetime
    run_id: str | None
    error: str | None = None


def fire_due(settings: Settings, dispatcher: Dispatcher, now: datetime) -> list[Fired]:
    """Fire the latest due slot of every enabled schedule whose next slot is at or before `now` (and
    whose workflow is not deleted)."""
    workflow_kept = select(WorkflowRow.id).where(
        WorkflowRow.workflow_permanent_id == ScheduleRow.workflow_permanent_id,
        WorkflowRow.organization_id == ScheduleRow.organization_id, WorkflowRow.deleted_at.is_(None)).exists()
    with session_scope(settings.database_url) as s:
        due = s.scalars(select(ScheduleRow.id).where(
            ScheduleRow.enabled.is_(True), ScheduleRow.deleted_at.is_(None), ScheduleRow.next_fire_at <= now,
            workflow_kept).order_by(ScheduleRow.next_fire_at)).all()
    fired = []
    for schedule_id in due:
        try:
            outcome = _fire(settings, dispatcher, schedule_id, now)
        except Exception:  # e.g. the database went away: the slot is still due at the next look
            log.exception("schedule %s could not be fired; will retry", schedule_id)
            continue
        if outcome is not None:
            fired.append(outcome)
    return fired


def _fire(settings: Settings, dispatcher: Dispatcher, schedule_id: str, now: datetime) -> Fired | None:
    with session_scope(settings.database_url) as s:
        row = _claimable(s, schedule_id, now)
        if row is None:
            return None
        slot = cron.latest_slot(row.cron_expression, row.timezone, now)
        firing = _claim(s, row, slot)
        if firing is None:
            return None
        request = WorkflowRunRequest(workflow_id=row.workflow_permanent_id, parameters=row.parameters or {})
        api_key = decrypt(settings.resolved_secret_key(), row.api_key_encrypted)
        organization_id = row.organization_id
        try:  # commits the claim, the next slot and the run together, then enqueues the run
            run = start_workflow_run(s, settings, dispatcher, organization_id, request, api_key,
                                     schedule_id=schedule_id)
        except Exception as exc:  # the run was refused: nothing of this transaction is kept
            s.rollback()
            return _record_refusal(settings, schedule_id, slot, now, exc)
        firing.run_id = run.id
    log.info("schedule %s fired its %s UTC slot: run %s", schedule_id, slot.isoformat(), run.id)
    return Fired(schedule_id, slot, run.id)


def _claimable(s: Session, schedule_id: str, now: datetime) -> ScheduleRow | None:
    row = s.get(ScheduleRow, schedule_id)
    if row is None or not row.enabled or row.deleted_at is not None or row.next_fire_at > now:
        return None  # fired, disabled or deleted since the look
    return row


def _claim(s: Session, row: ScheduleRow, slot: datetime) -> ScheduleFiring | None:
    """Insert the slot's firing row and move the schedule on; None when another process has the slot."""
    firing = ScheduleFiring(id=ids.new_id(ids.SCHEDULE_FIRING), schedule_id=row.id, slot_at=slot)
    row.next_fire_at = cron.next_slots(row.cron_expression, row.timezone, slot, 1)[0]
    s.add(firing)
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        return None
    return firing


def _record_refusal(settings: Settings, schedule_id: str, slot: datetime, now: datetime,
                    exc: Exception) -> Fired | None:
    """Keep the slot claimed with the reason its run was refused, so it is not retried: claimed again
    after the rollback, or, when the run had been committed and then removed (the queue refused it),
    the firing row that was kept."""
    error = str(exc) or type(exc).__name__
    with session_scope(settings.database_url) as s:
        firing = s.scalars(select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule_id,
                                                        ScheduleFiring.slot_at == slot)).first()
        if firing is None:  # the usual case: the refusal rolled the claim back
            row = _claimable(s, schedule_id, now)
            firing = _claim(s, row, slot) if row is not None else None
        elif firing.run_id is not None or firing.error is not None:
            firing = None
        if firing is None:
            return None
        firing.error = error
    log.warning("schedule %s: its %s UTC slot started no run: %s", schedule_id, slot.isoformat(), error)
    return Fired(schedule_id, slot, None, error)


class Scheduler:
    """Looks for due schedules every WAYFARER_SCHEDULER_POLL_SECONDS until stopped."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._dispatcher = dispatcher
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wayfarer-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                fire_due(self._settings, self._dispatcher, self._clock())
            except Exception:
                log.exception("looking for due schedules failed; will retry")
            self._stop.wait(self._settings.scheduler_poll_seconds)
