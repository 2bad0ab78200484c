"""The Celery tasks: execute a run, deliver a webhook. Both are idempotent."""

from __future__ import annotations

import threading

from celery import Celery

from app import webhooks
from app.settings import Settings
from workers.host import RunHost


def register_tasks(app: Celery, settings: Settings, worker_queue: str | None = None) -> None:
    """worker_queue: this worker's own queue, where runs for the browser sessions it holds are sent."""
    host: RunHost | None = None
    lock = threading.Lock()

    def get_host() -> RunHost:
        nonlocal host
        with lock:
            if host is None:
                host = RunHost(settings, on_final=lambda run_id: app.send_task(
                    "wayfarer.deliver_webhook", args=[run_id]), worker_queue=worker_queue,
                    forward=lambda run_id, queue: app.send_task("wayfarer.execute_run", args=[run_id],
                                                                queue=queue))
            return host

    @app.task(name="wayfarer.execute_run")
    def execute_run(run_id: str) -> None:
        get_host().run_blocking(run_id)  # the claim (compare-and-set) makes redelivery harmless

    @app.task(name="wayfarer.open_session")
    def open_session(session_id: str) -> None:
        get_host().open_session(session_id).result()  # then held on the host's loop until it ends

    @app.task(name="wayfarer.deliver_webhook")
    def deliver_webhook(run_id: str) -> None:
        webhooks.deliver(settings, run_id)
