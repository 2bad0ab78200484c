"""Chromium for the worker: one browser process per worker, one fresh BrowserContext per run.

The browser is launched lazily and relaunched when it died, so a crash costs one run, not the worker.
Each run's context records a video, saves downloads into the run's folder and collects console lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

import playwright
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Download,
    Page,
    Playwright,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from app.artifacts.names import safe_filename
from app.platform.settings import Settings
from app.platform.url_policy import UrlDenied, UrlPolicy, check_navigation, parse_policy
from workers.agent.contract import BrowserOptions
from workers.agent.recording import WebmRecorder
from workers.agent.screencast import JPEG_QUALITY, Frame, Screencast
from workers.chromium_args import launch_args

log = logging.getLogger(__name__)

MAX_CONSOLE_LINES = 2000
CLOSE_TIMEOUT_S = 20.0
CDP_CONNECT_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class RunMedia:
    recording: Path | None
    downloads: list[Path]
    console_log: str


def link_playwright_ffmpeg(browsers_dir: Path) -> Path:
    """Make `browsers_dir` hold the ffmpeg Playwright's video recorder expects, linked to a local binary.

    Playwright looks for `ffmpeg-<REV>/ffmpeg-linux` under PLAYWRIGHT_BROWSERS_PATH and cannot download
    it here; Debian's ffmpeg (or imageio-ffmpeg's) encodes the same VP8 stream.
    """
    browsers_json = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    entries = json.loads(browsers_json.read_text())["browsers"]
    revision = next(entry["revision"] for entry in entries if entry["name"] == "ffmpeg")
    target = shutil.which("ffmpeg") or _bundled_ffmpeg()
    link = browsers_dir / f"ffmpeg-{revision}" / "ffmpeg-linux"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and os.readlink(link) == target):
        tmp = link.with_name(f".ffmpeg-linux-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)  # atomic: several worker processes may share the data dir
    return browsers_dir


def _bundled_ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _launch_error(exc: Exception) -> str:
    """The first line of Playwright's error, and what the browser itself said on stderr (Playwright puts
    it under "Browser logs", one `[pid=N][err] ...` line each)."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    said = [line.split("[err]", 1)[1].strip() for line in lines if "[err]" in line]
    said = [line for line in said if line][:3]
    return f"{lines[0]} (the browser said: {'; '.join(said)})" if said else lines[0]


class BrowserUnavailable(Exception):
    """This process cannot launch its browser: it must take no runs."""


async def probe_browser(settings: Settings) -> None:
    """Launch Chromium the way runs do and close it again; BrowserUnavailable says why it cannot."""
    pool = BrowserPool(settings)
    try:
        await pool.start()
    finally:
        await pool.stop()


class BrowserPool:
    """The worker's browser, shared by all its runs."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start Playwright and launch Chromium; BrowserUnavailable when either cannot start."""
        async with self._lock:
            try:
                if self._playwright is None:
                    browsers_dir = self._settings.data_dir.resolve() / "playwright-browsers"
                    link_playwright_ffmpeg(browsers_dir)
                    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(browsers_dir)
                    self._playwright = await async_playwright().start()
                await self._ensure_browser()
            except Exception as exc:
                raise BrowserUnavailable(
                    f"Chromium could not be launched through Playwright: {_launch_error(exc)}") from exc

    async def playwright(self) -> Playwright:
        """The worker's Playwright, on which browser sessions launch their own browsers."""
        if self._playwright is None:
            await self.start()
        assert self._playwright is not None
        return self._playwright

    async def stop(self) -> None:
        async with self._lock:
            if self._browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await self._browser.close()
                self._browser = None
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await self._playwright.stop()
                self._playwright = None

    async def open_run(self, run_id: str, options: BrowserOptions, workdir: Path) -> BrowserRun:
        if self._playwright is None:
            await self.start()
        if options.browser_address:
            assert self._playwright is not None
            return await ExternalBrowserRun.connect(self._playwright, run_id, options, workdir,
                                                    self._settings)
        async with self._lock:
            browser = await self._ensure_browser()
        try:
            return await self._open_context(browser, run_id, options, workdir)
        except PlaywrightError:
            if browser.is_connected():
                raise
        async with self._lock:  # the browser died between the health check and new_context
            browser = await self._ensure_browser()
        return await self._open_context(browser, run_id, options, workdir)

    async def _open_context(self, browser: Browser, run_id: str, options: BrowserOptions,
                            workdir: Path) -> BrowserRun:
        policy = parse_policy(self._settings.url_policy)
        context = await browser.new_context(
            **context_options(self._settings, policy, options, None),  # recorded by start_screencast
            user_agent=options.user_agent,
            extra_http_headers=options.extra_http_headers,
            storage_state=options.storage_state,  # type: ignore[arg-type]
        )
        run = BrowserRun(run_id, browser, context, workdir, self._settings)
        run.configure_downloads(options)
        run.start_screencast(options.viewport_width, options.viewport_height,
                             run.workdir / "recording.webm" if self._settings.record_video else None)
        try:
            await prepare_context(context, self._settings, policy, run.log_console)
            await context.new_page()  # tracked through the context's "page" event
        except BaseException:
            await run.close()
            raise
        return run

    async def _ensure_browser(self) -> Browser:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        if self._browser is not None:
            log.warning("Chromium disconnected; launching a new browser")
        assert self._playwright is not None
        self._browser = await self._playwright.chromium.launch(
            executable_path=self._settings.resolved_chromium_path(),
            args=launch_args(self._settings.chromium_args),
            headless=self._settings.headless,
        )
        return self._browser


def context_options(settings: Settings, policy: UrlPolicy, options: BrowserOptions,
                    video_dir: Path | None) -> dict[str, Any]:
    """What every context we create shares, a run's or a browser session's (keyword arguments of
    new_context and launch_persistent_context). With `video_dir` (a browser session's tabs), Playwright's
    recorder records each tab; a run records through its screencast instead (start_screencast)."""
    return {
        "viewport": {"width": options.viewport_width, "height": options.viewport_height},
        "proxy": options.proxy, "locale": options.locale, "timezone_id": options.timezone_id,
        "accept_downloads": True,
        # default size (fits 800x800): cheap to encode; each recording is an ffmpeg of ~55 MiB PSS
        "record_video_dir": video_dir if settings.record_video and video_dir is not None else None,
        "service_workers": "block" if policy.restricts else "allow",  # their requests bypass routes
    }


async def prepare_context(context: BrowserContext, settings: Settings, policy: UrlPolicy,
                          log_line: Callable[[str, str], None]) -> None:
    """The timeouts and, when WAYFARER_URL_POLICY denies anything, the request guard of a new context."""
    context.set_default_timeout(settings.action_timeout_ms)
    context.set_default_navigation_timeout(settings.navigation_timeout_ms)
    if policy.restricts:  # routing every request costs time: only when something is denied
        await context.route("**/*", RequestGuard(policy, log_line).check)


class RequestGuard:
    """Aborts a context's page requests to hosts WAYFARER_URL_POLICY denies, resolving each host once
    per context. Routes do not see redirects, and Chromium resolves names itself (docs/deployment.md)."""

    def __init__(self, policy: UrlPolicy, log_line: Callable[[str, str], None]) -> None:
        self._policy = policy
        self._log_line = log_line  # (kind, text), e.g. the run's console log
        self._refusals: dict[str, str | None] = {}  # host -> why it is denied, None when allowed

    async def check(self, route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if host and url.startswith(("http:", "https:")):
            if host not in self._refusals:
                try:
                    await check_navigation(url, self._policy)
                    self._refusals[host] = None
                except UrlDenied as exc:
                    self._refusals[host] = str(exc)
            refusal = self._refusals[host]
            if refusal is not None:
                self._log_line("blocked", f"{url}: {refusal}")
                with contextlib.suppress(PlaywrightError):
                    await route.abort("blockedbyclient")
                return
        with contextlib.suppress(PlaywrightError):
            await route.fallback()


class BrowserRun:
    """One run's isolated browser context: its tabs, downloads, console and recording.

    With keep_context (a run in a browser session) the run starts on the context's open tabs and
    close() leaves the context, its tabs and their recording to the session.
    """

    def __init__(self, run_id: str, browser: Browser, context: BrowserContext, workdir: Path,
                 settings: Settings, keep_context: bool = False) -> None:
        self.run_id = run_id
        self.action_timeout_ms = settings.action_timeout_ms
        self.allow_local_files = settings.allow_local_files
        self.url_policy = parse_policy(settings.url_policy)
        self.navigation_timeout_ms = settings.navigation_timeout_ms
        self.settle_timeout_ms = settings.step_settle_timeout_ms
        self.download_timeout_s: float | None = None  # None: a download may take the navigation timeout
        self.download_suffix: str | None = None
        self.upload_files: dict[str, Path] = {}  # file_id -> the run's copy of an uploaded file (file_ids)
        self.context = context
        self.workdir = workdir
        self.pages: list[Page] = []
        self._active = 0
        self.crashed = False
        self.crash_reason: str | None = None
        self._console: list[str] = []
        self._downloads: list[asyncio.Task[Path | None]] = []
        self._download_started = asyncio.Event()
        self.screencast: Screencast | None = None  # the active tab's frames: recording and live view
        self.acted_at = 0.0  # time.time() when the last action on the page (or a person's takeover) ended
        self._recorder: WebmRecorder | None = None
        self._following: asyncio.Future[None] | None = None
        self._closed = False
        self._keep_context = keep_context
        self._browser = browser
        browser.on("disconnected", self._on_disconnected)
        context.on("page", self._track_page)
        if keep_context:
            for page in context.pages:
                self._track_page(page)

    @property
    def active_page(self) -> Page:
        return self.pages[self._active]

    @property
    def active_index(self) -> int:
        return self._active

    def switch_tab(self, index: int) -> Page:
        if not 0 <= index < len(self.pages):
            raise IndexError(f"there is no tab {index}; open tabs are 0..{len(self.pages) - 1}")
        self._active = index
        self._follow_active()
        return self.pages[index]

    def start_screencast(self, width: int, height: int, recording: Path | None) -> None:
        """Screencast the tab the agent works in from now on (the live view), recording it to a WebM
        at `recording` when given (RunMedia.recording)."""
        self.screencast = Screencast(self.context, width, height)
        if recording is not None:
            self._recorder = WebmRecorder(recording, width, height)
            self.screencast.add_sink(self._recorder.add)
        self._follow_active()

    def _follow_active(self) -> None:
        """Point the screencast at the active tab (a new tab, switch_tab, a closed tab), without waiting."""
        if self.screencast is None or self._closed or not self.pages:
            return
        self._following = asyncio.ensure_future(self.screencast.follow(self.active_page))

    def configure_downloads(self, options: BrowserOptions) -> None:
        self.download_timeout_s = options.download_timeout_s
        self.download_suffix = options.download_suffix

    @property
    def downloads_started(self) -> int:
        return len(self._downloads)

    async def download_after(self, count: int, timeout_s: float) -> Path | None:
        """The saved file of the first download started after `count` downloads (None if it failed).
        TimeoutError when none started within `timeout_s`; DownloadTooSlow when it did not finish in time."""
        async with asyncio.timeout(timeout_s):
            while len(self._downloads) <= count:
                self._download_started.clear()
                await self._download_started.wait()
        finish_s = self.download_timeout_s or self.navigation_timeout_ms / 1000
        try:
            async with asyncio.timeout(finish_s):
                return await asyncio.shield(self._downloads[count])
        except TimeoutError:
            raise DownloadTooSlow(f"the download started but did not finish within {finish_s:g} s"
                                  + (" (download_timeout)." if self.download_timeout_s else ".")) from None

    def _track_page(self, page: Page) -> None:
        self.pages.append(page)
        self._active = len(self.pages) - 1
        self._follow_active()
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("crash", self._on_crash)
        page.on("download", self._on_download)
        page.on("close", self._forget_page)

    def _forget_page(self, page: Page) -> None:
        if self._closed or page not in self.pages or len(self.pages) == 1:
            return  # the last tab stays, closed or not, so active_page always answers
        index = self.pages.index(page)
        self.pages.remove(page)
        if self._active >= index:
            self._active = max(0, self._active - 1)
        self._follow_active()

    def _on_page_error(self, error: Exception) -> None:
        self.log_console("pageerror", str(error))

    def _on_crash(self, _page: Page) -> None:
        self._mark_crashed("the page crashed")

    def _release_pages(self) -> None:
        """Stop listening to the kept context and its tabs (the next run of the session listens anew)."""
        self.context.remove_listener("page", self._track_page)
        for page in self.pages:
            for event, handler in (("console", self._on_console), ("pageerror", self._on_page_error),
                                   ("crash", self._on_crash), ("download", self._on_download),
                                   ("close", self._forget_page)):
                page.remove_listener(event, handler)

    def _on_console(self, message: ConsoleMessage) -> None:
        self.log_console(message.type, message.text)

    def log_console(self, kind: str, text: str) -> None:
        if len(self._console) < MAX_CONSOLE_LINES:
            self._console.append(f"[{kind}] {text}")

    def _on_download(self, download: Download) -> None:
        self._downloads.append(asyncio.ensure_future(self._save_download(download)))
        self._download_started.set()

    async def _save_download(self, download: Download) -> Path | None:
        folder = self.workdir / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        path = _free_path(folder, with_download_suffix(download.suggested_filename, self.download_suffix))
        try:
            await download.save_as(path)
        except PlaywrightError as exc:
            log.warning("download %s of run %s failed: %s", download.url, self.run_id, exc)
            return None
        return path

    def _on_disconnected(self, _browser: Browser) -> None:
        self._mark_crashed("the browser process exited")

    def _mark_crashed(self, reason: str) -> None:
        if not self._closed and not self.crashed:
            self.crashed = True
            self.crash_reason = reason

    async def close(self) -> RunMedia:
        """Release the context (or, with keep_context, just this run's hold on it); never raises."""
        if self._closed:
            return RunMedia(None, [], "")
        self._closed = True
        self._browser.remove_listener("disconnected", self._on_disconnected)
        downloads: list[Path] = []
        if self._downloads:
            done, pending = await asyncio.wait(self._downloads,
                                               timeout=self.download_timeout_s or CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
            downloads = [path for task in done if not task.cancelled() and task.exception() is None
                         and (path := task.result()) is not None]
        if self._recorder is not None and not self._recorder.started and not self.crashed:
            await self._record_still(self._recorder)
        if self.screencast is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.screencast.stop()
        if self._keep_context:
            self._release_pages()
            return RunMedia(None, sorted(downloads), "\n".join(self._console))
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.context.close()
        except Exception as exc:  # a dead browser cannot close its context; nothing is left to release
            log.warning("closing the context of run %s failed: %s", self.run_id, exc)
        recording = await self._recorder.close() if self._recorder is not None else None
        return RunMedia(recording, sorted(downloads), "\n".join(self._console))

    async def _record_still(self, recorder: WebmRecorder) -> None:
        """A run that ended before the screencast's first frame came (short runs on a loaded machine)
        still gets a recording: the page as it is at the end."""
        try:
            page = self.active_page
            jpeg = await page.screenshot(type="jpeg", quality=JPEG_QUALITY, timeout=CLOSE_TIMEOUT_S * 1000)
        except Exception as exc:  # the page is gone: no recording, as with no frame at all
            log.debug("no still for the recording of run %s: %s", self.run_id, exc)
            return
        viewport = page.viewport_size or {"width": 0, "height": 0}
        recorder.add(Frame(jpeg, time.monotonic(), viewport["width"], viewport["height"]))


class DownloadTooSlow(Exception):
    """A download started but did not finish within the run's download timeout."""


class ExternalBrowserRun(BrowserRun):
    """A run on a Chromium the user runs (browser_address): it drives the browser's first context and
    its open tab (a new tab if none is open), and when it ends it only disconnects: the user's
    browser, context and tabs stay as they are."""

    @classmethod
    async def connect(cls, playwright: Playwright, run_id: str, options: BrowserOptions, workdir: Path,
                      settings: Settings) -> ExternalBrowserRun:
        address = options.browser_address or ""
        try:
            browser = await playwright.chromium.connect_over_cdp(
                address, headers=options.cdp_connect_headers, timeout=CDP_CONNECT_TIMEOUT_MS)
        except PlaywrightError as exc:  # the first line only: the call log may repeat the handshake
            raise RuntimeError(f"could not connect to browser_address {address}: "
                               f"{str(exc).splitlines()[0]}") from None
        if not browser.contexts:
            await browser.close()
            raise RuntimeError(f"the browser at browser_address {address} has no browser context to use")
        run = cls(run_id, browser, browser.contexts[0], workdir, settings, keep_context=True)
        run.configure_downloads(options)
        try:
            if not run.pages:
                await run.context.new_page()  # tracked through the context's "page" event
        except BaseException:
            await run.close()
            raise
        return run

    async def close(self) -> RunMedia:
        media = await super().close()
        with contextlib.suppress(Exception):  # connected over CDP, close() disconnects only
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._browser.close()
        return media


def with_download_suffix(name: str, suffix: str | None) -> str:
    """Skyvern's download_suffix: the stored name ends with it ("report.csv" + "march" ->
    "report_march.csv"; + "march.csv" -> "report_march.csv")."""
    if not suffix or name.endswith(suffix):
        return name
    path = PurePath(name)
    return f"{path.stem}_{suffix}" if PurePath(suffix).suffix else f"{path.stem}_{suffix}{path.suffix}"


def _free_path(folder: Path, suggested: str) -> Path:
    """`folder/<suggested>` made safe, numbered like 'name (1).ext' when that name is taken."""
    path = folder / safe_filename(suggested, "download")
    stem, suffix = path.stem, path.suffix
    counter = 1
    while path.exists():
        path = folder / f"{stem} ({counter}){suffix}"
        counter += 1
    path.touch()  # reserve the name before the (async) save
    return path
