"""Uploaded files (`file_`): artifacts without a run, stored, found and deleted within their organization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts.store import ArtifactStore
from app.artifacts.writer import UPLOAD_ARTIFACT_TYPE, Owner, save
from app.db.models import Artifact, utcnow
from app.runs import ids

__all__ = ["UPLOAD_ARTIFACT_TYPE", "UnknownFile", "Upload", "delete_upload", "find_uploads", "store_upload"]


class UnknownFile(LookupError):
    """No upload with that id in the organization (HTTP 404)."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"File not found {file_id}")


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str  # already safe (app.artifacts.names)
    content_type: str
    retention_days: int | None


def find_uploads(session: Session, organization_id: str, file_ids: Sequence[str]) -> list[Artifact]:
    """The organization's uploads among `file_ids`, in the order asked; unknown ids are left out."""
    rows = session.scalars(select(Artifact).where(Artifact.id.in_(list(file_ids)),
                                                  Artifact.organization_id == organization_id,
                                                  Artifact.artifact_type == UPLOAD_ARTIFACT_TYPE)).all()
    by_id = {row.id: row for row in rows}
    return [by_id[file_id] for file_id in dict.fromkeys(file_ids) if file_id in by_id]


def store_upload(session: Session, store: ArtifactStore, organization_id: str, upload: Upload) -> Artifact:
    """Store the file; with retention_days, app.artifacts.retention deletes it that many days from now."""
    expires = utcnow() + timedelta(days=upload.retention_days) if upload.retention_days else None
    row = save(session, store, Owner(organization_id), UPLOAD_ARTIFACT_TYPE, upload.data, upload.content_type,
               filename=upload.filename, artifact_id=ids.new_id(ids.FILE), expires_at=expires)
    session.commit()
    return row


def delete_upload(session: Session, store: ArtifactStore, organization_id: str, file_id: str) -> None:
    found = find_uploads(session, organization_id, [file_id])
    if not found:
        raise UnknownFile(file_id)
    store.delete(found[0].storage_key)
    session.delete(found[0])
    session.commit()
