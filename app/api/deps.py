"""Request dependencies: settings, a database session, the artifact store, the dispatcher, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from app.accounts.service import key_organization, organization_for_key
from app.artifacts.links import ArtifactLinks
from app.artifacts.store import ArtifactStore
from app.db.engine import session_scope
from app.dispatch import Dispatcher
from app.platform.public_url import public_base_url
from app.platform.security import normalize_api_key
from app.platform.settings import Settings

INVALID_CREDENTIALS = "Invalid credentials"


# The dependencies that do no I/O are `async`: FastAPI runs a sync one in its thread pool, a hop each.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


async def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


# scope="function": the transaction commits before the response is sent. By default FastAPI ends a
# yield dependency after sending, so a client told "created" could ask again before the commit (and get
# a 404), and a commit that failed then was lost behind a 200.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_links(request: Request, settings: SettingsDep, store: StoreDep) -> ArtifactLinks:
    return ArtifactLinks(settings, store, public_base_url(settings, request))


LinksDep = Annotated[ArtifactLinks, Depends(get_links)]


@dataclass(frozen=True)
class Caller:
    organization_id: str
    api_key: str  # as normalized; signs the webhooks of the runs it creates


def caller_for(session: Session, raw_key: str | None) -> Caller:
    """The organization behind an x-api-key header, or 403 Invalid credentials."""
    key = normalize_api_key(raw_key or "")
    organization = organization_for_key(session, key) if key else None
    if organization is None:
        raise HTTPException(status_code=403, detail=INVALID_CREDENTIALS)
    return Caller(organization.id, key)


async def get_caller(settings: SettingsDep,
                     x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None) -> Caller:
    """caller_for, with keys verified in the last WAYFARER_API_KEY_CACHE_SECONDS taken from memory."""
    key = normalize_api_key(x_api_key or "")
    organization_id = await key_organization(settings.database_url, key, settings.api_key_cache_seconds) \
        if key else None
    if organization_id is None:
        raise HTTPException(status_code=403, detail=INVALID_CREDENTIALS)
    return Caller(organization_id, key)


CallerDep = Annotated[Caller, Depends(get_caller)]
