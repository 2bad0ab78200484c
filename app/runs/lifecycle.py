"""THE run state machine. Nothing else writes a run's status.

Every transition is a compare-and-set UPDATE (`WHERE status IN (...)`), so a terminal status never
changes again and two workers never both claim one run. A cancel accepted while the run was held
(`cancel_requested`) wins over the run's own ending: the same UPDATE writes `canceled` instead. A final
status and the run's webhook delivery (app/webhooks/outbox.py) are written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.orm import Session

from app.db.models import Run, WorkflowRunBlock, utcnow
from app.webhooks import outbox


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
ACTIVE = frozenset({RunStatus.created, RunStatus.queued, RunStatus.running, RunStatus.paused})
HELD = frozenset({RunStatus.running, RunStatus.paused})  # a worker holds the run and renews its lease

# to-status -> the statuses it may come from
_ALLOWED_FROM: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.queued: frozenset({RunStatus.created, RunStatus.queued}),
    RunStatus.running: frozenset({RunStatus.queued}),  # the claim; resume() is paused -> running
    RunStatus.paused: frozenset({RunStatus.running}),
    RunStatus.completed: frozenset({RunStatus.running}),
    RunStatus.failed: frozenset({RunStatus.created, RunStatus.queued, RunStatus.running, RunStatus.paused}),
    RunStatus.terminated: frozenset({RunStatus.running, RunStatus.paused}),
    RunStatus.timed_out: frozenset({RunStatus.running, RunStatus.paused}),
    RunStatus.canceled: frozenset({RunStatus.created, RunStatus.queued, RunStatus.running, RunStatus.paused}),
}


# final statuses a run reaches by itself; a cancel accepted before they are written turns them into canceled
_CANCEL_WINS_OVER = frozenset({RunStatus.completed, RunStatus.failed, RunStatus.terminated,
                               RunStatus.timed_out})


def _canceled_instead_reason(target: RunStatus, reason: str | None) -> str:
    """The failure_reason of a run whose cancel came before its own ending `target`."""
    ended = f"{target.value}: {reason}" if reason else target.value
    return (f"The run was canceled at the user's request; it was ending {ended} at the same moment, "
            "and kept what it had recorded.")


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
    elif target == RunStatus.running and sources is None:  # the claim (resume passes its sources)
        values.update(started_at=now, heartbeat_at=now)
    elif target in FINAL:
        values["finished_at"] = now
    if target in _CANCEL_WINS_OVER:  # one compare-and-set: the flag is read by the UPDATE that ends the run
        cancel_first = Run.cancel_requested.is_(True)
        values["status"] = case((cancel_first, RunStatus.canceled.value), else_=target.value)
        values["failure_reason"] = case(
            (cancel_first, _canceled_instead_reason(target, fields.get("failure_reason"))),
            else_=fields.get("failure_reason"))
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_([s.value for s in sources or _ALLOWED_FROM[target]]), *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    changed = bool(result.rowcount)  # type: ignore[attr-defined]
    if changed and target in FINAL:
        outbox.add(session, run_id)  # the webhook is owed in the same transaction as the final status
    return changed


def claim(session: Session, run_id: str, worker_id: str) -> bool:
    """queued -> running for exactly one worker; False if someone else has it or it ended."""
    return _transition(session, run_id, RunStatus.running, worker_id=worker_id)


def hand_back(session: Session, run_id: str, worker_id: str) -> bool:
    """running -> queued by the worker holding the run, which is shutting down; another worker starts
    the run again from its url. False when the run is no longer this worker's or a cancel was asked
    for (then the runner ends it canceled)."""
    return _transition(session, run_id, RunStatus.queued, HELD,
                       where=(Run.worker_id == worker_id, Run.cancel_requested.is_(False)),
                       worker_id=None, heartbeat_at=None, **_NO_PAUSE)


def fail_unstarted(session: Session, run_id: str, failure_reason: str) -> bool:
    """queued -> failed: the run could not be started (WAYFARER_RUN_START_TRIES used up). False when it
    is no longer queued (a worker claimed it meanwhile, or it ended)."""
    return _transition(session, run_id, RunStatus.failed, frozenset({RunStatus.queued}),
                       failure_reason=failure_reason)


def finish(session: Session, run_id: str, status: RunStatus, *, failure_reason: str | None = None,
           **fields: Any) -> bool:
    if status not in FINAL:
        raise ValueError(f"{status} is not a final status")
    return _transition(session, run_id, status, failure_reason=failure_reason, pause_requested=False,
                       control_key_id=None, **fields)


_NO_PAUSE: dict[str, Any] = {"pause_requested": False, "pause_reason": None, "control_key_id": None,
                             "paused_at": None}


_PAUSABLE = frozenset({RunStatus.queued, *HELD})


class ControlHeld(Exception):
    """Someone else holds control of the run (one holder at a time)."""


def request_pause(session: Session, run_id: str, key_id: str | None, reason: str | None) -> None:
    """Ask a queued or running run to pause at its next step boundary (or take control of one already
    paused); `key_id` becomes the holder (None: the run waits for a person, e.g. ask_human). Raises
    LookupError, InvalidTransition when the run is not queued, running or paused, ControlHeld when
    another key holds it."""
    values: dict[str, Any] = {"pause_requested": True, "modified_at": utcnow()}
    if reason is not None:
        values["pause_reason"] = reason
    if key_id is not None:
        values["control_key_id"] = key_id
    free = Run.control_key_id.is_(None) if key_id is None else or_(Run.control_key_id.is_(None),
                                                                    Run.control_key_id == key_id)
    changed = session.execute(
        update(Run).where(Run.id == run_id, Run.status.in_([s.value for s in _PAUSABLE]),
                          Run.cancel_requested.is_(False), free)
        .values(**values).execution_options(synchronize_session=False))
    if changed.rowcount:  # type: ignore[attr-defined]
        return
    row = session.execute(select(Run.status, Run.control_key_id, Run.cancel_requested)
                          .where(Run.id == run_id)).first()
    if row is None:
        raise LookupError(run_id)
    if row.status not in _PAUSABLE:
        raise InvalidTransition(run_id, row.status, RunStatus.paused.value)
    if row.cancel_requested:
        raise InvalidTransition(run_id, "being canceled", RunStatus.paused.value)
    raise ControlHeld(run_id)


def pause(session: Session, run_id: str, worker_id: str) -> bool:
    """running -> paused by the run's worker, at a step boundary after request_pause."""
    return _transition(session, run_id, RunStatus.paused,
                       where=(Run.worker_id == worker_id, Run.pause_requested.is_(True),
                              Run.cancel_requested.is_(False)), paused_at=utcnow())


def resume(session: Session, run_id: str, key_id: str | None = None) -> bool:
    """paused -> running (control given back), or withdraw a pause asked for and not reached yet.
    With `key_id`, only that key's own hold (or a pause nobody holds) is given back. Adds the pause's
    length to paused_seconds. False when there was nothing to resume."""
    row = session.execute(select(Run.status, Run.paused_at, Run.paused_seconds, Run.control_key_id,
                                 Run.pause_requested).where(Run.id == run_id)).first()
    if row is None:
        raise LookupError(run_id)
    if key_id is not None and row.control_key_id not in (None, key_id):
        raise ControlHeld(run_id)
    held = (or_(Run.control_key_id.is_(None), Run.control_key_id == key_id) if key_id is not None else None)
    where = (held,) if held is not None else ()
    if row.status == RunStatus.paused.value:
        paused_for = (utcnow() - row.paused_at).total_seconds() if row.paused_at else 0.0
        return _transition(session, run_id, RunStatus.running, frozenset({RunStatus.paused}),
                           where=(Run.paused_at == row.paused_at, *where), heartbeat_at=utcnow(),
                           paused_seconds=(row.paused_seconds or 0.0) + max(0.0, paused_for), **_NO_PAUSE)
    if row.status in (RunStatus.queued, RunStatus.running) and row.pause_requested:
        withdrawn = session.execute(
            update(Run).where(Run.id == run_id, Run.status == row.status, *where)
            .values(modified_at=utcnow(), **_NO_PAUSE).execution_options(synchronize_session=False))
        return bool(withdrawn.rowcount)  # type: ignore[attr-defined]
    return False


def request_cancel(session: Session, run_id: str) -> RunStatus:
    """Cancel a created/queued run at once (returns canceled); flag a running or paused one so its
    runner stops and ends it (returns running). Raises InvalidTransition when the run is already final.
    """
    if _transition(session, run_id, RunStatus.canceled, frozenset({RunStatus.created, RunStatus.queued})):
        return RunStatus.canceled
    flagged = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_([s.value for s in HELD]))
        .values(cancel_requested=True, modified_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if flagged.rowcount:  # type: ignore[attr-defined]
        return RunStatus.running
    current = session.scalar(select(Run.status).where(Run.id == run_id))
    if current is None:
        raise LookupError(run_id)
    raise InvalidTransition(run_id, current, RunStatus.canceled.value)


@dataclass(frozen=True)
class Lease:
    """A held run as stored at its heartbeat."""

    status: str
    cancel_requested: bool
    pause_requested: bool = False
    pause_reason: str | None = None
    control_key_id: str | None = None


def heartbeat(session: Session, run_id: str, worker_id: str) -> Lease | None:
    """Renew the lease of a running or paused run; returns the run's state as stored now."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status.in_([s.value for s in HELD]))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    row = session.execute(select(Run.status, Run.cancel_requested, Run.pause_requested, Run.pause_reason,
                                 Run.control_key_id).where(Run.id == run_id)).first()
    return Lease(row[0], bool(row[1]), bool(row[2]), row[3], row[4]) if row else None


def expire_lost_runs(session: Session, lease: timedelta) -> list[str]:
    """End `running` or `paused` runs whose worker stopped renewing the lease; returns their ids."""
    cutoff = utcnow() - lease
    stale = session.scalars(
        select(Run.id).where(Run.status.in_([s.value for s in HELD]), Run.heartbeat_at < cutoff)
    ).all()
    ended = []
    for run_id in stale:
        reason = ("The worker running this run stopped responding (process lost or killed) "
                  f"for over {int(lease.total_seconds())} s; the run was ended. Submit it again.")
        block = _end_running_block(session, run_id, reason)
        if block is not None:  # a workflow run is not resumed: a send_email block never runs twice
            reason = f"Block '{block.label}' ({block.block_type}) failed: {reason}"
        if _transition(session, run_id, RunStatus.failed, failure_reason=reason):
            ended.append(run_id)
    return ended


def _end_running_block(session: Session, run_id: str, reason: str) -> WorkflowRunBlock | None:
    """The innermost block a lost workflow run was in, marked failed (None for a task run)."""
    running = session.scalars(select(WorkflowRunBlock).where(
        WorkflowRunBlock.run_id == run_id, WorkflowRunBlock.status == "running")
        .order_by(WorkflowRunBlock.position)).all()
    for block in running:
        block.status, block.failure_reason, block.finished_at = "failed", reason, utcnow()
    return running[-1] if running else None
