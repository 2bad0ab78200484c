"""A workflow run's timeline in Skyvern's shape: one `block` entry per block as it ran (its
WorkflowRunBlock: label, type, status, output, failure_reason, duration), a loop's blocks nested as its
`children` with `current_index` / `current_value` (one set per iteration)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Run, WorkflowRunBlock
from app.schemas.runs import TimelineItem


def workflow_timeline(session: Session, run_id: str) -> list[TimelineItem] | None:
    """The run's blocks as timeline entries, oldest first; None when the run is not a stored workflow's."""
    run = session.get(Run, run_id)
    if run is None or run.workflow_id is None:
        return None
    rows = session.scalars(select(WorkflowRunBlock).where(WorkflowRunBlock.run_id == run_id)
                           .order_by(WorkflowRunBlock.position)).all()
    children: dict[str | None, list[WorkflowRunBlock]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)

    def entry(row: WorkflowRunBlock) -> TimelineItem:
        return TimelineItem(type="block", block=_block(row, run.organization_id), created_at=row.created_at,
                            modified_at=row.modified_at,
                            children=[entry(child) for child in children.get(row.id, [])])

    return [entry(row) for row in children.get(None, [])]


def _block(row: WorkflowRunBlock, organization_id: str) -> dict[str, Any]:
    duration = (row.finished_at - row.started_at).total_seconds() if row.finished_at and row.started_at \
        else None
    value = row.loop_value
    return {
        "workflow_run_block_id": row.id, "workflow_run_id": row.run_id, "organization_id": organization_id,
        "parent_workflow_run_block_id": row.parent_id, "block_type": row.block_type, "label": row.label,
        "status": row.status, "output": row.output, "failure_reason": row.failure_reason,
        "current_index": row.loop_index,
        "current_value": value if isinstance(value, str) or value is None else json.dumps(value),
        "duration": duration, "created_at": row.created_at, "modified_at": row.modified_at,
    }
