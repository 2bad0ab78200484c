"""Links to artifacts that any HTTP client can fetch until they expire: presigned S3 URLs, or our own
HMAC-signed /v1/artifacts/{id}/content links; and the artifact a request names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts.store import ArtifactStore, LocalStore
from app.db.models import Artifact
from app.platform.security import sign_artifact_link
from app.platform.settings import Settings


class ArtifactLinks:
    """Turns artifact rows into URLs any HTTP client can fetch until they expire. `base_url` is the public
    base these links (and the others a response carries) are built on: app/platform/public_url.py."""

    def __init__(self, settings: Settings, store: ArtifactStore, base_url: str) -> None:
        self._settings = settings
        self._store = store
        self.base_url = base_url

    def url(self, artifact: Artifact) -> str:
        ttl = self._settings.artifact_url_ttl_seconds
        presigned = self._store.presigned_url(artifact.storage_key, ttl)
        if presigned:
            return presigned
        expires, signature = sign_artifact_link(self._settings.resolved_secret_key(), artifact.id, ttl)
        return f"{self.base_url}/v1/artifacts/{artifact.id}/content?expires={expires}&signature={signature}"

    def uri(self, artifact: Artifact) -> str:
        """Where the bytes live (Skyvern's `uri`), relative to the store: `s3://bucket/key`, or for the
        local store `local://key` (never the server's own file paths)."""
        if isinstance(self._store, LocalStore):
            return f"local://{artifact.storage_key}"
        return f"s3://{self._settings.s3_bucket}/{artifact.storage_key}"


def find_artifact(session: Session, artifact_id: str, organization_id: str | None) -> Artifact | None:
    """The artifact; with organization_id, only if it is that organization's (else a signed link
    vouched for it)."""
    query = select(Artifact).where(Artifact.id == artifact_id)
    if organization_id is not None:
        query = query.where(Artifact.organization_id == organization_id)
    return session.scalars(query).first()
