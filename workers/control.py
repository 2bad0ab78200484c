"""The worker's side of run control: the step loop's Steering, fed by the runner's heartbeat.

The runner's supervisor reads the run's row every second (lifecycle.Lease) and hands it to `observe`:
a pause asked for makes the next step boundary stop (running -> paused, written here), and the agent
waits until the row says running again (control given back). `observe` also answers what the
supervisor must do about a long pause: give an idle takeover back, or end a run nobody came to.
Input from the holder (the live view) calls `touch`, which keeps the takeover from going idle.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from app.db.engine import retry_transient, session_scope
from app.platform.settings import Settings
from app.runs import handover
from app.runs.lifecycle import Lease, RunStatus
from app.webhooks.delivery import notify_paused

TAKEN_OVER = "a person took control"


@dataclass(frozen=True)
class PauseVerdict:
    terminate: str | None = None  # the run waited for a person too long: end it terminated with this
    idle: bool = False  # the holder sent no input for too long: give control back


class RunSteering:
    def __init__(self, settings: Settings, run_id: str, worker_id: str) -> None:
        self._settings = settings
        self._run_id = run_id
        self._worker_id = worker_id
        self._requested = asyncio.Event()
        self._resumed = asyncio.Event()
        self._reason: str | None = None
        self._holder: str | None = None
        self._active_at = time.monotonic()  # the holder's last input, or when they took control
        self.paused_since: float | None = None
        self.paused_total = 0.0  # seconds of pauses that ended
        self._notice: asyncio.Future[None] | None = None

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def paused_seconds(self) -> float:
        current = time.monotonic() - self.paused_since if self.paused_since is not None else 0.0
        return self.paused_total + current

    def touch(self) -> None:
        self._active_at = time.monotonic()

    def observe(self, lease: Lease) -> PauseVerdict:
        """Called by the supervisor with the row as stored at each heartbeat."""
        if lease.pause_requested or lease.status == RunStatus.paused:
            self._reason = lease.pause_reason
        if lease.control_key_id != self._holder:
            self._holder = lease.control_key_id
            self.touch()
        if lease.status == RunStatus.running:
            if lease.pause_requested:
                self._requested.set()
            else:
                self._requested.clear()
                if self.paused:
                    self._resumed.set()
            return PauseVerdict()
        if lease.status != RunStatus.paused or self.paused_since is None:
            return PauseVerdict()
        now = time.monotonic()
        limit = self._settings.max_pause_seconds
        if self._holder is None and now - self.paused_since >= limit:
            return PauseVerdict(terminate=(
                f"Nobody took control within {limit} s (WAYFARER_MAX_PAUSE_SECONDS) while the run "
                f"waited for a person: {self._reason or 'paused'}"))
        if self._holder is not None and now - self._active_at >= self._settings.takeover_idle_seconds:
            return PauseVerdict(idle=True)
        return PauseVerdict()

    async def end_idle_takeover(self) -> None:
        """Give control back for a holder who sent no input for WAYFARER_TAKEOVER_IDLE_SECONDS; the
        next heartbeat sees the run running again and the agent goes on."""
        await asyncio.to_thread(_end_idle, self._settings, self._run_id, self._settings.takeover_idle_seconds)
        self.touch()

    async def ask_human(self, reason: str) -> None:
        await asyncio.to_thread(_pause_for_person, self._settings, self._run_id, reason)
        self._reason = reason
        self._requested.set()

    async def wait_if_paused(self) -> str | None:
        if not self._requested.is_set():
            return None
        self._resumed.clear()
        if not await asyncio.to_thread(_pause, self._settings, self._run_id, self._worker_id):
            self._requested.clear()  # withdrawn or canceled meanwhile
            return None
        self.paused_since = time.monotonic()
        self.touch()
        if self._holder is None:  # nobody is there yet: tell the operator someone is needed
            self._notice = asyncio.ensure_future(asyncio.to_thread(
                notify_paused, self._settings, self._run_id, self._reason or "paused"))
        try:
            await self._resumed.wait()
        finally:
            self.paused_total += time.monotonic() - self.paused_since
            self.paused_since = None
            self._requested.clear()
        return self._reason or TAKEN_OVER


@retry_transient
def _pause(settings: Settings, run_id: str, worker_id: str) -> bool:
    with session_scope(settings.database_url) as s:
        return handover.paused_at_boundary(s, run_id, worker_id)


@retry_transient
def _pause_for_person(settings: Settings, run_id: str, reason: str) -> None:
    with session_scope(settings.database_url) as s:
        handover.pause_for_person(s, run_id, reason)


@retry_transient
def _end_idle(settings: Settings, run_id: str, idle_seconds: int) -> bool:
    with session_scope(settings.database_url) as s:
        return handover.end_idle_takeover(s, run_id, idle_seconds)
