"""Artifact bytes: fetched with an x-api-key of the owning organization, or with a signed, expiring link."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response

from app.api.deps import SessionDep, SettingsDep, StoreDep, caller_for
from app.artifacts.links import find_artifact
from app.db.models import Artifact
from app.platform.security import verify_artifact_link

router = APIRouter(tags=["Artifacts"])

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
INVALID_LINK = "Invalid or expired artifact URL"
# a stored page stays inert when opened: no scripts, no requests
HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range of a single-range `Range` header; None when it cannot be satisfied."""
    match = _RANGE.match(header.strip())
    if not match or not (match[1] or match[2]) or size == 0:
        return None
    if not match[1]:  # suffix: the last N bytes
        length = int(match[2])
        return (max(0, size - length), size - 1) if length else None
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return (start, end) if start <= end else None


@router.get("/v1/artifacts/{artifact_id}/content")
def get_artifact_content(
    artifact_id: str, session: SessionDep, settings: SettingsDep, store: StoreDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query()] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    range_header: Annotated[str | None, Header(alias="range", include_in_schema=False)] = None,
) -> Response:
    organization_id = None  # a valid signed link is enough
    if expires is not None or signature is not None:
        if expires is None or not signature or not verify_artifact_link(
                settings.resolved_secret_key(), artifact_id, expires, signature):
            raise HTTPException(status_code=403, detail=INVALID_LINK)
    else:
        organization_id = caller_for(session, x_api_key).organization_id
    artifact = find_artifact(session, artifact_id, organization_id)
    if artifact is None:
        raise HTTPException(status_code=404, detail=f"Artifact not found {artifact_id}")
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300",
               "Content-Disposition": f'inline; filename="{_filename(artifact)}"'}
    if artifact.content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = HTML_POLICY
    if range_header:
        byte_range = parse_range(range_header, artifact.size)
        if byte_range is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{artifact.size}"})
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{artifact.size}"
        return Response(store.get(artifact.storage_key, byte_range), status_code=206,
                        media_type=artifact.content_type, headers=headers)
    return Response(store.get(artifact.storage_key), media_type=artifact.content_type, headers=headers)


def _filename(artifact: Artifact) -> str:
    name = artifact.filename or artifact.storage_key.rsplit("/", 1)[-1]
    return re.sub(r'[^A-Za-z0-9._-]', "_", name)
