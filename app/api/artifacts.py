"""Artifact bytes: fetched with an x-api-key of the owning organization, a signed, expiring link, or the
viewer's session cookie (its pages link here, on their own origin)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response

from app.api.deps import INVALID_CREDENTIALS, SessionDep, SettingsDep, StoreDep, get_caller
from app.artifacts.links import find_artifact
from app.db.models import Artifact
from app.platform.security import verify_artifact_link
from app.web.auth import viewer_identity

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


async def reader_organization(
    artifact_id: str, request: Request, settings: SettingsDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query()] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str | None:
    """The organization whose artifacts the request may read; None for a valid signed link (it names
    its artifact); 403 when the request carries no valid link, key or viewer session."""
    if expires is not None or signature is not None:
        if expires is None or not signature or not verify_artifact_link(
                settings.resolved_secret_key(), artifact_id, expires, signature):
            raise HTTPException(status_code=403, detail=INVALID_LINK)
        return None
    if x_api_key is not None:
        return (await get_caller(settings, x_api_key)).organization_id
    viewer = await viewer_identity(request)
    if viewer is None:
        raise HTTPException(status_code=403, detail=INVALID_CREDENTIALS)
    return viewer.organization_id


@router.get("/v1/artifacts/{artifact_id}/content")
def get_artifact_content(
    artifact_id: str, session: SessionDep, store: StoreDep,
    organization_id: Annotated[str | None, Depends(reader_organization)],
    range_header: Annotated[str | None, Header(alias="range", include_in_schema=False)] = None,
) -> Response:
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
