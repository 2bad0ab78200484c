"""Celery wiring only: the app, its settings, its queues and task names."""

from __future__ import annotations

from celery import Celery

from app.platform.settings import Settings

RUNS_QUEUE = "wayfarer.runs"
WORKER_QUEUE_PREFIX = "wayfarer.worker."

# The task names, sent by app.dispatch and the sweeper, registered by workers.tasks.
EXECUTE_RUN = "wayfarer.execute_run"
OPEN_SESSION = "wayfarer.open_session"


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
        task_routes={EXECUTE_RUN: {"queue": RUNS_QUEUE}, OPEN_SESSION: {"queue": RUNS_QUEUE}},
        worker_hijack_root_logger=False,
    )
    return app
