"""How a queued run reaches a worker: Celery on Redis, or an in-process executor (embedded default)."""

from __future__ import annotations

from typing import Protocol

from app.settings import Settings


class DispatchUnavailable(Exception):
    """The queue cannot take work now (e.g. Redis is down); the caller answers 503."""


class Dispatcher(Protocol):
    def enqueue(self, run_id: str) -> None: ...
    def close(self) -> None: ...


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        from workers.celery_app import make_celery

        self._celery = make_celery(settings)

    def enqueue(self, run_id: str) -> None:
        from kombu.exceptions import OperationalError

        try:
            self._celery.send_task("wayfarer.execute_run", args=[run_id], retry=False)
        except (OperationalError, OSError) as exc:
            raise DispatchUnavailable(f"The run queue is unavailable: {exc}") from exc

    def close(self) -> None:
        self._celery.close()


class InProcessDispatcher:
    """Runs runs inside this process on a shared browser, bounded by max_concurrent_runs."""

    def __init__(self, settings: Settings) -> None:
        from workers.host import RunHost  # lazily: only the embedded API process hosts runs

        self._host = RunHost(settings)
        self._host.start()

    def enqueue(self, run_id: str) -> None:
        self._host.submit(run_id)

    def close(self) -> None:
        self._host.stop()


def make_dispatcher(settings: Settings) -> Dispatcher:
    return CeleryDispatcher(settings) if settings.redis_url else InProcessDispatcher(settings)
