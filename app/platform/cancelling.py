"""Cancelling asyncio tasks that must end.

A cancellation can be lost: on Python 3.11 `asyncio.wait_for` (banned in our code, still used inside
libraries, e.g. redis's connect) swallows one that comes just as what it awaits finishes, and the task
runs on. Waiting for such a task after a single cancel() can wait for ever, so a task still running a
moment later is cancelled again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
ATTEMPTS = 10


async def cancel_and_wait(tasks: Collection[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until they have ended, cancelling again those that go on; after ATTEMPTS
    tries the ones still running are left behind, logged, rather than hold up the caller."""
    pending = {task for task in tasks if not task.done()}
    for _ in range(ATTEMPTS):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RETRY_AFTER_S)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error while stopping is not worth a warning at exit
    if pending:
        log.warning("%d task(s) did not stop when cancelled: %s", len(pending), pending)
