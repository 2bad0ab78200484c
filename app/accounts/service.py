"""Organizations and their API keys. Keys are stored as sha256 hashes; the plain key is shown once."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db.engine import read_session_scope
from app.db.models import ApiKey, DeploymentState, Organization, utcnow
from app.platform.security import hash_api_key, new_api_key, normalize_api_key
from app.runs import ids

DEFAULT_ORGANIZATION = "default"
SEEDED_API_KEY = "seeded_api_key_id"  # a DeploymentState row: the key WAYFARER_API_KEY made

log = logging.getLogger("wayfarer.accounts")


def create_organization(session: Session, name: str) -> Organization:
    organization = Organization(id=ids.new_id(ids.ORGANIZATION), name=name)
    session.add(organization)
    session.flush()
    return organization


def add_api_key(session: Session, organization_id: str, key: str) -> ApiKey:
    """Store a key the caller chose (WAYFARER_API_KEY, tests); `create_api_key` makes a new one."""
    row = ApiKey(id=ids.new_id(ids.API_KEY), organization_id=organization_id, key_hash=hash_api_key(key),
                 key_prefix=key[:12])
    session.add(row)
    session.flush()
    return row


def create_api_key(session: Session, organization_id: str) -> str:
    """A new key for the organization; the only time the plain key exists is this return value."""
    key = new_api_key()
    add_api_key(session, organization_id, key)
    return key


def list_api_keys(session: Session, organization_id: str | None) -> Sequence[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if organization_id is not None:
        query = query.where(ApiKey.organization_id == organization_id)
    return session.scalars(query).all()


def revoke_api_key(session: Session, key_id: str, only_active: bool = False) -> bool:
    """False when there is no such key (or, with only_active, it was revoked already); revoking twice
    keeps the first revocation time."""
    row = session.get(ApiKey, key_id)
    if row is None or (only_active and row.revoked_at is not None):
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    _VERIFIED.forget(row.key_hash)  # at once in this process; other processes within their cache time
    return True


class _VerifiedKeys:
    """Organization ids of keys verified in this process, by (database URL, key hash): the plain key is
    never held. A hit is trusted for `cache_seconds`, so a key revoked by another process keeps working
    here for at most that long; a key not found is never remembered."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, database_url: str, key_hash: str) -> str | None:
        entry = self._entries.get((database_url, key_hash))
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, database_url: str, key_hash: str, organization_id: str, cache_seconds: float) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[(database_url, key_hash)] = (organization_id, time.monotonic() + cache_seconds)

    def forget(self, key_hash: str) -> None:
        for entry in [e for e in self._entries if e[1] == key_hash]:
            self._entries.pop(entry, None)


_VERIFIED = _VerifiedKeys()


def cached_key_organization(database_url: str, key: str) -> str | None:
    """The organization id of a key verified within the last WAYFARER_API_KEY_CACHE_SECONDS (no I/O)."""
    return _VERIFIED.get(database_url, hash_api_key(key))


def verify_api_key(database_url: str, key: str, cache_seconds: float) -> str | None:
    """The organization id of an active (not revoked) key, read from the database and remembered."""
    key_hash = hash_api_key(key)
    with read_session_scope(database_url) as session:
        organization_id = session.scalar(select(ApiKey.organization_id).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
    if organization_id is not None and cache_seconds > 0:
        _VERIFIED.put(database_url, key_hash, organization_id, cache_seconds)
    return organization_id


async def key_organization(database_url: str, key: str, cache_seconds: float) -> str | None:
    """The organization id of an active key: from memory when verified within cache_seconds, else read
    (in the thread pool) and remembered."""
    return cached_key_organization(database_url, key) or await run_in_threadpool(
        verify_api_key, database_url, key, cache_seconds)


def active_api_key(session: Session, raw_key: str) -> ApiKey | None:
    """The stored row of a key that is not revoked (its id and organization), else None."""
    key = normalize_api_key(raw_key)
    if not key:
        return None
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key),
                                                ApiKey.revoked_at.is_(None))).first()


def organization_for_key(session: Session, raw_key: str) -> Organization | None:
    row = active_api_key(session, raw_key)
    return None if row is None else session.get(Organization, row.organization_id)


def seed_api_key(session: Session, key: str) -> Organization:
    """Make `key` (WAYFARER_API_KEY) the deployment's seeded key: a key not yet stored joins the
    organization named "default", and the key seeded before it, if it was another, is revoked — so a new
    WAYFARER_API_KEY replaces the old one instead of adding to it. Every `serve --workers` process seeds at
    start-up: one that loses a race to insert rolls back and reads the winner's work."""
    key = normalize_api_key(key)
    for _ in range(3):
        try:
            return _seed(session, key)
        except IntegrityError:
            session.rollback()
    return _seed(session, key)


def _seed(session: Session, key: str) -> Organization:
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()
    if row is None:
        default = session.scalars(
            select(Organization).where(Organization.name == DEFAULT_ORGANIZATION)
            .order_by(Organization.created_at)
        ).first() or create_organization(session, DEFAULT_ORGANIZATION)
        row = add_api_key(session, default.id, key)
    elif row.revoked_at is not None:
        log.warning("WAYFARER_API_KEY is the API key %s, which was revoked: it stays revoked", row.id)
    seeded = session.get(DeploymentState, SEEDED_API_KEY)
    if seeded is None or seeded.value != row.id:
        if seeded is not None and revoke_api_key(session, seeded.value, only_active=True):
            log.warning("WAYFARER_API_KEY changed: the key it seeded before (%s) is revoked", seeded.value)
        session.merge(DeploymentState(name=SEEDED_API_KEY, value=row.id))
        session.flush()
    return session.get_one(Organization, row.organization_id)
