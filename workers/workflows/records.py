"""Each block's row (workflow_run_blocks), written as the block starts and ends so progress is visible."""

from __future__ import annotations

import asyncio
from typing import Any

from app.db.engine import retry_transient, session_scope
from app.db.models import WorkflowRunBlock, utcnow
from app.runs import ids
from workers.agent.contract import RunOutcome


class BlockRecorder:
    def __init__(self, database_url: str, run_id: str) -> None:
        self._database_url = database_url
        self._run_id = run_id
        self._position = 0
        self.last_label: str | None = None  # the block started last
        self._running: dict[str, str] = {}  # block id -> "'label' (block_type)", in start order
        self.stopped_by: RunOutcome | None = None  # why the runner stopped the run (the blocks it cut short)

    @property
    def started(self) -> bool:
        return self._position > 0

    @property
    def current(self) -> str | None:
        """The innermost block running now, as "'label' (block_type)"."""
        return next(reversed(self._running.values()), None)

    async def start(self, label: str, block_type: str, parent_id: str | None = None,
                    loop_index: int | None = None, loop_value: Any = None) -> str:
        block_id = ids.new_id(ids.WORKFLOW_RUN_BLOCK)
        self._position += 1
        self.last_label = label
        self._running[block_id] = f"'{label}' ({block_type})"
        row = WorkflowRunBlock(id=block_id, run_id=self._run_id, parent_id=parent_id, label=label,
                               block_type=block_type, status="running", position=self._position,
                               loop_index=loop_index, loop_value=loop_value, started_at=utcnow())
        await asyncio.to_thread(self._insert, row)
        return block_id

    async def finish(self, block_id: str, status: str, output: Any = None,
                     failure_reason: str | None = None) -> None:
        self._running.pop(block_id, None)
        await asyncio.to_thread(self._update, block_id, status, output, failure_reason)

    @retry_transient
    def _insert(self, row: WorkflowRunBlock) -> None:
        with session_scope(self._database_url) as s:
            s.add(row)

    @retry_transient
    def _update(self, block_id: str, status: str, output: Any, failure_reason: str | None) -> None:
        with session_scope(self._database_url) as s:
            row = s.get(WorkflowRunBlock, block_id)
            if row is not None:
                row.status, row.output, row.failure_reason = status, output, failure_reason
                row.finished_at = utcnow()
