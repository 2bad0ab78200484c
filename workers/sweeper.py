"""Nothing stays stuck: end runs whose worker died, re-dispatch runs whose queue message was lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Run, utcnow
from app.runs import lifecycle
from app.runs.lifecycle import RunStatus
from app.settings import Settings

log = logging.getLogger(__name__)


def sweep(settings: Settings, enqueue: Callable[[str], None]) -> None:
    with session_scope(settings.database_url) as s:
        lost = lifecycle.expire_lost_runs(s, timedelta(seconds=settings.run_lease_seconds))
        cutoff = utcnow() - timedelta(seconds=settings.requeue_after_seconds)
        stale = s.scalars(select(Run.id).where(Run.status == RunStatus.queued.value,
                                               Run.queued_at < cutoff)).all()
    for run_id in lost:
        log.warning("run %s ended failed: its worker was lost", run_id)
    for run_id in stale:
        log.info("re-dispatching run %s, queued since before %s", run_id, cutoff)
        enqueue(run_id)


def start_sweeper(settings: Settings, enqueue: Callable[[str], None]) -> threading.Event:
    """Sweep every settings.sweep_interval_seconds in a daemon thread; set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(settings.sweep_interval_seconds):
            try:
                sweep(settings, enqueue)
            except Exception:
                log.exception("sweep failed; will retry")

    threading.Thread(target=loop, name="wayfarer-sweeper", daemon=True).start()
    return stop
