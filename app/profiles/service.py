"""Browser profiles (`bp_`): a saved browser state that runs and sessions start from.

A profile holds Playwright's storage_state (cookies and each origin's localStorage), which carries
login cookies, so it is stored encrypted with the secret key, like credentials. Where a state comes from:
- a browser session created or patched with generate_browser_profile: the session saves its state as
  a profile when it ends (`save_profile_from_state`); POST /v1/browser_profiles with that
  browser_session_id makes a profile of the same state under the requested name;
- a workflow run (`wr_`: login, download_files): the runner keeps its final state on the run
  (`keep_run_state`); POST /v1/browser_profiles with workflow_run_id makes a profile of it;
- nothing: a blank profile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db.models import BrowserProfile, Run, utcnow
from app.platform.security import decrypt, encrypt
from app.platform.settings import Settings
from app.runs import ids
from app.runs.lifecycle import FINAL, RunStatus
from app.schemas.browser_profiles import (
    BrowserProfile as BrowserProfileResponse,
)
from app.schemas.browser_profiles import (
    CreateBrowserProfileRequest,
    UpdateBrowserProfileRequest,
)

EMPTY_STATE: dict[str, Any] = {"cookies": [], "origins": []}


class UnknownProfile(LookupError):
    """The organization has no such browser profile (HTTP 404); the message names the field, if any."""

    def __init__(self, profile_id: str, field: str | None = None) -> None:
        super().__init__(f"{field + ': ' if field else ''}Browser profile not found {profile_id}")


class ProfileNameTaken(ValueError):
    """Another profile of the organization has this name (HTTP 409)."""


class ProfileSourceUnavailable(ValueError):
    """The browser_session_id or workflow_run_id has no state to make a profile of (HTTP 400)."""


def _seal(settings: Settings, state: dict[str, Any]) -> str:
    return encrypt(settings.resolved_secret_key(), json.dumps(state))


def _unseal(settings: Settings, token: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(decrypt(settings.resolved_secret_key(), token))
    return state


def find_profile(db_session: Session, organization_id: str, profile_id: str,
                 include_deleted: bool = False) -> BrowserProfile | None:
    query = select(BrowserProfile).where(BrowserProfile.id == profile_id,
                                         BrowserProfile.organization_id == organization_id)
    if not include_deleted:
        query = query.where(BrowserProfile.deleted_at.is_(None))
    return db_session.scalars(query).first()


def require_profile(db_session: Session, organization_id: str, profile_id: str) -> BrowserProfile:
    row = find_profile(db_session, organization_id, profile_id)
    if row is None:
        raise UnknownProfile(profile_id)
    return row


def load_storage_state(settings: Settings, db_session: Session, organization_id: str,
                       profile_id: str) -> dict[str, Any]:
    """The profile's storage_state for `browser.new_context(storage_state=...)`; LookupError when the
    profile does not exist, was deleted, or belongs to another organization."""
    row = find_profile(db_session, organization_id, profile_id)
    if row is None:
        raise LookupError(f"Browser profile not found {profile_id}")
    return _unseal(settings, row.storage_state_encrypted)


def _name_taken(db_session: Session, organization_id: str, name: str, except_id: str | None = None) -> bool:
    query = select(BrowserProfile.id).where(BrowserProfile.organization_id == organization_id,
                                            BrowserProfile.name == name, BrowserProfile.deleted_at.is_(None))
    if except_id is not None:
        query = query.where(BrowserProfile.id != except_id)
    return db_session.scalars(query).first() is not None


def _insert(settings: Settings, db_session: Session, organization_id: str, *, name: str,
            description: str | None, storage_state: dict[str, Any], browser_session_id: str | None = None,
            workflow_run_id: str | None = None) -> BrowserProfile:
    now = utcnow()
    row = BrowserProfile(id=ids.new_id(ids.BROWSER_PROFILE), organization_id=organization_id, name=name,
                         description=description, browser_session_id=browser_session_id,
                         workflow_run_id=workflow_run_id, created_at=now, modified_at=now,
                         storage_state_encrypted=_seal(settings, storage_state))
    db_session.add(row)
    db_session.commit()
    return row


def save_profile_from_state(settings: Settings, db_session: Session, organization_id: str, *, name: str,
                            storage_state: dict[str, Any], browser_session_id: str | None) -> str:
    """Save a session's state as a new profile; returns its bp_ id. A name already in use gets a
    numbered suffix ("name (2)"): this runs when a session ends, with nobody to answer a conflict."""
    unique, number = name, 1
    while _name_taken(db_session, organization_id, unique):
        number += 1
        unique = f"{name} ({number})"
    return _insert(settings, db_session, organization_id, name=unique, description=None,
                   storage_state=storage_state, browser_session_id=browser_session_id).id


def keep_run_state(settings: Settings, db_session: Session, run_id: str,
                   storage_state: dict[str, Any]) -> None:
    """Remember a workflow run's final storage state, for a profile made from it later."""
    run = db_session.get(Run, run_id)
    if run is not None:
        run.storage_state_encrypted = _seal(settings, storage_state)
        db_session.commit()


def _source_state(settings: Settings, db_session: Session, organization_id: str,
                  request: CreateBrowserProfileRequest) -> dict[str, Any]:
    if request.browser_session_id and request.workflow_run_id:
        raise ProfileSourceUnavailable("Give browser_session_id or workflow_run_id, not both.")
    if request.browser_session_id:
        saved = db_session.scalars(
            select(BrowserProfile).where(BrowserProfile.organization_id == organization_id,
                                         BrowserProfile.browser_session_id == request.browser_session_id,
                                         BrowserProfile.deleted_at.is_(None))
            .order_by(BrowserProfile.created_at.desc())).first()
        if saved is None:
            raise ProfileSourceUnavailable(
                f"browser_session_id {request.browser_session_id} has no saved browser state: a session "
                "saves its state when it ends with generate_browser_profile set. Set it (PATCH "
                "/v1/browser_sessions/{id}), close the session, then create the profile.")
        return _unseal(settings, saved.storage_state_encrypted)
    if request.workflow_run_id:
        run = db_session.scalars(select(Run).where(Run.id == request.workflow_run_id,
                                                   Run.organization_id == organization_id)).first()
        if run is None:
            raise ProfileSourceUnavailable(f"workflow_run_id {request.workflow_run_id} was not found.")
        if RunStatus(run.status) not in FINAL:
            raise ProfileSourceUnavailable(f"workflow_run_id {run.id} is still {run.status}; its browser "
                                           "state is kept when it ends.")
        if run.storage_state_encrypted is None:
            raise ProfileSourceUnavailable(
                f"workflow_run_id {run.id} has no saved browser state: only workflow runs (login, "
                "download_files) that opened a browser keep theirs.")
        return _unseal(settings, run.storage_state_encrypted)
    return EMPTY_STATE


def create_profile(settings: Settings, db_session: Session, organization_id: str,
                   request: CreateBrowserProfileRequest) -> BrowserProfile:
    if _name_taken(db_session, organization_id, request.name):
        raise ProfileNameTaken(f"A browser profile named {request.name!r} already exists.")
    state = _source_state(settings, db_session, organization_id, request)
    return _insert(settings, db_session, organization_id, name=request.name,
                   description=request.description, storage_state=state,
                   browser_session_id=request.browser_session_id, workflow_run_id=request.workflow_run_id)


def update_profile(db_session: Session, row: BrowserProfile, request: UpdateBrowserProfileRequest) -> None:
    if request.name is not None and _name_taken(db_session, row.organization_id, request.name, row.id):
        raise ProfileNameTaken(f"A browser profile named {request.name!r} already exists.")
    if request.name is not None:
        row.name = request.name
    if "description" in request.model_fields_set:
        row.description = request.description
    row.modified_at = utcnow()
    db_session.commit()


def delete_profile(db_session: Session, row: BrowserProfile) -> None:
    """Soft delete: the encrypted state is dropped, the row stays for include_deleted listings."""
    row.deleted_at = row.modified_at = utcnow()
    row.storage_state_encrypted = ""
    db_session.commit()


def list_profiles(db_session: Session, organization_id: str, page: int, page_size: int,
                  include_deleted: bool, search_key: str | None) -> Sequence[BrowserProfile]:
    query = select(BrowserProfile).where(BrowserProfile.organization_id == organization_id)
    if not include_deleted:
        query = query.where(BrowserProfile.deleted_at.is_(None))
    if search_key:
        pattern = f"%{search_key}%"
        query = query.where(or_(BrowserProfile.name.ilike(pattern),
                                BrowserProfile.description.ilike(pattern)))
    query = query.order_by(BrowserProfile.created_at.desc(), BrowserProfile.id.desc())
    return db_session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()


def profile_response(row: BrowserProfile) -> BrowserProfileResponse:
    return BrowserProfileResponse(browser_profile_id=row.id, organization_id=row.organization_id,
                                  name=row.name, description=row.description, created_at=row.created_at,
                                  modified_at=row.modified_at, deleted_at=row.deleted_at)
