"""Organizations and their API keys. Keys are stored as sha256 hashes; the plain key is shown once."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ApiKey, Organization, utcnow
from app.runs import ids
from app.security import hash_api_key, new_api_key, normalize_api_key

DEFAULT_ORGANIZATION = "default"


def create_organization(session: Session, name: str) -> Organization:
    organization = Organization(id=ids.new_id(ids.ORGANIZATION), name=name)
    session.add(organization)
    session.flush()
    return organization


def _add_key(session: Session, organization_id: str, key: str) -> ApiKey:
    row = ApiKey(id=ids.new_id(ids.API_KEY), organization_id=organization_id, key_hash=hash_api_key(key),
                 key_prefix=key[:12])
    session.add(row)
    session.flush()
    return row


def create_api_key(session: Session, organization_id: str) -> str:
    """A new key for the organization; the only time the plain key exists is this return value."""
    key = new_api_key()
    _add_key(session, organization_id, key)
    return key


def list_api_keys(session: Session, organization_id: str | None) -> Sequence[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if organization_id is not None:
        query = query.where(ApiKey.organization_id == organization_id)
    return session.scalars(query).all()


def revoke_api_key(session: Session, key_id: str) -> bool:
    """False when there is no such key; revoking twice keeps the first revocation time."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True


def organization_for_key(session: Session, raw_key: str) -> Organization | None:
    key = normalize_api_key(raw_key)
    if not key:
        return None
    return session.scalars(
        select(Organization)
        .join(ApiKey, ApiKey.organization_id == Organization.id)
        .where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None))
    ).first()


def seed_api_key(session: Session, key: str) -> Organization:
    """Make `key` valid (idempotent): a key not yet stored joins the organization named "default"."""
    key = normalize_api_key(key)
    existing = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()
    if existing is not None:
        organization = session.get(Organization, existing.organization_id)
        assert organization is not None
        return organization
    organization = session.scalars(
        select(Organization).where(Organization.name == DEFAULT_ORGANIZATION)
        .order_by(Organization.created_at)
    ).first() or create_organization(session, DEFAULT_ORGANIZATION)
    _add_key(session, organization.id, key)
    return organization
