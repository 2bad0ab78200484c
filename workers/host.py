"""Hosts runs in one process: a background event loop, one shared browser, bounded concurrency.

The embedded API submits runs here without waiting; a Celery task thread blocks on `run_blocking`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import select

from app.artifacts.store import make_store
from app.db.engine import session_scope
from app.db.models import Run
from app.live.bus import make_live_bus
from app.platform.settings import Settings
from app.runs import lifecycle
from app.runs.lifecycle import RunStatus
from workers.agent.browser import BrowserPool, BrowserUnavailable
from workers.runner import WorkerContext, execute_run, leave_queued
from workers.sessions import SessionHost

log = logging.getLogger(__name__)

HAND_BACK_TIMEOUT_SECONDS = 30.0  # for stopped runs to store what they recorded and go back to the queue


class RunHost:
    def __init__(self, settings: Settings, on_final: Callable[[str], None],
                 requeue: Callable[[str], None] | None = None, worker_queue: str | None = None,
                 forward: Callable[[str, str], None] | None = None,
                 retry_start: Callable[[str, int], None] | None = None,
                 browser_unavailable: Callable[[BrowserUnavailable], None] | None = None) -> None:
        """on_final(run_id): a run ended here (its webhook is in the outbox: wake the deliverer);
        worker_queue: this worker's own Celery queue (runs for the sessions it holds go there);
        forward(run_id, queue) sends a run to the worker holding its session; retry_start(run_id,
        failed_starts) queues a run whose start failed again (default: submitted here again);
        browser_unavailable is told when this host cannot launch its browser (a worker stops taking runs)."""
        self._settings = settings
        self._on_final = on_final
        self._retry_start = retry_start or self._resubmit
        self._browser_unavailable = browser_unavailable  # None (embedded): the next run launches again
        self._browser_broken = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wayfarer-runs", daemon=True)
        self._thread.start()
        self._slots = asyncio.Semaphore(settings.max_concurrent_runs)
        self._pool = BrowserPool(settings)
        self._pool_started: asyncio.Future[None] | None = None
        self._ctx = WorkerContext(settings, self._pool, make_store(settings),
                                  f"{socket.gethostname()}:{os.getpid()}", self._on_final,
                                  requeue=requeue or leave_queued, live=make_live_bus(settings))
        self._stopping = threading.Event()
        self._in_flight: dict[str, concurrent.futures.Future[bool]] = {}
        self._lock = threading.Lock()
        self._forward = forward or (lambda run_id, queue: None)  # embedded: every session is held here
        to_self = (lambda run_id: self._forward(run_id, worker_queue)) if worker_queue else self.submit
        self._sessions = SessionHost(settings, self._pool, self._ctx.artifacts, self._ctx.worker_id,
                                     worker_queue, to_self, self._on_final, self._ctx.live)

    def submit(self, run_id: str, failed_starts: int = 0) -> concurrent.futures.Future[bool]:
        """Schedule a run (once, however often it is submitted); returns a future of execute_run.
        failed_starts: how often starting it failed before (WAYFARER_RUN_START_TRIES)."""
        with self._lock:
            future = self._in_flight.get(run_id)
            if future is not None:
                return future
            if not self._stopping.is_set():
                future = asyncio.run_coroutine_threadsafe(self._run(run_id, failed_starts), self._loop)
                self._in_flight[run_id] = future
        if future is None:  # stopping: the loop may be gone already; the run goes back as it came
            self._retry_start(run_id, failed_starts)
            future = concurrent.futures.Future()
            future.set_result(False)
            return future
        # Outside the lock: on a future already done, the callback runs at once, here, and takes the lock.
        future.add_done_callback(lambda done: self._forget(run_id, done))
        return future

    def run_blocking(self, run_id: str, failed_starts: int = 0) -> bool:
        return self.submit(run_id, failed_starts).result()

    def open_session(self, session_id: str) -> concurrent.futures.Future[bool]:
        """Open and hold a browser session (its browser lives on this host's loop until it ends)."""
        return asyncio.run_coroutine_threadsafe(self._sessions.open(session_id), self._loop)

    def _forget(self, run_id: str, future: concurrent.futures.Future[bool] | None = None) -> None:
        """Forget the run's future (only that one, when given: the run may have been submitted again)."""
        with self._lock:
            if future is None or self._in_flight.get(run_id) is future:
                self._in_flight.pop(run_id, None)

    async def _run(self, run_id: str, failed_starts: int) -> bool:
        try:
            return await self._start(run_id, failed_starts)
        except Exception as exc:  # failed inside Wayfarer before the runner took over: never left queued
            if isinstance(exc, BrowserUnavailable) and self._browser_unavailable is not None:
                self._browser_broken.set()  # any run still reaching this worker goes back uncounted
                self._browser_unavailable(exc)
            await asyncio.to_thread(self._start_failed, run_id, failed_starts + 1, exc)
            return False

    def _start_failed(self, run_id: str, failed_starts: int, exc: Exception) -> None:
        """Back to the queue for another try (another worker, with Celery), or, after
        WAYFARER_RUN_START_TRIES, failed with the reason."""
        tries = self._settings.run_start_tries
        detail = str(exc).strip() or type(exc).__name__
        with session_scope(self._settings.database_url) as s:
            if s.scalar(select(Run.status).where(Run.id == run_id)) != RunStatus.queued.value:
                log.error("run %s: its worker failed after it started: %s", run_id, detail, exc_info=exc)
                return
            if failed_starts < tries:
                ended = False
            else:
                ended = lifecycle.fail_unstarted(s, run_id, (
                    f"The run could not be started ({failed_starts} tries, WAYFARER_RUN_START_TRIES): "
                    f"{detail}"))
        if ended:
            log.error("run %s ended failed: its start failed %d time(s): %s", run_id, failed_starts, detail)
            self._on_final(run_id)
        else:
            log.warning("run %s goes back to the queue: its start failed (try %d of %d): %s", run_id,
                        failed_starts, tries, detail)
            self._send_back(run_id, failed_starts)

    def _send_back(self, run_id: str, failed_starts: int) -> None:
        self._forget(run_id)  # so that the run, sent again, is not taken for a duplicate of this attempt
        self._retry_start(run_id, failed_starts)

    def _resubmit(self, run_id: str, failed_starts: int) -> None:
        """Embedded: the one host tries again a second later."""
        timer = threading.Timer(1.0, lambda: None if self._stopping.is_set()
                                else self.submit(run_id, failed_starts))
        timer.daemon = True
        timer.start()

    async def _start(self, run_id: str, failed_starts: int) -> bool:
        session_id = await asyncio.to_thread(self._session_of, run_id)
        if session_id is not None:
            return await self._run_in_session(run_id, session_id)
        async with self._slots:
            if self._stopping.is_set() or self._browser_broken.is_set():  # not started here: it goes back
                self._send_back(run_id, failed_starts)  # as many failed starts as it came with
                return False
            if self._pool_started is None:
                self._pool_started = asyncio.ensure_future(self._pool.start())
            try:
                await asyncio.shield(self._pool_started)
            except BrowserUnavailable:
                self._pool_started = None  # the next run launches again
                raise
            return await execute_run(self._ctx, run_id)

    def _session_of(self, run_id: str) -> str | None:
        with session_scope(self._settings.database_url) as s:
            return s.scalar(select(Run.browser_session_id).where(Run.id == run_id))

    async def _run_in_session(self, run_id: str, session_id: str) -> bool:
        """Take the session's lock BEFORE claiming, so a second run waits its turn still queued."""
        held = await self._sessions.held(session_id)
        if held is None:
            await asyncio.to_thread(self._sessions.route_elsewhere, run_id, session_id, self._forward)
            return False
        async with held.lock:
            if held.closing:
                return False  # the session's end ended this run too (sessions.end_session_runs)
            async with self._slots:
                try:
                    return await execute_run(self._ctx, run_id, held)
                finally:
                    await held.release_run()

    def stop(self, grace_seconds: float | None = None) -> None:
        """Start no more runs; let the runs in flight go on for up to grace_seconds (default
        WAYFARER_SHUTDOWN_GRACE_SECONDS), hand back those still going; then close the browser and loop."""
        with self._lock:  # a run submitted from now on is sent back: its future is never left unanswered
            if self._stopping.is_set():
                return
            self._stopping.set()
            pending = list(self._in_flight.values())
        grace = self._settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        _done, not_done = concurrent.futures.wait(pending, timeout=grace)
        if not_done:
            log.info("shutting down: handing back %d run(s) still going after %s s", len(not_done), grace)
            self._ctx.hand_back.set()
            concurrent.futures.wait(not_done, timeout=HAND_BACK_TIMEOUT_SECONDS)
        asyncio.run_coroutine_threadsafe(self._sessions.stop(), self._loop).result(timeout=60)
        asyncio.run_coroutine_threadsafe(self._pool.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
