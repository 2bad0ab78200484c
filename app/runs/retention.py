"""Run retention: delete runs that ended more than WAYFARER_RUN_RETENTION_DAYS ago (when set), with
everything they hold: artifacts (bytes, then rows), steps, actions, stored LLM requests and responses
(artifacts too), webhook deliveries and attempts, events — every row of every table that points at the
run, so a table added later is covered without being listed here.

A run whose artifacts could not all be deleted from the store is kept for the next pass (like
app/artifacts/retention.py, the database never names an object that retention removed).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Table, delete, exists, select

from app.artifacts.retention import delete_artifacts
from app.artifacts.store import ArtifactStore
from app.db.engine import session_scope
from app.db.models import Artifact, Base, Run, utcnow
from app.platform.settings import Settings
from app.runs.lifecycle import FINAL

log = logging.getLogger(__name__)

BATCH = 200


def _pointing_at_runs() -> list[tuple[Table, str]]:
    """(table, column) for every foreign key to runs.id, dependants first."""
    runs = Run.__table__
    return [(table, fk.parent.name) for table in reversed(Base.metadata.sorted_tables)
            for fk in table.foreign_keys if fk.column.table is runs]


def delete_expired_runs(settings: Settings, store: ArtifactStore) -> int:
    """One cleanup pass; returns how many runs were deleted."""
    if settings.run_retention_days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=settings.run_retention_days)
    expired = select(Run.id).where(Run.status.in_([s.value for s in FINAL]), Run.finished_at < cutoff)
    delete_artifacts(settings, store, Artifact.run_id.in_(expired))
    emptied = expired.where(~exists().where(Artifact.run_id == Run.id))
    deleted = 0
    while True:
        with session_scope(settings.database_url) as s:
            run_ids = s.scalars(emptied.limit(BATCH)).all()
            if not run_ids:
                break
            for table, column in _pointing_at_runs():
                s.execute(delete(table).where(table.c[column].in_(run_ids)))
            s.execute(delete(Run).where(Run.id.in_(run_ids)))
        deleted += len(run_ids)
    if deleted:
        log.info("retention: deleted %d run(s) that ended before %s, with all they held", deleted, cutoff)
    return deleted
