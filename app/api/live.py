"""Live view sockets (Wayfarer extensions): a run's or a browser session's screen as it changes, and
the input of the person holding a run's control. See app/live/ and docs/architecture.md ("Live view")."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.deps import SettingsDep
from app.live import targets
from app.live.access import LiveViewer, identify, issue_token
from app.live.bus import LiveBus
from app.live.relay import serve_frames, serve_input
from app.platform.settings import Settings
from app.schemas.live import LiveTokenResponse

router = APIRouter(tags=["Live view"])


def _bus(connection: Request | WebSocket) -> LiveBus:
    bus: LiveBus = connection.app.state.live
    return bus


async def _refuse(websocket: WebSocket, status_code: int, detail: str) -> None:
    """Answer the handshake with an HTTP error (a close code where the server cannot send one)."""
    try:
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=status_code))
    except RuntimeError:
        with contextlib.suppress(RuntimeError):
            await websocket.close(code=4000 + status_code, reason=detail)


async def _admit(websocket: WebSocket, topic: str, status: Callable[[Settings, LiveViewer], Any],
                 what: str) -> LiveViewer | None:
    """The viewer, once the target is theirs; else the handshake is refused (403, or 404 exactly as
    for a target that does not exist)."""
    viewer = await identify(websocket, topic)
    if viewer is None:
        await _refuse(websocket, 403, "Invalid credentials")
        return None
    if await run_in_threadpool(status, websocket.app.state.settings, viewer) is None:
        await _refuse(websocket, 404, f"{what} not found")
        return None
    return viewer


def _admit_run(websocket: WebSocket, run_id: str) -> Awaitable[LiveViewer | None]:
    return _admit(websocket, targets.run_topic(run_id), lambda s, v: targets.run_status(s, v, run_id),
                  f"Run {run_id}")


@router.websocket("/v1/runs/{run_id}/live")
async def run_live(websocket: WebSocket, run_id: str) -> None:
    settings: Settings = websocket.app.state.settings
    viewer = await _admit_run(websocket, run_id)
    if viewer is None:
        return
    await websocket.accept()

    def state() -> Awaitable[dict[str, Any] | None]:
        return run_in_threadpool(targets.run_status, settings, viewer, run_id)

    def command(name: str) -> Awaitable[str | None]:
        return run_in_threadpool(targets.run_command, settings, viewer, run_id, name)

    await serve_frames(websocket, _bus(websocket), targets.run_topic(run_id), state, command)


@router.websocket("/v1/runs/{run_id}/live/input")
async def run_live_input(websocket: WebSocket, run_id: str) -> None:
    settings: Settings = websocket.app.state.settings
    viewer = await _admit_run(websocket, run_id)
    if viewer is None:
        return
    if not await run_in_threadpool(targets.holds_paused_run, settings, viewer, run_id):
        await _refuse(websocket, 409, f"Run {run_id} is not paused under your control; take control first.")
        return
    await websocket.accept()

    def still_held() -> Awaitable[bool]:
        return run_in_threadpool(targets.holds_paused_run, settings, viewer, run_id)

    await serve_input(websocket, _bus(websocket), targets.run_topic(run_id), still_held)


@router.websocket("/v1/browser_sessions/{browser_session_id}/live")
async def session_live(websocket: WebSocket, browser_session_id: str) -> None:
    settings: Settings = websocket.app.state.settings
    viewer = await _admit(websocket, targets.session_topic(browser_session_id),
                          lambda s, v: targets.session_status(s, v, browser_session_id),
                          f"Browser session {browser_session_id}")
    if viewer is None:
        return
    await websocket.accept()

    def state() -> Awaitable[dict[str, Any] | None]:
        return run_in_threadpool(targets.session_status, settings, viewer, browser_session_id)

    await serve_frames(websocket, _bus(websocket), targets.session_topic(browser_session_id), state)


async def _token(request: Request, settings: Settings, topic: str,
                 status: Callable[[Settings, LiveViewer], Any], what: str, path: str,
                 with_input: bool) -> LiveTokenResponse:
    viewer = await identify(request, topic)
    if viewer is None:
        raise HTTPException(status_code=403, detail="Invalid credentials")
    if await run_in_threadpool(status, settings, viewer) is None:
        raise HTTPException(status_code=404, detail=f"{what} not found")
    token, expires = issue_token(settings, topic, viewer)
    base = str(request.base_url).rstrip("/").replace("http", "ws", 1)
    return LiveTokenResponse(token=token, expires_at=expires, live_url=f"{base}{path}?token={token}",
                             input_url=f"{base}{path}/input?token={token}" if with_input else None)


@router.post("/v1/runs/{run_id}/live_token", response_model=LiveTokenResponse)
async def run_live_token(run_id: str, request: Request, settings: SettingsDep) -> LiveTokenResponse:
    return await _token(request, settings, targets.run_topic(run_id),
                        lambda s, v: targets.run_status(s, v, run_id), f"Run {run_id}",
                        f"/v1/runs/{run_id}/live", with_input=True)


@router.post("/v1/browser_sessions/{browser_session_id}/live_token", response_model=LiveTokenResponse)
async def session_live_token(browser_session_id: str, request: Request, settings: SettingsDep,
                             ) -> LiveTokenResponse:
    return await _token(request, settings, targets.session_topic(browser_session_id),
                        lambda s, v: targets.session_status(s, v, browser_session_id),
                        f"Browser session {browser_session_id}",
                        f"/v1/browser_sessions/{browser_session_id}/live", with_input=False)
