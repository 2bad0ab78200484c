"""How a queued run reaches a worker: Celery on Redis, or an in-process executor (embedded default)."""

from __future__ import annotations

from typing import Protocol

from app.settings import Settings


class DispatchUnavailable(Exception):
    """The queue cannot take work now (e.g. Redis is down); the caller answers 503."""


class Dispatcher(Protocol):
    def enqueue(self, run_id: str) -> None: ...
    def enqueue_webhook(self, run_id: str) -> None:
        """Deliver the run's final webhook in the background (with retries)."""
        ...
    def close(self) -> None: ...


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        from workers.celery_app import make_celery

        self._celery = make_celery(settings)
        # A submission answers 503 at once while Redis is down, instead of after kombu's ~6 s of
        # reconnect attempts per request (the sweeper re-dispatches what is stored as queued).
        self._celery.conf.broker_transport_options = {**self._celery.conf.broker_transport_options,
                                                      "max_retries": 0}

    def enqueue(self, run_id: str) -> None:
        from kombu.exceptions import OperationalError

        try:
            self._celery.send_task("wayfarer.execute_run", args=[run_id], retry=False)
        except (OperationalError, OSError) as exc:
            raise DispatchUnavailable(f"The run queue is unavailable: {exc}") from exc

    def enqueue_webhook(self, run_id: str) -> None:
        self._celery.send_task("wayfarer.deliver_webhook", args=[run_id])

    def close(self) -> None:
        self._celery.close()


class InProcessDispatcher:
    """Runs runs inside this process on a shared browser, bounded by max_concurrent_runs."""

    def __init__(self, settings: Settings) -> None:
        from workers.host import RunHost  # lazily: only the embedded API process hosts runs
        from workers.sweeper import start_sweeper

        self._host = RunHost(settings)
        self._stop_sweeper = start_sweeper(settings, self.enqueue)

    def enqueue(self, run_id: str) -> None:
        self._host.submit(run_id)

    def enqueue_webhook(self, run_id: str) -> None:
        self._host.deliver_webhook(run_id)

    def close(self) -> None:
        self._stop_sweeper.set()
        self._host.stop()


def make_dispatcher(settings: Settings) -> Dispatcher:
    return CeleryDispatcher(settings) if settings.redis_url else InProcessDispatcher(settings)
