"""Nothing stays stuck: end runs and browser sessions whose worker died, re-dispatch runs and session
openings whose queue message was lost; and, hourly, delete expired runs (app.runs.retention),
artifacts and uploads (app.artifacts.retention)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from app.artifacts.retention import delete_expired_artifacts
from app.artifacts.store import make_store
from app.db.engine import session_scope
from app.db.models import BrowserSession, Run, utcnow
from app.platform.settings import Settings
from app.runs import lifecycle
from app.runs.lifecycle import RunStatus
from app.runs.retention import delete_expired_runs
from app.sessions import lifecycle as session_lifecycle

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600.0  # expired artifacts are looked for hourly, not on every sweep


def sweep(settings: Settings, enqueue: Callable[[str], None], open_session: Callable[[str], None]) -> None:
    with session_scope(settings.database_url) as s:
        lease = timedelta(seconds=settings.run_lease_seconds)
        lost = lifecycle.expire_lost_runs(s, lease)
        lost_sessions = session_lifecycle.expire_lost_sessions(s, lease)
        cutoff = utcnow() - timedelta(seconds=settings.requeue_after_seconds)
        stale = s.scalars(select(Run.id).where(Run.status == RunStatus.queued.value,
                                               Run.queued_at < cutoff)).all()
        unopened = s.scalars(select(BrowserSession.id).where(
            BrowserSession.status == session_lifecycle.SessionStatus.created.value,
            BrowserSession.created_at < cutoff)).all()
    for run_id in lost:
        log.warning("run %s ended failed: its worker was lost", run_id)
    for session_id, run_ids in lost_sessions.items():
        log.warning("browser session %s ended failed with %d run(s): its worker was lost", session_id,
                    len(run_ids))
    for run_id in stale:
        log.info("re-dispatching run %s, queued since before %s", run_id, cutoff)
        enqueue(run_id)
    for session_id in unopened:  # opening is compare-and-set: a duplicate is harmless
        log.info("re-dispatching the opening of browser session %s, created before %s", session_id, cutoff)
        open_session(session_id)


def start_sweeper(settings: Settings, enqueue: Callable[[str], None],
                  open_session: Callable[[str], None]) -> threading.Event:
    """Sweep every settings.sweep_interval_seconds in a daemon thread; set the returned event to stop."""
    stop = threading.Event()
    store = make_store(settings)

    def loop() -> None:
        retention_due = 0.0
        while not stop.wait(settings.sweep_interval_seconds):
            try:
                sweep(settings, enqueue, open_session)
            except Exception:
                log.exception("sweep failed; will retry")
            if time.monotonic() >= retention_due:
                retention_due = time.monotonic() + RETENTION_INTERVAL_SECONDS
                try:
                    delete_expired_runs(settings, store)
                    delete_expired_artifacts(settings, store)
                except Exception:
                    log.exception("retention failed; will retry")

    threading.Thread(target=loop, name="wayfarer-sweeper", daemon=True).start()
    return stop
