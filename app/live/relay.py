"""The API's end of a live view: relay a topic's frames to one viewer's socket, with the target's status,
and (on the input socket) the holder's validated input to the worker.

Each viewer has a one-frame mailbox (`Newest`): while its socket is slow to take a frame, newer ones
replace the waiting one, so a slow viewer gets the newest picture and never a growing queue. The status
(JSON text messages) is read every STATUS_INTERVAL_S and sent when it changed; a viewer's commands
(take control, give back) come back on the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from app.live.bus import LiveBus, Newest
from app.live.messages import InputRefused, frame_header, parse_input

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0
DEFAULT_VIEWPORT = (1280, 720)
VIEWPORT_REFRESH_S = 2.0
CLOSE_NOT_HELD = 4403

State = Callable[[], Awaitable[dict[str, Any] | None]]
Command = Callable[[str], Awaitable[str | None]]  # the command's name -> a refusal to show, or None


class _Socket:
    """Serializes sends: frames and status messages go out from different tasks."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send_bytes(self, data: bytes) -> None:
        async with self._lock:
            await self.websocket.send_bytes(data)

    async def send_json(self, data: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(data))


async def serve_frames(websocket: WebSocket, bus: LiveBus, topic: str, state: State,
                       command: Command | None = None) -> None:
    """Relay until the viewer leaves or the target ended (the socket was accepted)."""
    socket = _Socket(websocket)
    changed = asyncio.Event()
    async with bus.frames(topic) as newest:
        latest = await bus.latest_frame(topic)
        if latest is not None:
            newest.put(latest)
        await _until_one_ends(_send_frames(socket, newest), _send_status(socket, state, changed),
                              _receive_commands(socket, command, changed))
    with contextlib.suppress(Exception):
        await websocket.close()


async def _until_one_ends(*work: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines together until one of them returns (or fails); cancel the others."""
    tasks = [asyncio.ensure_future(each) for each in work]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _send_frames(socket: _Socket, newest: Newest) -> None:
    while True:
        await socket.send_bytes(await newest.get())


async def _send_status(socket: _Socket, state: State, changed: asyncio.Event) -> None:
    last: dict[str, Any] | None = None
    while True:
        try:
            current = await state()
        except Exception as exc:  # the database blinked: the view goes on, the status comes next time
            log.warning("live status unavailable: %s", exc)
            await asyncio.sleep(STATUS_INTERVAL_S)
            continue
        if current is None:
            return
        if current != last:
            await socket.send_json(current)
            last = current
        if current.get("final"):
            return
        changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STATUS_INTERVAL_S):
                await changed.wait()


async def _receive_commands(socket: _Socket, command: Command | None, changed: asyncio.Event) -> None:
    while True:
        try:
            text = await socket.websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        name = _command_name(text)
        refusal = (f"unknown command {name!r}" if command is None or name is None
                   else await command(name))
        if refusal is not None:
            await socket.send_json({"type": "error", "detail": refusal})
        changed.set()


def _command_name(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    name = data.get("type") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


async def serve_input(websocket: WebSocket, bus: LiveBus, topic: str,
                      still_held: Callable[[], Awaitable[bool]]) -> None:
    """Relay the holder's input events until they leave or no longer hold control (the socket was
    accepted); each event is validated against the viewport of the newest frame."""
    socket = _Socket(websocket)
    await _until_one_ends(_relay_input(socket, bus, topic), _watch_hold(still_held))
    with contextlib.suppress(Exception):
        await websocket.close(code=CLOSE_NOT_HELD, reason="control is not held by this viewer")


async def _relay_input(socket: _Socket, bus: LiveBus, topic: str) -> None:
    viewport, read_at = DEFAULT_VIEWPORT, -VIEWPORT_REFRESH_S
    loop = asyncio.get_running_loop()
    while True:
        try:
            raw = await socket.websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        if loop.time() - read_at >= VIEWPORT_REFRESH_S:
            viewport, read_at = await _viewport(bus, topic), loop.time()
        width, height = viewport
        try:
            parse_input(raw, width, height)
        except InputRefused as exc:
            await socket.send_json({"type": "error", "detail": str(exc)})
            continue
        await bus.publish_input(topic, raw.encode())


async def _watch_hold(still_held: Callable[[], Awaitable[bool]]) -> None:
    while await still_held():
        await asyncio.sleep(STATUS_INTERVAL_S)


async def _viewport(bus: LiveBus, topic: str) -> tuple[int, int]:
    latest = await bus.latest_frame(topic)
    if latest is None:
        return DEFAULT_VIEWPORT
    header = frame_header(latest)
    return int(str(header.get("width") or DEFAULT_VIEWPORT[0])), int(str(header.get("height") or
                                                                          DEFAULT_VIEWPORT[1]))
