"""Waiting for what an action set off (a navigation, a new tab, fetch/XHR answers, DOM updates), so the
next capture sees the page the action produced; an action that set nothing off costs one frame."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from playwright.async_api import Download, Page, Request
from playwright.async_api import Error as PlaywrightError

from workers.agent.browser import BrowserRun

DOM_QUIET_MS = 150

# Resolves after the next frame when the DOM did not change meanwhile (an action whose effect has
# already landed costs one frame); while it keeps changing, once it has been quiet for `quiet` ms, or
# after `cap` ms. The timeout stands in for a frame in a hidden tab, where rAF does not fire.
_DOM_SETTLED_JS = """([quiet, cap]) => new Promise(resolve => {
  const started = performance.now();
  let last = 0;
  const observer = new MutationObserver(() => { last = performance.now(); });
  observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  const check = () => {
    const now = performance.now();
    if (!last || now - last >= quiet || now - started >= cap) { observer.disconnect(); resolve(); }
    else setTimeout(check, Math.min(quiet - (now - last), cap - (now - started)));
  };
  let framed = false;
  const afterFrame = () => { if (!framed) { framed = true; setTimeout(check, 0); } };
  requestAnimationFrame(afterFrame);
  setTimeout(afterFrame, 100);
})"""


class NavigationWatch:
    """What an action set off on its page: a main-frame navigation request (settling waits for the new
    document, unless the answer was a download: then no document comes) and fetch/XHR requests still
    unanswered (settling waits for their answers)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.url_before = page.url
        self.requested = False
        self.in_flight: set[Request] = set()
        self._answered = asyncio.Event()
        self._answered.set()
        self._downloaded = asyncio.Event()
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_request_done)
        page.on("requestfailed", self._on_request_done)
        page.on("download", self._on_download)

    def _on_request(self, request: Request) -> None:
        with contextlib.suppress(PlaywrightError):
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                self.requested = True
            elif request.resource_type in ("fetch", "xhr"):
                self.in_flight.add(request)
                self._answered.clear()

    def _on_request_done(self, request: Request) -> None:
        self.in_flight.discard(request)
        if not self.in_flight:
            self._answered.set()

    def _on_download(self, _download: Download) -> None:
        self._downloaded.set()

    async def answered(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._answered.wait()

    async def committed(self, timeout_ms: float) -> None:
        """Until the requested navigation commits a new URL or turns out to be a download (at most
        `timeout_ms`)."""
        if self._downloaded.is_set():
            return
        navigated = asyncio.ensure_future(self.page.wait_for_url(
            lambda current: current != self.url_before, timeout=timeout_ms, wait_until="commit"))
        downloaded = asyncio.ensure_future(self._downloaded.wait())
        await asyncio.wait((navigated, downloaded), return_when=asyncio.FIRST_COMPLETED)
        for waiter in (navigated, downloaded):
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, PlaywrightError):
                await waiter

    def __enter__(self) -> NavigationWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.page.remove_listener("request", self._on_request)
        self.page.remove_listener("requestfinished", self._on_request_done)
        self.page.remove_listener("requestfailed", self._on_request_done)
        self.page.remove_listener("download", self._on_download)


async def settle(run: BrowserRun, watch: NavigationWatch, cap_ms: int) -> None:
    """Wait (at most cap_ms) for what the action set off: a navigation (its document's load event), a
    tab it opened (its load event), fetch/XHR requests it sent, then DOM updates still under way.
    An action that set nothing off costs one frame."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap_ms / 1000

    def left_ms() -> float:
        return max(1.0, (deadline - loop.time()) * 1000)

    settled: Page | None = None
    while run.active_page is not settled and loop.time() < deadline:
        page = settled = run.active_page
        with contextlib.suppress(PlaywrightError):
            if page is watch.page and watch.requested and page.url == watch.url_before:
                await watch.committed(left_ms())
            if page is not watch.page or watch.requested:
                await page.wait_for_load_state("load", timeout=left_ms())
        await _dom_settled(page, watch if page is watch.page else None, left_ms)


async def _dom_settled(page: Page, watch: NavigationWatch | None, left_ms: Callable[[], float]) -> None:
    """Until the page's requests are answered and its DOM has settled, again while answers bring more
    requests; a second round when the document was replaced while we watched it."""
    for _ in range(2):
        try:
            while True:
                if watch is not None:
                    await watch.answered(left_ms() / 1000)
                await page.evaluate(_DOM_SETTLED_JS, [DOM_QUIET_MS, int(left_ms())])
                if watch is None or not watch.in_flight or left_ms() <= 1.0:
                    return
        except PlaywrightError:
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state("load", timeout=left_ms())
