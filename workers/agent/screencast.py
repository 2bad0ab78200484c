"""One run's CDP screencast: JPEG frames of the tab the agent works in, for the recording and the live view.

Chromium sends a frame only when the page's pixels change, so an idle page costs nothing, and it sends
the next one only after the previous was acknowledged: every frame is acknowledged at once, before
anyone looks at it. Sinks are called on the event loop and must not block (the recorder queues the frame
for its encoder thread, the live publisher keeps only the newest). `follow()` moves the screencast to
another tab (a new tab, switch_tab, a closed tab); `latest` is the newest frame, so a view that opens
on an idle page still has something to show.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

JPEG_QUALITY = 60  # as the step screenshots (page_state.SCREENSHOT_QUALITY): a frame serves as one
START_ATTEMPTS = 50  # a tab in its first navigation refuses the start; try again until it can
START_RETRY_S = 0.1


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    at: float  # time.monotonic() when it arrived
    width: int  # CSS pixels of the page's viewport
    height: int
    swapped_at: float = 0.0  # time.time() when Chromium drew it (0: unknown)


FrameSink = Callable[[Frame], None]


class Screencast:
    """Screencasts one tab of `context` at a time, at most `width` x `height` pixels."""

    def __init__(self, context: BrowserContext, width: int, height: int,
                 quality: int = JPEG_QUALITY) -> None:
        self._context = context
        self._params = {"format": "jpeg", "quality": quality, "maxWidth": width, "maxHeight": height,
                        "everyNthFrame": 1}
        self._sinks: list[FrameSink] = []
        self._page: Page | None = None
        self._wanted: Page | None = None  # the tab the newest follow() asked for
        self._session: CDPSession | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Future[Any]] = set()
        self.latest: Frame | None = None
        self.frames = 0
        self._arrived = asyncio.Event()  # set by every frame

    @property
    def page(self) -> Page | None:
        return self._page

    async def frame_swapped_since(self, since: float, timeout_s: float) -> Frame | None:
        """The newest frame as soon as it is one Chromium drew at or after `since` (time.time()), waiting
        at most `timeout_s` for such a frame; then the newest there is (None: none yet)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._arrived.clear()
            frame, left = self.latest, deadline - time.monotonic()
            if (frame is not None and frame.swapped_at >= since) or left <= 0:
                return frame
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._arrived.wait()

    def add_sink(self, sink: FrameSink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: FrameSink) -> None:
        with contextlib.suppress(ValueError):
            self._sinks.remove(sink)

    async def follow(self, page: Page | None) -> None:
        """Screencast `page` from now on (None: nothing); a no-op when it already does."""
        self._wanted = page
        async with self._lock:
            if page is self._page and (page is None or self._session is not None):
                return
            old, self._session, self._page = self._session, None, page
            self.latest = None  # until the new tab's first frame
            if old is not None:
                await _stop(old)
            if page is None:
                return
            for _ in range(START_ATTEMPTS):
                if page.is_closed() or self._wanted is not page:
                    return  # the tab closed, or a newer follow() wants another one
                if await self._start(page):
                    return
                await asyncio.sleep(START_RETRY_S)
            log.warning("the screencast of %s did not start", page.url)

    async def _start(self, page: Page) -> bool:
        try:
            session = await self._context.new_cdp_session(page)
            session.on("Page.screencastFrame", partial(self._on_frame, session))
            self._session = session  # before the start: its first frame may come before the answer
            await session.send("Page.startScreencast", self._params)
            return True
        except PlaywrightError as exc:  # during a tab's first navigation: "Not attached to an active page"
            log.debug("screencast could not start yet: %s", exc)
            self._session = None
            return False

    async def stop(self) -> None:
        await self.follow(None)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _on_frame(self, session: CDPSession, params: dict[str, Any]) -> None:
        ack = asyncio.ensure_future(session.send("Page.screencastFrameAck",
                                                 {"sessionId": params["sessionId"]}))
        self._pending.add(ack)
        ack.add_done_callback(_forget(self._pending))
        if session is not self._session:
            return  # a late frame of the tab it just left
        metadata = params.get("metadata") or {}
        frame = Frame(base64.b64decode(params["data"]), time.monotonic(),
                      int(metadata.get("deviceWidth") or 0), int(metadata.get("deviceHeight") or 0),
                      float(metadata.get("timestamp") or 0.0))
        self.latest = frame
        self.frames += 1
        self._arrived.set()
        for sink in list(self._sinks):
            try:
                sink(frame)
            except Exception:  # one broken viewer or encoder must not stop the others
                log.exception("screencast sink failed")


def _forget(pending: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        pending.discard(future)
        if not future.cancelled():
            future.exception()  # a closed tab fails its last acks; nothing to do about it
    return done


async def _stop(session: CDPSession) -> None:
    with contextlib.suppress(PlaywrightError):
        await session.send("Page.stopScreencast")
    with contextlib.suppress(PlaywrightError):
        await session.detach()
