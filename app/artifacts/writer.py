"""The one way an artifact is written: `save()` builds its storage key, puts the bytes in the artifact
store, and adds its row (size, sha256) — for a run's artifacts, a browser session's recordings and
uploaded files alike.

Keys: `{organization}/{run}/{step index|run}/{type}-{id}.{ext}` for a run's artifacts,
`{organization}/{session}/session/{type}-{id}.{ext}` for a session's, `{organization}/uploads/{id}/{name}`
for uploads.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from app.artifacts.store import ArtifactStore
from app.db.models import Artifact
from app.runs import ids

UPLOAD_ARTIFACT_TYPE = "upload"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "video/webm": "webm", "text/plain": "txt",
               "text/html": "html", "application/json": "json"}


@dataclass(frozen=True)
class Owner:
    """Whose an artifact is: an organization's upload, a run's (step_index None: the run as a whole),
    or a browser session's."""

    organization_id: str
    run_id: str | None = None
    step_id: str | None = None
    step_index: int | None = None
    browser_session_id: str | None = None


def new_artifact_id() -> str:
    return ids.new_id(ids.ARTIFACT)


def save(db: Session, store: ArtifactStore, owner: Owner, artifact_type: str, content: bytes | Path,
         content_type: str, *, filename: str | None = None, artifact_id: str | None = None,
         expires_at: datetime | None = None) -> Artifact:
    """Store `content` (bytes, or a file streamed from disk) and add its row to `db` (not committed)."""
    artifact_id = artifact_id or new_artifact_id()
    if isinstance(content, Path):
        filename = filename or content.name
    key = _key(owner, artifact_type, artifact_id, content_type, filename)
    if isinstance(content, Path):
        size, checksum = content.stat().st_size, _file_sha256(content)
        store.put_file(key, content, content_type)
    else:
        size, checksum = len(content), hashlib.sha256(content).hexdigest()
        store.put(key, content, content_type)
    row = Artifact(id=artifact_id, organization_id=owner.organization_id, run_id=owner.run_id,
                   step_id=owner.step_id, browser_session_id=owner.browser_session_id,
                   artifact_type=artifact_type, storage_key=key, content_type=content_type, size=size,
                   checksum=checksum, filename=filename, expires_at=expires_at)
    db.add(row)
    return row


def _key(owner: Owner, artifact_type: str, artifact_id: str, content_type: str, filename: str | None) -> str:
    if artifact_type == UPLOAD_ARTIFACT_TYPE:
        return f"{owner.organization_id}/uploads/{artifact_id}/{filename}"
    ext = _EXTENSIONS.get(content_type) or (Path(filename).suffix.lstrip(".") if filename else "") \
        or (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
    if owner.run_id is None:
        folder = f"{owner.browser_session_id}/session"
    else:
        folder = f"{owner.run_id}/{'run' if owner.step_index is None else owner.step_index}"
    return f"{owner.organization_id}/{folder}/{artifact_type}-{artifact_id}.{ext}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
