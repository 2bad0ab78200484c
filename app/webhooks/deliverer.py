"""The deliverer: a thread in every process that runs runs (the embedded server, each Celery worker)
that sends the outbox's due webhooks. Each send has its own short-lived thread, at most SENDERS at a
time, so a dead receiver never holds a run's slot nor blocks the other deliveries; retries wait in the
database (next_attempt_at), not in a sleeping thread, so a restart loses none.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from app.db.engine import session_scope
from app.platform.settings import Settings
from app.webhooks import outbox
from app.webhooks.delivery import send_claimed

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how soon a delivery owed by another process (or due for a retry) is seen
SENDERS = 8
LEASE_MARGIN_SECONDS = 10.0


class Deliverer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified whenever a send ends
        # httpx's timeout bounds each phase of a request (connect, write, read), not the whole of it; a
        # send outliving its lease may be made twice (at least once: the receiver drops it by its id)
        self._lease = timedelta(seconds=3 * settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        self._thread = threading.Thread(target=self._loop, name="wayfarer-webhooks", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for due deliveries now (a run just ended in this process)."""
        self._wake.set()

    def stop(self) -> None:
        """Claim nothing more, and wait up to WAYFARER_WEBHOOK_TIMEOUT_SECONDS for the sends under way
        (a graceful shutdown sends nothing twice). One cut off anyway (the process killed) loses its
        lease, and another process, or this one after a restart, sends again with the same delivery id."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + self._settings.webhook_timeout_seconds
        with self._idle:
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._dispatch_due()
            except Exception:
                log.exception("looking for due webhooks failed; will retry")
            self._wake.wait(POLL_SECONDS)

    def _dispatch_due(self) -> None:
        with self._lock:
            free = SENDERS - self._busy
        with session_scope(self._settings.database_url) as s:
            claims = outbox.claim_due(s, free, self._lease)
        for claim in claims:
            with self._lock:
                self._busy += 1
            threading.Thread(target=self._send, args=(claim,), name=f"webhook-{claim.run_id}",
                             daemon=True).start()

    def _send(self, claim: outbox.Claim) -> None:
        try:
            send_claimed(self._settings, claim)
        except Exception:  # e.g. the database is down: the lease lapses and the attempt is made again
            log.exception("webhook delivery %s could not be recorded", claim.delivery_id)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()
            self._wake.set()  # a slot is free: more may be due
