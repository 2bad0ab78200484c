"""THE browser session state machine: created -> running -> completed | timeout | failed.

Only this module writes a session's status, each change one compare-and-set UPDATE, so an ended
session never comes back and two workers never both hold one session.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.models import BrowserSession, Run, utcnow
from app.runs import lifecycle as run_lifecycle
from app.runs.kinds import WORKFLOW_RUN_TYPE
from app.runs.lifecycle import RunStatus


class SessionStatus(StrEnum):
    created = "created"
    running = "running"
    completed = "completed"
    failed = "failed"
    timeout = "timeout"


ACTIVE = frozenset({SessionStatus.created, SessionStatus.running})
HOLDER_LOST_REASON = "The worker holding this browser session stopped (process lost or killed)."


class UnknownBrowserSession(LookupError):
    """No session with that id in the caller's organization (HTTP 404)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Browser session not found {session_id} (browser_session_id)")


def find_session(session: Session, organization_id: str, session_id: str) -> BrowserSession | None:
    """The session if it belongs to the organization; another organization's is simply not found."""
    query = select(BrowserSession).where(BrowserSession.id == session_id,
                                         BrowserSession.organization_id == organization_id)
    return session.scalars(query).first()


def _transition(session: Session, session_id: str, target: SessionStatus,
                sources: frozenset[SessionStatus], **fields: Any) -> bool:
    result = session.execute(
        update(BrowserSession)
        .where(BrowserSession.id == session_id, BrowserSession.status.in_([s.value for s in sources]))
        .values(status=target.value, modified_at=utcnow(), **fields)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def start(session: Session, session_id: str, *, worker_id: str, worker_queue: str | None,
          cdp_url: str) -> bool:
    """created -> running for the worker that opened the browser; the timeout counts from now."""
    minutes = session.scalar(select(BrowserSession.timeout_minutes).where(BrowserSession.id == session_id))
    if minutes is None:
        return False
    now = utcnow()
    return _transition(session, session_id, SessionStatus.running, frozenset({SessionStatus.created}),
                       worker_id=worker_id, worker_queue=worker_queue, cdp_url=cdp_url, started_at=now,
                       heartbeat_at=now, expires_at=now + timedelta(minutes=minutes))


def end(session: Session, session_id: str, target: SessionStatus, failure_reason: str | None = None) -> bool:
    if target in ACTIVE:
        raise ValueError(f"{target} is not a final session status")
    return _transition(session, session_id, target, ACTIVE, completed_at=utcnow(), cdp_url=None,
                       failure_reason=failure_reason)


def heartbeat(session: Session, session_id: str, worker_id: str) -> tuple[str, datetime | None] | None:
    """Renew the holder's lease; returns (status, expires_at) as stored now."""
    session.execute(
        update(BrowserSession)
        .where(BrowserSession.id == session_id, BrowserSession.worker_id == worker_id,
               BrowserSession.status == SessionStatus.running.value)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    row = session.execute(select(BrowserSession.status, BrowserSession.expires_at)
                          .where(BrowserSession.id == session_id)).first()
    return (row[0], row[1]) if row else None


def extend(session: Session, row: BrowserSession, minutes: int) -> bool:
    """Add minutes to an active session's timeout (and to its expiry once started)."""
    values: dict[str, Any] = {"timeout_minutes": row.timeout_minutes + minutes, "modified_at": utcnow()}
    if row.expires_at is not None:
        values["expires_at"] = row.expires_at + timedelta(minutes=minutes)
    result = session.execute(
        update(BrowserSession)
        .where(BrowserSession.id == row.id, BrowserSession.timeout_minutes == row.timeout_minutes,
               BrowserSession.status.in_([s.value for s in ACTIVE]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _runnable_type(run: Run | None) -> str | None:
    if run is None:
        return None
    return WORKFLOW_RUN_TYPE if run.run_type == WORKFLOW_RUN_TYPE else "task"


def set_runnable(session: Session, session_id: str, run: Run | None) -> None:
    """Show (or clear) the run currently using the session."""
    session.execute(
        update(BrowserSession).where(BrowserSession.id == session_id)
        .values(runnable_id=run.id if run else None, runnable_type=_runnable_type(run))
        .execution_options(synchronize_session=False)
    )


def end_session_runs(session: Session, session_id: str, status: RunStatus, reason: str) -> list[str]:
    """End the session's unfinished runs (a running one's runner sees it at its next heartbeat)."""
    pending = session.scalars(select(Run.id).where(
        Run.browser_session_id == session_id,
        Run.status.in_([s.value for s in run_lifecycle.ACTIVE]))).all()
    return [run_id for run_id in pending
            if run_lifecycle.finish(session, run_id, status, failure_reason=reason)]


def expire_lost_sessions(session: Session, lease: timedelta) -> dict[str, list[str]]:
    """End `running` sessions whose holder stopped heartbeating, and their runs; {session: ended runs}."""
    cutoff = utcnow() - lease
    stale = session.scalars(select(BrowserSession.id).where(
        BrowserSession.status == SessionStatus.running.value, BrowserSession.heartbeat_at < cutoff)).all()
    ended: dict[str, list[str]] = {}
    for session_id in stale:
        if end(session, session_id, SessionStatus.failed, HOLDER_LOST_REASON):
            ended[session_id] = end_session_runs(
                session, session_id, RunStatus.failed,
                f"The worker holding browser session {session_id} stopped, so the session ended "
                "before this run could finish; create a new session and submit the run again.")
    return ended
