"""THE run state machine. Nothing else writes a run's status.

Every transition is a compare-and-set UPDATE (`WHERE status IN (...)`), so a terminal status never
changes again and two workers never both claim one run.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from app.db.models import Run, utcnow


class RunStatus(StrEnum):
    created = "created"
    queued = "queued"
    running = "running"
    paused = "paused"
    completed = "completed"
    failed = "failed"
    terminated = "terminated"
    timed_out = "timed_out"
    canceled = "canceled"


FINAL = frozenset({RunStatus.completed, RunStatus.failed, RunStatus.terminated,
                   RunStatus.timed_out, RunStatus.canceled})
ACTIVE = frozenset({RunStatus.created, RunStatus.queued, RunStatus.running})

# to-status -> the statuses it may come from
_ALLOWED_FROM: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.queued: frozenset({RunStatus.created, RunStatus.queued}),
    RunStatus.running: frozenset({RunStatus.queued}),
    RunStatus.completed: frozenset({RunStatus.running}),
    RunStatus.failed: frozenset({RunStatus.created, RunStatus.queued, RunStatus.running}),
    RunStatus.terminated: frozenset({RunStatus.running}),
    RunStatus.timed_out: frozenset({RunStatus.running}),
    RunStatus.canceled: frozenset({RunStatus.created, RunStatus.queued, RunStatus.running}),
}


class InvalidTransition(Exception):
    def __init__(self, run_id: str, current: str, target: str) -> None:
        super().__init__(f"Invalid run status transition from {current} to {target} for run {run_id}.")
        self.current = current
        self.target = target


def _transition(session: Session, run_id: str, target: RunStatus,
                sources: frozenset[RunStatus] | None = None,
                where: tuple[ColumnElement[bool], ...] = (), **fields: Any) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"status": target.value, "modified_at": now, **fields}
    if target == RunStatus.queued:
        values.setdefault("queued_at", now)
    elif target == RunStatus.running:
        values.update(started_at=now, heartbeat_at=now)
    elif target in FINAL:
        values["finished_at"] = now
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_([s.value for s in sources or _ALLOWED_FROM[target]]), *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, run_id: str, worker_id: str) -> bool:
    """queued -> running for exactly one worker; False if someone else has it or it ended."""
    return _transition(session, run_id, RunStatus.running, worker_id=worker_id)


def hand_back(session: Session, run_id: str, worker_id: str) -> bool:
    """running -> queued by the worker holding the run, which is shutting down; another worker starts
    the run again from its url. False when the run is no longer this worker's or a cancel was asked
    for (then the runner ends it canceled)."""
    return _transition(session, run_id, RunStatus.queued, frozenset({RunStatus.running}),
                       where=(Run.worker_id == worker_id, Run.cancel_requested.is_(False)),
                       worker_id=None, heartbeat_at=None)


def finish(session: Session, run_id: str, status: RunStatus, *, failure_reason: str | None = None,
           **fields: Any) -> bool:
    if status not in FINAL:
        raise ValueError(f"{status} is not a final status")
    return _transition(session, run_id, status, failure_reason=failure_reason, **fields)


def request_cancel(session: Session, run_id: str) -> RunStatus:
    """Cancel a created/queued run at once (returns canceled); flag a running one so its runner
    stops and ends it (returns running). Raises InvalidTransition when the run is already final.
    """
    if _transition(session, run_id, RunStatus.canceled, frozenset({RunStatus.created, RunStatus.queued})):
        return RunStatus.canceled
    flagged = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.running.value)
        .values(cancel_requested=True, modified_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if flagged.rowcount:  # type: ignore[attr-defined]
        return RunStatus.running
    current = session.scalar(select(Run.status).where(Run.id == run_id))
    if current is None:
        raise LookupError(run_id)
    raise InvalidTransition(run_id, current, RunStatus.canceled.value)


def heartbeat(session: Session, run_id: str, worker_id: str) -> tuple[str, bool] | None:
    """Renew the lease of a running run; returns (status, cancel_requested) as stored now."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.running.value)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    row = session.execute(select(Run.status, Run.cancel_requested).where(Run.id == run_id)).first()
    return (row[0], bool(row[1])) if row else None


def expire_lost_runs(session: Session, lease: timedelta) -> list[str]:
    """End `running` runs whose worker stopped renewing the lease; returns their ids."""
    cutoff = utcnow() - lease
    stale = session.scalars(
        select(Run.id).where(Run.status == RunStatus.running.value, Run.heartbeat_at < cutoff)
    ).all()
    ended = []
    for run_id in stale:
        reason = ("The worker running this run stopped responding (process lost or killed) "
                  f"for over {int(lease.total_seconds())} s; the run was ended. Submit it again.")
        if _transition(session, run_id, RunStatus.failed, failure_reason=reason):
            ended.append(run_id)
    return ended
