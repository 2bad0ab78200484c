"""How a queued run reaches a worker: Celery on Redis, or an in-process executor (embedded default)."""

from __future__ import annotations

from typing import Protocol

from kombu.exceptions import OperationalError

from app.platform.settings import Settings
from app.webhooks.deliverer import Deliverer
from workers.celery_app import EXECUTE_RUN, OPEN_SESSION, make_celery


class DispatchUnavailable(Exception):
    """The queue cannot take work now (e.g. Redis is down); the caller answers 503."""


class QueueUnavailable(Exception):
    """What the user asked for could not be queued and was not kept (HTTP 503)."""


class Dispatcher(Protocol):
    def enqueue(self, run_id: str, queue: str | None = None) -> None:
        """Send the run to a worker; `queue` names the worker holding the run's browser session."""
        ...
    def open_session(self, session_id: str) -> None:
        """Have a worker open the browser session's browser (it then holds the session)."""
        ...
    def close(self) -> None: ...


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        self._celery = make_celery(settings)
        # A submission answers 503 at once while Redis is down, instead of after kombu's ~6 s of
        # reconnect attempts per request (the sweeper re-dispatches what is stored as queued).
        self._celery.conf.broker_transport_options = {**self._celery.conf.broker_transport_options,
                                                      "max_retries": 0}

    def enqueue(self, run_id: str, queue: str | None = None) -> None:
        self._send(EXECUTE_RUN, run_id, queue)

    def open_session(self, session_id: str) -> None:
        self._send(OPEN_SESSION, session_id, None)

    def _send(self, task: str, argument: str, queue: str | None) -> None:
        try:
            self._celery.send_task(task, args=[argument], retry=False, **({"queue": queue} if queue else {}))
        except (OperationalError, OSError) as exc:
            raise DispatchUnavailable(f"The run queue is unavailable: {exc}") from exc

    def close(self) -> None:
        self._celery.close()


class InProcessDispatcher:
    """Runs runs inside this process on a shared browser, bounded by max_concurrent_runs."""

    def __init__(self, settings: Settings) -> None:
        from workers.host import RunHost  # lazily: only the embedded API process hosts runs
        from workers.sweeper import start_sweeper

        self._deliverer = Deliverer(settings).start()
        self._host = RunHost(settings, on_final=lambda _run_id: self._deliverer.wake())
        self._stop_sweeper = start_sweeper(settings, self.enqueue, self.open_session)

    def enqueue(self, run_id: str, queue: str | None = None) -> None:
        self._host.submit(run_id)

    def open_session(self, session_id: str) -> None:
        self._host.open_session(session_id)

    def close(self) -> None:
        self._stop_sweeper.set()
        self._host.stop()
        self._deliverer.stop()


def make_dispatcher(settings: Settings) -> Dispatcher:
    return CeleryDispatcher(settings) if settings.redis_url else InProcessDispatcher(settings)
