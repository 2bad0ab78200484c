"""Uploaded files (`file_`): artifacts without a run, found by id within their organization."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Artifact

UPLOAD_ARTIFACT_TYPE = "upload"


def find_uploads(session: Session, organization_id: str, file_ids: Sequence[str]) -> list[Artifact]:
    """The organization's uploads among `file_ids`, in the order asked; unknown ids are left out."""
    rows = session.scalars(select(Artifact).where(Artifact.id.in_(list(file_ids)),
                                                  Artifact.organization_id == organization_id,
                                                  Artifact.artifact_type == UPLOAD_ARTIFACT_TYPE)).all()
    by_id = {row.id: row for row in rows}
    return [by_id[file_id] for file_id in dict.fromkeys(file_ids) if file_id in by_id]
