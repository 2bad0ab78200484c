"""Persistent browser sessions held by this worker: each its own Chromium, watched every second.

A session's browser is not the shared pool browser: a DevTools endpoint on that one would expose
every other run's context to whoever connects. Chromium writes the port of `--remote-debugging-port=0`
to `<user data dir>/DevToolsActivePort`; the API relays clients to it (app/api/browser_sessions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Video
from sqlalchemy import select

from app.artifacts.store import ArtifactStore
from app.artifacts.writer import Owner, save
from app.db.engine import session_scope
from app.db.models import BrowserSession, Run, utcnow
from app.live.bus import LOCAL_BUS, LiveBus
from app.platform.proxies import proxy_browser_options
from app.platform.settings import Settings
from app.platform.url_policy import parse_policy
from app.profiles.service import load_storage_state, save_profile_from_state
from app.runs import lifecycle as run_lifecycle
from app.runs.lifecycle import RunStatus
from app.sessions import lifecycle
from app.sessions.lifecycle import SessionStatus
from workers.agent.browser import BrowserPool, BrowserRun, context_options, prepare_context
from workers.agent.contract import BrowserOptions
from workers.agent.screencast import Screencast
from workers.chromium_args import launch_args
from workers.live import LivePublisher

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0
DEVTOOLS_WAIT_SECONDS = 10.0
RELEASE_WAIT_SECONDS = 15.0  # how long a closing session waits for its current run to stop
SHUTDOWN_REASON = "The worker holding this browser session shut down."
LOCAL_HOST = "127.0.0.1"
AUTO_HOST = "auto"


@dataclass
class HeldSession:
    id: str
    organization_id: str
    context: BrowserContext
    user_data_dir: Path
    settings: Settings
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one run at a time uses the session
    closing: bool = False
    videos: list[Video] = field(default_factory=list)
    watchdog: asyncio.Future[None] | None = None
    exposed: asyncio.Server | None = None  # the DevTools port on WAYFARER_SESSION_CDP_HOST, if not local
    screen: SessionScreen | None = None
    live: LivePublisher | None = None

    def track_video(self, page: Page) -> None:
        if page.video is not None:
            self.videos.append(page.video)

    async def open_run(self, run: Run, options: BrowserOptions, workdir: Path) -> BrowserRun:
        """A BrowserRun over the session's context that leaves the context open when the run ends.
        Of the run's browser options only the download ones apply: the context already exists."""
        if self.closing or self.context.browser is None:
            raise RuntimeError(f"the browser session {self.id} ended before the run could use it")
        browser_run = BrowserRun(run.id, self.context.browser, self.context, workdir, self.settings,
                                 keep_context=True)
        browser_run.configure_downloads(options)
        return browser_run

    async def release_run(self) -> None:
        await asyncio.to_thread(_set_runnable, self.settings, self.id, None)


class SessionScreen:
    """What a session's live view shows: its newest open tab (a run in the session has a view of its own,
    following the tab the agent works in)."""

    def __init__(self, context: BrowserContext, width: int, height: int) -> None:
        self.screencast = Screencast(context, width, height)
        self.pages: list[Page] = []
        self._following: asyncio.Future[None] | None = None
        context.on("page", self._opened)
        for page in context.pages:
            self._opened(page)

    @property
    def active_page(self) -> Page:
        return self.pages[-1]

    def _opened(self, page: Page) -> None:
        self.pages.append(page)
        page.on("close", self._closed)
        self._follow()

    def _closed(self, page: Page) -> None:
        if page in self.pages and len(self.pages) > 1:
            self.pages.remove(page)
            self._follow()

    def _follow(self) -> None:
        self._following = asyncio.ensure_future(self.screencast.follow(self.active_page))


class SessionHost:
    """Opens, watches and ends the browser sessions of one RunHost, on its event loop."""

    def __init__(self, settings: Settings, pool: BrowserPool, artifacts: ArtifactStore, worker_id: str,
                 worker_queue: str | None, dispatch_waiting: Callable[[str], object],
                 on_final: Callable[[str], None], live: LiveBus = LOCAL_BUS) -> None:
        self._settings = settings
        self._live = live
        self._pool = pool
        self._artifacts = artifacts
        self._worker_id = worker_id
        self._worker_queue = worker_queue
        self._dispatch_waiting = dispatch_waiting  # sends a run queued for a session to this host
        self._on_final = on_final
        self._held: dict[str, HeldSession] = {}
        self._opening: dict[str, asyncio.Future[HeldSession | None]] = {}

    async def held(self, session_id: str) -> HeldSession | None:
        """The session if this host holds it (waiting for an opening in progress)."""
        if session_id in self._opening:
            return await asyncio.shield(self._opening[session_id])
        return self._held.get(session_id)

    async def open(self, session_id: str) -> bool:
        """Open the session's browser and hold it; False when it is not `created` (taken or ended)."""
        if session_id in self._held or session_id in self._opening:
            return await self.held(session_id) is not None
        opening: asyncio.Future[HeldSession | None] = asyncio.get_running_loop().create_future()
        self._opening[session_id] = opening
        held: HeldSession | None = None
        try:
            held = await self._open(session_id)
        finally:
            opening.set_result(held)
            del self._opening[session_id]
        if held is None:
            return False
        for run_id in await asyncio.to_thread(_queued_runs, self._settings, session_id):
            self._dispatch_waiting(run_id)
        return True

    async def _open(self, session_id: str) -> HeldSession | None:
        row = await asyncio.to_thread(_load, self._settings, session_id)
        if row is None or row.status != SessionStatus.created:
            return None
        user_data_dir = Path(tempfile.mkdtemp(prefix=f"wayfarer-{session_id}-"))
        policy = parse_policy(self._settings.url_policy)
        try:
            options = BrowserOptions(**proxy_browser_options(self._settings, (row.options or {}).get(
                "proxy_location")))
            profile_state = await asyncio.to_thread(_profile_state, self._settings, row)
            playwright = await self._pool.playwright()
            context = await playwright.chromium.launch_persistent_context(
                user_data_dir / "profile", executable_path=self._settings.resolved_chromium_path(),
                args=[*launch_args(self._settings.chromium_args), "--remote-debugging-port=0"],
                headless=self._settings.headless,
                **context_options(self._settings, policy, options, user_data_dir / "video"))
        except Exception as exc:
            shutil.rmtree(user_data_dir, ignore_errors=True)
            log.exception("browser session %s could not start", session_id)
            await asyncio.to_thread(_end, self._settings, session_id, SessionStatus.failed,
                                    f"The session's browser could not start: {exc}")
            return None
        held = HeldSession(session_id, row.organization_id, context, user_data_dir, self._settings)
        context.on("page", held.track_video)
        for page in context.pages:
            held.track_video(page)
        try:
            # for runs and CDP clients alike: the browser is on the worker's network
            await prepare_context(context, self._settings, policy, partial(_log_blocked, session_id))
            if profile_state is not None:
                await context.set_storage_state(profile_state)  # type: ignore[arg-type]
            cdp_url, held.exposed = await _expose(await _devtools_url(user_data_dir / "profile"),
                                                  self._settings.session_cdp_host)
            page = context.pages[0] if context.pages else await context.new_page()
            viewport = BrowserOptions()
            held.screen = SessionScreen(context, viewport.viewport_width, viewport.viewport_height)
            held.live = LivePublisher(self._live, f"session:{session_id}", held.screen)
            held.live.start()
            if row.url:
                with contextlib.suppress(Exception):  # a start page that fails to load leaves the tab open
                    await page.goto(row.url)
            started = await asyncio.to_thread(_start, self._settings, session_id, self._worker_id,
                                              self._worker_queue, cdp_url)
        except BaseException:
            await self._release(held, store_media=False)
            raise
        if not started:  # closed while opening, or another worker took it
            await self._release(held, store_media=False)
            return None
        self._held[session_id] = held
        held.watchdog = asyncio.ensure_future(self._watch(held))
        log.info("browser session %s opened on %s (%s)", session_id, self._worker_id, cdp_url)
        return held

    async def _watch(self, held: HeldSession) -> None:
        """Heartbeat the session; release it once it ended (closed, failed) or timed out."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                state = await asyncio.to_thread(_heartbeat, self._settings, held.id, self._worker_id)
            except Exception:
                log.exception("heartbeat of browser session %s failed; will retry", held.id)
                continue
            if state is None or state[0] != SessionStatus.running:
                break
            if state[1] is not None and utcnow() >= state[1]:
                await self._end(held, SessionStatus.timeout, None, RunStatus.failed,
                                f"The browser session {held.id} timed out before this run finished.")
                break
            if not (held.context.browser and held.context.browser.is_connected()):
                reason = "The session's browser exited."
                await self._end(held, SessionStatus.failed, reason, RunStatus.failed,
                                f"The browser of session {held.id} exited before this run finished.")
                break
            if self._worker_queue is None:
                # Embedded, maybe as one of several `serve --workers` processes: a run for this session
                # that another process accepted waits queued until its holder picks it up (a host runs a
                # run once however often it is handed one).
                for run_id in await asyncio.to_thread(_queued_runs, self._settings, held.id):
                    self._dispatch_waiting(run_id)
        await self._release(held)

    async def _end(self, held: HeldSession, status: SessionStatus, reason: str | None,
                   run_status: RunStatus, run_reason: str) -> None:
        ended = await asyncio.to_thread(_end, self._settings, held.id, status, reason, run_status, run_reason)
        for run_id in ended:
            self._on_final(run_id)

    async def _release(self, held: HeldSession, store_media: bool = True) -> None:
        """Wait (bounded) for the session's current run to stop, save its browser profile if asked,
        then close its browser and store its recordings as session artifacts."""
        held.closing = True
        self._held.pop(held.id, None)
        try:
            async with asyncio.timeout(RELEASE_WAIT_SECONDS):
                await held.lock.acquire()
        except TimeoutError:
            log.warning("browser session %s: its run did not stop in time; closing under it", held.id)
        else:
            held.lock.release()  # runs still waiting see `closing` and leave the session alone
        if store_media:
            await self._save_profile(held)
        if held.exposed is not None:
            held.exposed.close()
        if held.live is not None:
            await held.live.stop()
        if held.screen is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await held.screen.screencast.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await held.context.close()
        if store_media:
            for video in held.videos:
                with contextlib.suppress(Exception):
                    path = Path(await video.path())
                    if path.is_file() and path.stat().st_size > 0:
                        await asyncio.to_thread(self._store_file, held, "recording", path, "video/webm")
        shutil.rmtree(held.user_data_dir, ignore_errors=True)
        log.info("browser session %s released", held.id)

    async def _save_profile(self, held: HeldSession) -> None:
        """generate_browser_profile (read now: PATCH may change it while the session lives)."""
        try:
            if not await asyncio.to_thread(_wants_profile, self._settings, held.id):
                return
            async with asyncio.timeout(10):
                state = await held.context.storage_state()
            profile_id = await asyncio.to_thread(_save_state, self._settings, held, dict(state))
            log.info("browser session %s saved as browser profile %s", held.id, profile_id)
        except Exception:  # the session's end does not depend on it
            log.exception("browser session %s: its browser profile could not be saved", held.id)

    def _store_file(self, held: HeldSession, artifact_type: str, path: Path, content_type: str) -> None:
        with session_scope(self._settings.database_url) as db:
            save(db, self._artifacts, Owner(held.organization_id, browser_session_id=held.id), artifact_type,
                 path, content_type)

    async def stop(self) -> None:
        """Worker shutdown: end every held session (failed, saying so) and release its browser."""
        for held in list(self._held.values()):
            if held.watchdog is not None:
                held.watchdog.cancel()
            await self._end(held, SessionStatus.failed, SHUTDOWN_REASON, RunStatus.failed,
                            f"The worker holding browser session {held.id} shut down before this run "
                            "finished; submit it again in a new session.")
            await self._release(held)

    def route_elsewhere(self, run_id: str, session_id: str, forward: Callable[[str, str], None]) -> None:
        """A run for a session this host does not hold: forward it to the holder's queue, leave it queued
        until the session opens, or end it when the session has ended."""
        with session_scope(self._settings.database_url) as s:
            row = s.get(BrowserSession, session_id)
            if row is not None and row.status == SessionStatus.running:
                if row.worker_queue and row.worker_queue != self._worker_queue:
                    forward(run_id, row.worker_queue)
                return
            if row is not None and row.status == SessionStatus.created:
                return  # its holder dispatches the session's queued runs once it opened
            status = row.status if row is not None else "deleted"
            ended = run_lifecycle.finish(s, run_id, RunStatus.failed, failure_reason=(
                f"The browser session {session_id} ended (status {status}) before this run started."))
        if ended:
            self._on_final(run_id)


async def _devtools_url(profile_dir: Path) -> str:
    """The browser's own DevTools WebSocket URL, from the file Chromium writes once it listens."""
    marker = profile_dir / "DevToolsActivePort"
    async with asyncio.timeout(DEVTOOLS_WAIT_SECONDS):
        while True:
            lines = marker.read_text().split() if marker.exists() else []
            if len(lines) >= 2:
                return f"ws://{LOCAL_HOST}:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)


async def _expose(local_url: str, host: str) -> tuple[str, asyncio.Server | None]:
    """Chromium listens on 127.0.0.1 only; for an API on another machine, forward a port on `host`
    (the worker's private address; `auto`: the address its host name resolves to, as in a container)
    to it. Returns the URL to advertise and the forwarding server."""
    if host == LOCAL_HOST:
        return local_url, None
    if host == AUTO_HOST:
        host = await asyncio.to_thread(socket.gethostbyname, socket.gethostname())
    local_port = int(local_url.split(":")[2].split("/", 1)[0])

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(LOCAL_HOST, local_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, host, 0)
    port = server.sockets[0].getsockname()[1]
    return local_url.replace(f"{LOCAL_HOST}:{local_port}", f"{host}:{port}", 1), server


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def _log_blocked(session_id: str, kind: str, text: str) -> None:
    log.info("browser session %s: %s %s", session_id, kind, text)


def _profile_state(settings: Settings, row: BrowserSession) -> dict[str, Any] | None:
    """The cookies and local storage of the profile the session starts from (LookupError: gone)."""
    if not row.browser_profile_id:
        return None
    with session_scope(settings.database_url) as s:
        return load_storage_state(settings, s, row.organization_id, row.browser_profile_id)


def _wants_profile(settings: Settings, session_id: str) -> bool:
    with session_scope(settings.database_url) as s:
        return bool(s.scalar(select(BrowserSession.generate_browser_profile)
                             .where(BrowserSession.id == session_id)))


def _save_state(settings: Settings, held: HeldSession, state: dict[str, Any]) -> str:
    with session_scope(settings.database_url) as s:
        return save_profile_from_state(settings, s, held.organization_id, name=f"Browser session {held.id}",
                                       storage_state=state, browser_session_id=held.id)


def _load(settings: Settings, session_id: str) -> BrowserSession | None:
    with session_scope(settings.database_url) as s:
        return s.get(BrowserSession, session_id)


def _queued_runs(settings: Settings, session_id: str) -> list[str]:
    with session_scope(settings.database_url) as s:
        return list(s.scalars(select(Run.id).where(Run.browser_session_id == session_id,
                                                   Run.status == RunStatus.queued.value)
                              .order_by(Run.created_at)).all())


def _start(settings: Settings, session_id: str, worker_id: str, worker_queue: str | None,
           cdp_url: str) -> bool:
    with session_scope(settings.database_url) as s:
        return lifecycle.start(s, session_id, worker_id=worker_id, worker_queue=worker_queue, cdp_url=cdp_url)


def _heartbeat(settings: Settings, session_id: str, worker_id: str) -> tuple[str, datetime | None] | None:
    with session_scope(settings.database_url) as s:
        return lifecycle.heartbeat(s, session_id, worker_id)


def _end(settings: Settings, session_id: str, status: SessionStatus, reason: str | None,
         run_status: RunStatus = RunStatus.failed, run_reason: str = "") -> list[str]:
    with session_scope(settings.database_url) as s:
        if not lifecycle.end(s, session_id, status, reason):
            return []
        return lifecycle.end_session_runs(s, session_id, run_status, run_reason)


def _set_runnable(settings: Settings, session_id: str, run_id: str | None) -> None:
    with session_scope(settings.database_url) as s:
        lifecycle.set_runnable(s, session_id, s.get(Run, run_id) if run_id else None)
