"""Artifact retention: delete artifacts older than WAYFARER_ARTIFACT_RETENTION_DAYS (when set) and
uploads past their own retention_days (`expires_at`), bytes then rows.

The object is deleted from the store first; its row only after that succeeded, so a store failure
leaves the row (and the object) for the next sweep and the database never names a missing object
that retention removed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, or_, select

from app.artifacts.store import ArtifactStore
from app.db.engine import session_scope
from app.db.models import Artifact, utcnow
from app.platform.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500


def delete_expired_artifacts(settings: Settings, store: ArtifactStore) -> int:
    """One cleanup pass; returns how many artifacts were deleted."""
    now = utcnow()
    expired = Artifact.expires_at < now
    cutoff = now - timedelta(days=settings.artifact_retention_days)
    if settings.artifact_retention_days > 0:
        expired = or_(expired, Artifact.created_at < cutoff)
    return delete_artifacts(settings, store, expired)


def delete_artifacts(settings: Settings, store: ArtifactStore, which: ColumnElement[bool]) -> int:
    """Delete the artifacts `which` selects, bytes then rows; returns how many were deleted (those the
    store failed to delete stay, for the next pass)."""
    deleted = 0
    failed: set[str] = set()
    while True:
        with session_scope(settings.database_url) as s:
            batch = s.execute(select(Artifact.id, Artifact.storage_key)
                              .where(which, Artifact.id.not_in(failed))
                              .order_by(Artifact.created_at).limit(BATCH)).all()
        if not batch:
            break
        removed = []
        for artifact_id, key in batch:
            try:
                store.delete(key)
            except Exception as exc:  # kept, and tried again on the next sweep
                log.warning("artifact %s (%s) not deleted from the store: %s", artifact_id, key, exc)
                failed.add(artifact_id)
            else:
                removed.append(artifact_id)
        if not removed:  # the store refuses everything (down?): try again on the next sweep
            break
        with session_scope(settings.database_url) as s:
            s.execute(delete(Artifact).where(Artifact.id.in_(removed)))
        deleted += len(removed)
    if deleted or failed:
        log.info("retention: deleted %d expired artifact(s); %d kept after store errors", deleted,
                 len(failed))
    return deleted
