"""Browser sessions as the API handles them: create, respond, extend, close (statuses via lifecycle)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.artifacts.links import ArtifactLinks
from app.db.models import Artifact, BrowserSession, Run, utcnow
from app.dispatch import Dispatcher, DispatchUnavailable, QueueUnavailable
from app.platform.proxies import proxy_route
from app.platform.settings import Settings
from app.profiles.service import UnknownProfile, find_profile
from app.runs import ids
from app.runs.lifecycle import RunStatus
from app.schemas.browser_sessions import (
    DEFAULT_TIMEOUT_MINUTES,
    MAX_TIMEOUT_MINUTES,
    BrowserSessionResponse,
    CreateBrowserSessionRequest,
)
from app.schemas.runs import FileInfo
from app.sessions import lifecycle
from app.sessions.lifecycle import ACTIVE, SessionStatus

MAX_LIFETIME_MINUTES = 360  # what extend may reach, as in Skyvern
# Kept on the row as given: the worker opening the browser applies proxy_location; the rest are not acted on.
_OPTIONS = ("proxy_location", "proxy_session_id", "extensions", "browser_type", "needs_live_view")


class SessionRejected(Exception):
    """A well-formed request this session cannot take (HTTP 400)."""


def create_session(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                   request: CreateBrowserSessionRequest) -> BrowserSession:
    """Store the session (created), then ask a worker to open its browser."""
    proxy_route(settings, request.proxy_location)  # a proxy_location without a proxy here is refused
    profile_id = request.browser_profile_id
    if profile_id and find_profile(session, organization_id, profile_id) is None:
        raise UnknownProfile(profile_id, "browser_profile_id")
    timeout = request.timeout or DEFAULT_TIMEOUT_MINUTES
    warning = None
    if timeout > MAX_TIMEOUT_MINUTES:
        warning = (f"timeout {timeout} is over the maximum of {MAX_TIMEOUT_MINUTES} minutes; "
                   f"the session was given {MAX_TIMEOUT_MINUTES}.")
        timeout = MAX_TIMEOUT_MINUTES
    now = utcnow()
    row = BrowserSession(
        id=ids.new_id(ids.BROWSER_SESSION), organization_id=organization_id,
        status=SessionStatus.created.value, timeout_minutes=timeout, url=request.url,
        browser_profile_id=request.browser_profile_id,
        generate_browser_profile=bool(request.generate_browser_profile),
        options=request.model_dump(include=set(_OPTIONS), exclude_none=True, mode="json"),
        warning=warning, created_at=now, modified_at=now)
    session.add(row)
    session.commit()
    try:
        dispatcher.open_session(row.id)
    except DispatchUnavailable as exc:
        lifecycle.end(session, row.id, SessionStatus.failed, "The queue was unavailable when the session "
                      "was created, so no worker opened it.")
        session.commit()
        raise QueueUnavailable("The queue is unavailable, so no worker can open the session; try again "
                               "shortly.") from exc
    return row


def session_or_404(session: Session, organization_id: str, session_id: str) -> BrowserSession:
    row = lifecycle.find_session(session, organization_id, session_id)
    if row is None:
        raise lifecycle.UnknownBrowserSession(session_id)
    return row


def active_sessions(session: Session, organization_id: str) -> Sequence[BrowserSession]:
    return session.scalars(select(BrowserSession).where(
        BrowserSession.organization_id == organization_id,
        BrowserSession.status.in_([s.value for s in ACTIVE])).order_by(BrowserSession.created_at)).all()


def recent_sessions(session: Session, organization_id: str, offset: int,
                    limit: int) -> Sequence[BrowserSession]:
    """The organization's sessions of every status, newest first, from `offset` on, at most `limit`."""
    return session.scalars(select(BrowserSession).where(BrowserSession.organization_id == organization_id)
                           .order_by(BrowserSession.created_at.desc(), BrowserSession.id.desc())
                           .offset(offset).limit(limit)).all()


def extend_session(session: Session, row: BrowserSession, minutes: int) -> None:
    if row.status not in ACTIVE:
        raise SessionRejected(f"Browser session {row.id} has ended (status {row.status}); it cannot be "
                              "extended.")
    if row.timeout_minutes + minutes > MAX_LIFETIME_MINUTES:
        raise SessionRejected(f"additional_minutes {minutes} would make the session's timeout "
                              f"{row.timeout_minutes + minutes} minutes, over the maximum of "
                              f"{MAX_LIFETIME_MINUTES}.")
    if not lifecycle.extend(session, row, minutes):
        raise SessionRejected(f"Browser session {row.id} changed while it was extended; try again.")
    session.commit()


class SessionEnded(SessionRejected):
    """A change only a live session can take (HTTP 409)."""


def update_session(session: Session, row: BrowserSession, generate_browser_profile: bool) -> None:
    """PATCH: generate_browser_profile is read by the holder when the session ends."""
    if row.status not in ACTIVE:
        raise SessionEnded(f"Browser session {row.id} has ended (status {row.status}); "
                           "generate_browser_profile cannot change.")
    row.generate_browser_profile = generate_browser_profile
    session.commit()


def close_session(session: Session, row: BrowserSession) -> None:
    """End the session (completed); its holder releases the browser within a second. Its unfinished
    runs are canceled: the user ended the browser they were running in."""
    if not lifecycle.end(session, row.id, SessionStatus.completed):
        return  # already ended: closing again changes nothing
    lifecycle.end_session_runs(session, row.id, RunStatus.canceled,
                               f"The browser session {row.id} was closed before this run finished.")
    session.commit()


def browser_address(public_base: str, session_id: str) -> str:
    """The WebSocket URL of the API's CDP relay for this session (app/api/browser_sessions.py)."""
    scheme, rest = public_base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/v1/browser_sessions/{session_id}/cdp"


def _files(artifacts: Sequence[Artifact], artifact_type: str, links: ArtifactLinks) -> list[FileInfo]:
    return [FileInfo(url=links.url(a), checksum=a.checksum, filename=a.filename, file_size=a.size,
                     modified_at=a.modified_at, artifact_id=a.id)
            for a in artifacts if a.artifact_type == artifact_type]


def session_response(session: Session, row: BrowserSession, links: ArtifactLinks,
                     settings: Settings) -> BrowserSessionResponse:
    """The session's own recordings and downloads, and the downloads of the runs it hosted."""
    runs = select(Run.id).where(Run.browser_session_id == row.id).scalar_subquery()
    artifacts = session.scalars(select(Artifact).where(
        Artifact.artifact_type.in_(["recording", "download"]),
        or_(Artifact.browser_session_id == row.id,
            (Artifact.run_id.in_(runs)) & (Artifact.artifact_type == "download")))
        .order_by(Artifact.created_at, Artifact.id)).all()
    options = row.options or {}
    return BrowserSessionResponse(
        browser_session_id=row.id, organization_id=row.organization_id, status=row.status,
        runnable_type=row.runnable_type, runnable_id=row.runnable_id, timeout=row.timeout_minutes,
        browser_address=browser_address(links.base_url, row.id) if row.status in ACTIVE else None,
        app_url=f"{settings.app_url.rstrip('/')}/browser-session/{row.id}" if settings.app_url else None,
        extensions=options.get("extensions"), browser_type=options.get("browser_type"),
        browser_profile_id=row.browser_profile_id, generate_browser_profile=row.generate_browser_profile,
        downloaded_files=_files(artifacts, "download", links),
        recordings=_files(artifacts, "recording", links),
        started_at=row.started_at, completed_at=row.completed_at, created_at=row.created_at,
        modified_at=row.modified_at, warning=row.warning, failure_reason=row.failure_reason)
