"""Browser sessions (`pbs_`): create, read, list active, update, extend, close; and the CDP relay.

`browser_address` is this API's WebSocket route below: it checks the x-api-key of the handshake and
relays frames to the DevTools endpoint of the worker holding the session, which is never exposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, WebSocket
from starlette.concurrency import run_in_threadpool
from websockets.asyncio.client import ClientConnection, connect

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep, caller_for
from app.db.engine import session_scope
from app.platform.settings import Settings
from app.schemas.browser_sessions import (
    BrowserSessionResponse,
    CloseBrowserSessionResponse,
    CreateBrowserSessionRequest,
    ExtendBrowserSessionRequest,
    UpdateBrowserSessionRequest,
)
from app.sessions import lifecycle, service
from app.sessions.lifecycle import ACTIVE, SessionStatus

router = APIRouter(tags=["Browser Sessions"])
log = logging.getLogger(__name__)

OPEN_WAIT_SECONDS = 30.0  # a client may connect right after creating the session, before it opened
_POLICY_VIOLATION = 1008  # closing before accept: the server answers the handshake with 403


@router.post("/v1/browser_sessions", response_model=BrowserSessionResponse)
def create_browser_session(
    session: SessionDep, settings: SettingsDep, caller: CallerDep, dispatcher: DispatcherDep, links: LinksDep,
    request: Annotated[CreateBrowserSessionRequest | None, Body()] = None,
) -> BrowserSessionResponse:
    row = service.create_session(session, settings, dispatcher, caller.organization_id,
                                 request or CreateBrowserSessionRequest())
    return service.session_response(session, row, links, settings)


@router.get("/v1/browser_sessions", response_model=list[BrowserSessionResponse])
def get_browser_sessions(session: SessionDep, settings: SettingsDep, caller: CallerDep,
                         links: LinksDep) -> list[BrowserSessionResponse]:
    return [service.session_response(session, row, links, settings)
            for row in service.active_sessions(session, caller.organization_id)]


@router.get("/v1/browser_sessions/{browser_session_id}", response_model=BrowserSessionResponse)
def get_browser_session(browser_session_id: str, session: SessionDep, settings: SettingsDep,
                        caller: CallerDep, links: LinksDep) -> BrowserSessionResponse:
    row = service.session_or_404(session, caller.organization_id, browser_session_id)
    return service.session_response(session, row, links, settings)


@router.patch("/v1/browser_sessions/{browser_session_id}", response_model=BrowserSessionResponse)
def update_browser_session(browser_session_id: str, request: UpdateBrowserSessionRequest,
                           session: SessionDep, settings: SettingsDep, caller: CallerDep,
                           links: LinksDep) -> BrowserSessionResponse:
    row = service.session_or_404(session, caller.organization_id, browser_session_id)
    service.update_session(session, row, request.generate_browser_profile)  # SessionEnded: 409 (app.main)
    return service.session_response(session, row, links, settings)


@router.post("/v1/browser_sessions/{browser_session_id}/extend", response_model=BrowserSessionResponse)
def extend_browser_session(browser_session_id: str, request: ExtendBrowserSessionRequest,
                           session: SessionDep, settings: SettingsDep, caller: CallerDep,
                           links: LinksDep) -> BrowserSessionResponse:
    row = service.session_or_404(session, caller.organization_id, browser_session_id)
    service.extend_session(session, row, request.additional_minutes)  # SessionRejected: 400 (app.main)
    session.refresh(row)
    return service.session_response(session, row, links, settings)


@router.post("/v1/browser_sessions/{browser_session_id}/close", response_model=CloseBrowserSessionResponse)
def close_browser_session(browser_session_id: str, session: SessionDep, settings: SettingsDep,
                          caller: CallerDep, dispatcher: DispatcherDep) -> CloseBrowserSessionResponse:
    row = service.session_or_404(session, caller.organization_id, browser_session_id)
    service.close_session(session, row)
    return CloseBrowserSessionResponse()


@router.websocket("/v1/browser_sessions/{browser_session_id}/cdp")
async def browser_session_cdp(websocket: WebSocket, browser_session_id: str) -> None:
    """Relay a CDP client (Playwright's connect_over_cdp) to the session's browser."""
    settings: Settings = websocket.app.state.settings
    target = await _cdp_target(settings, websocket.headers.get("x-api-key"), browser_session_id)
    if target is None:
        await websocket.close(code=_POLICY_VIOLATION)
        return
    try:
        upstream = await connect(target, max_size=None, ping_interval=None, open_timeout=10)
    except (OSError, TimeoutError) as exc:
        log.warning("CDP relay for %s could not reach the session's browser: %s", browser_session_id, exc)
        await websocket.close(code=1011)
        return
    await websocket.accept()
    async with upstream:
        relays = [asyncio.ensure_future(_to_browser(websocket, upstream)),
                  asyncio.ensure_future(_to_client(websocket, upstream))]
        await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
    with contextlib.suppress(Exception):
        await websocket.close()


async def _cdp_target(settings: Settings, api_key: str | None, session_id: str) -> str | None:
    """The holder's DevTools URL once the caller's session is open; None refuses the handshake."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + OPEN_WAIT_SECONDS
    while True:
        state = await run_in_threadpool(_session_state, settings, api_key, session_id)
        if state is None or state[0] not in ACTIVE:
            return None
        if state[0] == SessionStatus.running and state[1]:
            return state[1]
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.2)


def _session_state(settings: Settings, api_key: str | None, session_id: str) -> tuple[str, str | None] | None:
    with session_scope(settings.database_url) as s:
        try:
            caller = caller_for(s, api_key)
        except HTTPException:
            return None
        row = lifecycle.find_session(s, caller.organization_id, session_id)
        return (row.status, row.cdp_url) if row is not None else None


async def _to_browser(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") if message.get("text") is not None else message.get("bytes")
        if data is not None:
            await upstream.send(data)


async def _to_client(websocket: WebSocket, upstream: ClientConnection) -> None:
    async for data in upstream:
        if isinstance(data, str):
            await websocket.send_text(data)
        else:
            await websocket.send_bytes(data)
