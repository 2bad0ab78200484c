"""The worker's end of a live view: publish a browser's screencast on its live topic and apply the input
of the person holding control.

Frames go out newest-first: the screencast sink only replaces the frame waiting to be sent, so a slow
bus never builds a queue. When nobody watches (the bus reports no receivers) the newest frame is
published at most once a second, which keeps the topic's `latest` fresh for a viewer who arrives.
Input is applied only while the run is paused at a step boundary (`RunSteering.paused`), so a person
and the agent never act at once; each event is validated again here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from app.live.bus import LiveBus
from app.live.messages import (
    InputRefused,
    KeyInput,
    MouseInput,
    TextInput,
    WheelInput,
    encode_frame,
    parse_input,
)
from app.platform.cancelling import cancel_and_wait
from workers.agent.screencast import Frame, Screencast

log = logging.getLogger(__name__)

UNWATCHED_INTERVAL_S = 1.0
FORGET_TIMEOUT_S = 5.0  # a run's end does not wait longer for Redis to drop its latest frame


class Screen(Protocol):
    """What a live view shows: a screencast following the active one of some tabs (a BrowserRun)."""

    @property
    def screencast(self) -> Screencast | None: ...

    @property
    def pages(self) -> list[Page]: ...

    @property
    def active_page(self) -> Page: ...


class LivePublisher:
    """Publishes `browser`'s screencast on `topic`; with `may_act`, applies the input sent on it while
    may_act() answers True (and calls on_input for each event applied)."""

    def __init__(self, bus: LiveBus, topic: str, browser: Screen,
                 may_act: Callable[[], bool] | None = None,
                 on_input: Callable[[], None] | None = None) -> None:
        self._bus = bus
        self.topic = topic
        self._browser = browser
        self._may_act = may_act
        self._on_input = on_input or (lambda: None)
        self._frame: Frame | None = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._titles: dict[str, str] = {}
        self.inputs_applied = 0

    def start(self) -> None:
        screencast = self._browser.screencast
        if screencast is None:
            return
        screencast.add_sink(self._offer)
        if screencast.latest is not None:
            self._offer(screencast.latest)
        self._tasks.append(asyncio.ensure_future(self._publish()))
        if self._may_act is not None:
            self._tasks.append(asyncio.ensure_future(self._apply_inputs()))

    async def stop(self) -> None:
        if self._browser.screencast is not None:
            self._browser.screencast.remove_sink(self._offer)
        await cancel_and_wait(self._tasks)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(FORGET_TIMEOUT_S):
                await self._bus.forget(self.topic)

    def _offer(self, frame: Frame) -> None:
        self._frame = frame
        self._ready.set()

    async def _publish(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            frame, self._frame = self._frame, None
            if frame is None:
                continue
            try:
                receivers = await self._bus.publish_frame(self.topic, await self._message(frame))
            except Exception as exc:  # the bus is down: the run goes on, the view resumes with it
                log.warning("live frames of %s not published: %s", self.topic, exc)
                receivers = 0
            if not receivers:
                await asyncio.sleep(UNWATCHED_INTERVAL_S)

    async def _message(self, frame: Frame) -> bytes:
        screencast = self._browser.screencast
        page = screencast.page if screencast is not None else None
        pages = self._browser.pages
        url = page.url if page is not None else ""
        return encode_frame(frame.jpeg, width=frame.width, height=frame.height, url=url,
                            title=await self._title(page, url) if page is not None else "",
                            tab=pages.index(page) if page in pages else 0, tabs=len(pages),
                            inputs=self.inputs_applied)

    async def _title(self, page: Page, url: str) -> str:
        if url not in self._titles:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                async with asyncio.timeout(2.0):
                    self._titles[url] = (await page.title())[:200]
        return self._titles.get(url, "")

    async def _apply_inputs(self) -> None:
        while True:
            try:
                async with self._bus.inputs(self.topic) as events:
                    async for raw in events:
                        await self._apply(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus went away: listen again
                log.warning("live input of %s interrupted: %s", self.topic, exc)
                await asyncio.sleep(1)

    async def _apply(self, raw: bytes) -> None:
        if self._may_act is None or not self._may_act():
            return  # the agent may be acting: a person's input only while the run is paused
        page = self._browser.active_page
        viewport = page.viewport_size or {"width": 0, "height": 0}
        try:
            event = parse_input(raw, viewport["width"], viewport["height"])
        except InputRefused as exc:
            log.info("live input refused on %s: %s", self.topic, exc)
            return
        self._on_input()
        try:
            await apply_input(page, event)
        except PlaywrightError as exc:
            log.info("live input on %s failed: %s", self.topic, exc)
        self.inputs_applied += 1


async def apply_input(page: Page, event: MouseInput | WheelInput | KeyInput | TextInput) -> None:
    if isinstance(event, MouseInput):
        if event.action == "click":
            await page.mouse.click(event.x, event.y, button=event.button, click_count=event.click_count)
        else:
            await page.mouse.move(event.x, event.y)
            if event.action == "down":
                await page.mouse.down(button=event.button, click_count=event.click_count)
            elif event.action == "up":
                await page.mouse.up(button=event.button, click_count=event.click_count)
    elif isinstance(event, WheelInput):
        await page.mouse.move(event.x, event.y)
        await page.mouse.wheel(event.dx, event.dy)
    elif isinstance(event, KeyInput):
        key = " " if event.key == "Space" else event.key
        if event.action == "press":
            await page.keyboard.press("+".join([*event.modifiers, key]))
        elif event.action == "down":
            await page.keyboard.down(key)
        else:
            await page.keyboard.up(key)
    else:
        await page.keyboard.type(event.text)
