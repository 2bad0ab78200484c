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
from workers.agent.browser import BrowserPool
from workers.runner import WorkerContext, execute_run, leave_queued
from workers.sessions import SessionHost

log = logging.getLogger(__name__)

HAND_BACK_TIMEOUT_SECONDS = 30.0  # for stopped runs to store what they recorded and go back to the queue


class RunHost:
    def __init__(self, settings: Settings, on_final: Callable[[str], None],
                 requeue: Callable[[str], None] | None = None, worker_queue: str | None = None,
                 forward: Callable[[str, str], None] | None = None) -> None:
        """on_final(run_id): a run ended here (its webhook is in the outbox: wake the deliverer);
        worker_queue: this worker's own Celery queue (runs for the sessions it holds go there);
        forward(run_id, queue) sends a run to the worker holding its session."""
        self._settings = settings
        self._on_final = on_final
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

    def submit(self, run_id: str) -> concurrent.futures.Future[bool]:
        """Schedule a run (once, however often it is submitted); returns a future of execute_run."""
        with self._lock:
            future = self._in_flight.get(run_id)
            if future is None:
                future = asyncio.run_coroutine_threadsafe(self._run(run_id), self._loop)
                self._in_flight[run_id] = future
                future.add_done_callback(lambda _: self._forget(run_id))
            return future

    def run_blocking(self, run_id: str) -> bool:
        return self.submit(run_id).result()

    def open_session(self, session_id: str) -> concurrent.futures.Future[bool]:
        """Open and hold a browser session (its browser lives on this host's loop until it ends)."""
        return asyncio.run_coroutine_threadsafe(self._sessions.open(session_id), self._loop)

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._in_flight.pop(run_id, None)

    async def _run(self, run_id: str) -> bool:
        session_id = await asyncio.to_thread(self._session_of, run_id)
        if session_id is not None:
            return await self._run_in_session(run_id, session_id)
        async with self._slots:
            if self._stopping.is_set():  # shutting down: this run was not started, it goes back
                self._ctx.requeue(run_id)
                return False
            if self._pool_started is None:
                self._pool_started = asyncio.ensure_future(self._pool.start())
            await asyncio.shield(self._pool_started)
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
        if self._stopping.is_set():
            return
        self._stopping.set()
        grace = self._settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        with self._lock:
            pending = list(self._in_flight.values())
        _done, not_done = concurrent.futures.wait(pending, timeout=grace)
        if not_done:
            log.info("shutting down: handing back %d run(s) still going after %s s", len(not_done), grace)
            self._ctx.hand_back.set()
            concurrent.futures.wait(not_done, timeout=HAND_BACK_TIMEOUT_SECONDS)
        asyncio.run_coroutine_threadsafe(self._sessions.stop(), self._loop).result(timeout=60)
        asyncio.run_coroutine_threadsafe(self._pool.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
