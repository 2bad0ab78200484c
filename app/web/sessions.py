"""Browser sessions: the list, and one session's page with its runs (and its live view)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.deps import SessionDep
from app.runs import queries
from app.sessions import service
from app.sessions.lifecycle import ACTIVE, find_session
from app.web.auth import ViewerDep
from app.web.render import PageNotFound, page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20


@router.get("/browser-sessions")
def sessions_page(request: Request, viewer: ViewerDep, session: SessionDep,
                  page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    rows = service.recent_sessions(session, viewer.organization_id, (page_number - 1) * PAGE_SIZE,
                                   PAGE_SIZE + 1)
    return page(request, "sessions.html", viewer, sessions=rows[:PAGE_SIZE], page_number=page_number,
                has_next=len(rows) > PAGE_SIZE)


@router.get("/browser-sessions/{browser_session_id}")
def session_page(request: Request, browser_session_id: str, viewer: ViewerDep,
                 session: SessionDep) -> Response:
    row = find_session(session, viewer.organization_id, browser_session_id)
    if row is None:
        raise PageNotFound(f"There is no browser session {browser_session_id} in your organization.")
    runs = queries.list_runs(session, viewer.organization_id,
                             queries.RunFilter(browser_session_id=row.id), 0, 100)
    return page(request, "session.html", viewer, browser_session=row, runs=runs,
                session_active=row.status in ACTIVE, refresh=row.status in ACTIVE,
                live={"kind": "session", "id": row.id, "status": row.status})
