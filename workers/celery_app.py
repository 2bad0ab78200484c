"""Celery wiring only: the app, its settings, and the worker entry point."""

from __future__ import annotations

import os
import socket
import uuid

from celery import Celery

from app.platform.settings import Settings

RUNS_QUEUE = "wayfarer.runs"
WEBHOOKS_QUEUE = "wayfarer.webhooks"
WORKER_QUEUE_PREFIX = "wayfarer.worker."


def make_celery(settings: Settings) -> Celery:
    app = Celery("wayfarer", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True,  # a run's message is acked only when the run ended: a lost worker re-delivers
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # longer than the longest run, or Redis re-delivers a message that is still being worked on
        broker_transport_options={"visibility_timeout": settings.run_deadline_seconds + 600},
        task_routes={"wayfarer.execute_run": {"queue": RUNS_QUEUE},
                     "wayfarer.open_session": {"queue": RUNS_QUEUE},
                     "wayfarer.deliver_webhook": {"queue": WEBHOOKS_QUEUE}},
        worker_hijack_root_logger=False,
    )
    return app


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run a Celery worker (threads pool: runs share this process's browser) until it is stopped."""
    from workers.sweeper import start_sweeper
    from workers.tasks import register_tasks

    app = make_celery(settings)
    own_queue = f"{WORKER_QUEUE_PREFIX}{uuid.uuid4().hex[:12]}"  # runs for the sessions this worker holds
    register_tasks(app, settings, own_queue)
    start_sweeper(settings, lambda run_id: app.send_task("wayfarer.execute_run", args=[run_id]),
                  lambda session_id: app.send_task("wayfarer.open_session", args=[session_id]))
    app.worker_main([
        "worker", "--pool", "threads",
        "--concurrency", str(concurrency or settings.max_concurrent_runs),
        "--queues", f"{RUNS_QUEUE},{WEBHOOKS_QUEUE},{own_queue}",
        "--hostname", f"wayfarer-{os.getpid()}@{socket.gethostname()}",
        "--loglevel", settings.log_level,
        "--without-gossip", "--without-mingle",
    ])
