"""Folders (`fld_`): create, list, read, update, delete, and a workflow's move into or out of one.

A workflow is in a folder when its current version's `folder_id` names it; a move sets `folder_id` on
every version (no new version: the definition did not change), so an older version read with
`?version=` shows the same folder. Deleting a folder takes its workflows out of it, or with
`delete_workflows` deletes them (app/workflows/definitions.delete_workflow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.db.models import Folder as FolderRow
from app.db.models import Workflow as WorkflowRow
from app.db.models import utcnow
from app.runs import ids
from app.schemas.folders import Folder, FolderCreate, FolderUpdate
from app.workflows.definitions import current_versions, delete_workflow, escape_like, require_workflow
from app.workflows.validation import WorkflowInvalid


class UnknownFolder(LookupError):
    """No such folder in the organization, or it was deleted (HTTP 404)."""

    def __init__(self, folder_id: str) -> None:
        super().__init__(f"Folder not found {folder_id}")


def create_folder(session: Session, organization_id: str, request: FolderCreate) -> FolderRow:
    row = FolderRow(id=ids.new_id(ids.FOLDER), organization_id=organization_id, title=request.title,
                    description=request.description)
    session.add(row)
    session.flush()
    return row


def find_folder(session: Session, organization_id: str, folder_id: str) -> FolderRow | None:
    return session.scalars(select(FolderRow).where(
        FolderRow.id == folder_id, FolderRow.organization_id == organization_id,
        FolderRow.deleted_at.is_(None))).first()


def require_folder(session: Session, organization_id: str, folder_id: str) -> FolderRow:
    row = find_folder(session, organization_id, folder_id)
    if row is None:
        raise UnknownFolder(folder_id)
    return row


def list_folders(session: Session, organization_id: str, search: str | None, offset: int,
                 limit: int) -> Sequence[FolderRow]:
    """Newest first; `search` is a case-insensitive match in the title or the description."""
    query = select(FolderRow).where(FolderRow.organization_id == organization_id,
                                    FolderRow.deleted_at.is_(None))
    if search:
        pattern = f"%{escape_like(search)}%"
        query = query.where(or_(FolderRow.title.ilike(pattern, escape="\\"),
                                FolderRow.description.ilike(pattern, escape="\\")))
    query = query.order_by(FolderRow.created_at.desc(), FolderRow.id.desc())
    return session.scalars(query.offset(offset).limit(limit)).all()


def update_folder(session: Session, organization_id: str, folder_id: str, request: FolderUpdate) -> FolderRow:
    """Only the fields the request sets change (a null title keeps the title)."""
    row = require_folder(session, organization_id, folder_id)
    if request.title is not None:
        row.title = request.title
    if "description" in request.model_fields_set:
        row.description = request.description
    row.modified_at = utcnow()
    session.flush()
    return row


def delete_folder(session: Session, organization_id: str, folder_id: str, delete_workflows: bool) -> None:
    row = require_folder(session, organization_id, folder_id)
    if delete_workflows:
        for workflow_permanent_id in _workflows_in(session, organization_id, folder_id):
            delete_workflow(session, organization_id, workflow_permanent_id)
    session.execute(update(WorkflowRow).where(WorkflowRow.organization_id == organization_id,
                                              WorkflowRow.folder_id == folder_id).values(folder_id=None))
    row.deleted_at = utcnow()


def move_workflow(session: Session, organization_id: str, workflow_permanent_id: str,
                  folder_id: str | None) -> WorkflowRow:
    """Put the workflow in the folder (None: in no folder); UnknownWorkflow (404), and a folder that
    does not exist is a 400 naming folder_id. Returns the current version."""
    current = require_workflow(session, organization_id, workflow_permanent_id)
    if folder_id is not None and find_folder(session, organization_id, folder_id) is None:
        raise WorkflowInvalid(f"folder_id: Folder not found {folder_id}")
    session.execute(update(WorkflowRow).where(
        WorkflowRow.organization_id == organization_id,
        WorkflowRow.workflow_permanent_id == workflow_permanent_id).values(folder_id=folder_id))
    session.refresh(current)
    return current


def _workflows_in(session: Session, organization_id: str, folder_id: str) -> list[str]:
    return [row.workflow_permanent_id for row in session.scalars(
        current_versions(organization_id).where(WorkflowRow.folder_id == folder_id))]


def folder_responses(session: Session, organization_id: str, rows: Sequence[FolderRow]) -> list[Folder]:
    """The response shape, each folder's workflow_count from one query."""
    counts: dict[Any, int] = {}
    if rows:
        counted = (current_versions(organization_id)
                   .with_only_columns(WorkflowRow.folder_id, func.count())
                   .where(WorkflowRow.folder_id.in_([row.id for row in rows]))
                   .group_by(WorkflowRow.folder_id))
        counts = {folder_id: count for folder_id, count in session.execute(counted)}
    return [Folder(folder_id=row.id, organization_id=row.organization_id, title=row.title,
                   description=row.description, workflow_count=counts.get(row.id, 0),
                   created_at=row.created_at, modified_at=row.modified_at) for row in rows]
