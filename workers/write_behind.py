"""Ordered write-behind: a run's database rows and artifact uploads leave the step's critical path.

Writes are applied in submission order by one background task, several per transaction, retried on
transient errors. `flush()` waits until all are stored; the runner flushes before it ends a run, so
nothing the agent recorded is lost and a run is not final before its artifacts are stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.db.engine import retry_transient, session_scope

log = logging.getLogger(__name__)

Write = Callable[[Session], object]  # what it returns is ignored
MAX_BATCH = 32


class WriteBehind:
    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._queue: asyncio.Queue[Write] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def submit(self, write: Write) -> None:
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())
        self._queue.put_nowait(write)

    async def flush(self) -> None:
        """Wait until every submitted write is stored; re-raise the first write that failed for good."""
        await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        if self._error is not None:
            raise self._error

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                if self._error is None:
                    await asyncio.to_thread(self._apply, batch)
            except Exception as exc:
                log.exception("storing %d record(s) of a run failed", len(batch))
                self._error = exc
            finally:
                for _ in batch:
                    self._queue.task_done()

    @retry_transient
    def _apply(self, batch: list[Write]) -> None:
        with session_scope(self._database_url) as session:
            for write in batch:
                write(session)
