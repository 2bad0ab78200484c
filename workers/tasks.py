"""The Celery tasks (execute a run, open a browser session; each idempotent) and the worker entry point
(with its sweeper, webhook deliverer and workflow scheduler threads)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import uuid
from typing import Any

from celery import Celery
from celery.signals import worker_shutting_down
from kombu.exceptions import OperationalError

from app.dispatch import CeleryDispatcher
from app.platform.settings import Settings
from app.webhooks.deliverer import Deliverer
from app.workflows.scheduler import Scheduler
from workers.agent.browser import BrowserUnavailable, probe_browser
from workers.celery_app import (
    EXECUTE_RUN,
    OPEN_SESSION,
    RUNS_QUEUE,
    WORKER_QUEUE_PREFIX,
    make_celery,
)
from workers.host import RunHost
from workers.sweeper import start_sweeper

log = logging.getLogger(__name__)


def register_tasks(app: Celery, settings: Settings, deliverer: Deliverer,
                   worker_queue: str | None = None) -> None:
    """deliverer: this worker's webhook deliverer, woken when a run ends here; worker_queue: this
    worker's own queue, where runs for the browser sessions it holds are sent."""
    host: RunHost | None = None
    lock = threading.Lock()
    stopping = threading.Event()

    def get_host() -> RunHost:
        nonlocal host
        with lock:
            if host is None:
                host = RunHost(settings, on_final=lambda _run_id: deliverer.wake(), requeue=requeue,
                               worker_queue=worker_queue,
                               forward=lambda run_id, queue: app.send_task(EXECUTE_RUN, args=[run_id],
                                                                           queue=queue),
                               retry_start=requeue, browser_unavailable=stop_taking_runs)
            return host

    def requeue(run_id: str, failed_starts: int = 0) -> None:
        try:
            app.send_task(EXECUTE_RUN, args=[run_id], kwargs={"failed_starts": failed_starts}, retry=False)
        except (OperationalError, OSError) as exc:
            log.warning("run %s is queued again, but its message could not be sent (%s); the sweeper "
                        "dispatches it after WAYFARER_REQUEUE_AFTER_SECONDS", run_id, exc)

    def stop_taking_runs(exc: BrowserUnavailable) -> None:
        """A worker without a browser takes no runs: a warm shutdown (its run goes back to the queue, a
        supervisor restarts it, and its start-up check keeps it from consuming until Chromium launches)."""
        if not stopping.is_set():
            stopping.set()
            log.error("this worker stops taking runs: %s", exc)
            os.kill(os.getpid(), signal.SIGTERM)

    @worker_shutting_down.connect(weak=False)
    def hand_back_on_shutdown(**_: Any) -> None:
        """Warm shutdown (SIGTERM): Celery stops consuming and waits for the running tasks; each returns
        once its run finished within the grace period or was handed back. Called in the signal handler,
        so the waiting happens in a thread (not a daemon: the browser closes before the process exits).
        Then the deliverer lets the webhooks it is sending finish (the runs that ended meanwhile too)."""
        with lock:
            stopping = host

        def shut_down() -> None:
            if stopping is not None:
                stopping.stop()
            deliverer.stop()

        threading.Thread(target=shut_down, name="wayfarer-shutdown").start()

    @app.task(name=EXECUTE_RUN)
    def execute_run(run_id: str, failed_starts: int = 0) -> None:
        get_host().run_blocking(run_id, failed_starts)  # the claim (compare-and-set): redelivery is harmless

    @app.task(name=OPEN_SESSION)
    def open_session(session_id: str) -> None:
        get_host().open_session(session_id).result()  # then held on the host's loop until it ends


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run a Celery worker (threads pool: runs share this process's browser) until it is stopped; first
    launch Chromium once, so a worker that cannot never takes a run (BrowserUnavailable)."""
    asyncio.run(probe_browser(settings))
    app = make_celery(settings)
    own_queue = f"{WORKER_QUEUE_PREFIX}{uuid.uuid4().hex[:12]}"  # runs for the sessions this worker holds
    register_tasks(app, settings, Deliverer(settings).start(), own_queue)
    if settings.scheduler_poll_seconds:
        Scheduler(settings, CeleryDispatcher(settings)).start()  # a daemon thread: ends with the process
    start_sweeper(settings, lambda run_id: app.send_task(EXECUTE_RUN, args=[run_id]),
                  lambda session_id: app.send_task(OPEN_SESSION, args=[session_id]))
    app.worker_main([
        "worker", "--pool", "threads",
        "--concurrency", str(concurrency or settings.max_concurrent_runs),
        "--queues", f"{RUNS_QUEUE},{own_queue}",
        "--hostname", f"wayfarer-{os.getpid()}@{socket.gethostname()}",
        "--loglevel", settings.log_level,
        "--without-gossip", "--without-mingle",
    ])
