"""Uploaded files (`file_`) and the download_files task.

POST /v1/upload_file takes `file` as a real multipart file part, or — as both official SDKs send it —
as a plain text form field, whose text is then the file's content (stored as `upload.txt`): the
server cannot read a path on the client's machine. An uploaded file is stored like an artifact without
a run, so its `presigned_url` is the same kind of signed link and works as an upload_file action's
`file_url`.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep, StoreDep
from app.artifacts import uploads
from app.artifacts.links import ArtifactLinks
from app.artifacts.names import safe_filename
from app.db.models import Artifact, utcnow
from app.platform.settings import Settings
from app.runs import one_off
from app.runs.views import workflow_run_response
from app.schemas.files import DownloadFilesRequest, UploadFileResponse
from app.schemas.runs import WorkflowRunResponse

router = APIRouter(tags=["Files"])

MAX_UPLOAD_BYTES = 30 * 2**20  # Skyvern's MAX_UPLOAD_FILE_SIZE
MAX_RETENTION_DAYS = 365
TEXT_FIELD_FILENAME = "upload.txt"


async def _read_upload(request: Request) -> uploads.Upload:
    """The form's `file` and `retention_days`; 422 naming the field when unusable."""
    form = await request.form(max_files=1, max_fields=10, max_part_size=MAX_UPLOAD_BYTES + 1)
    retention = form.get("retention_days")
    if retention is not None and (not isinstance(retention, str) or not retention.isdigit()
                                  or not 1 <= int(retention) <= MAX_RETENTION_DAYS):
        raise HTTPException(status_code=422, detail=(
            f"retention_days must be a whole number of days from 1 to {MAX_RETENTION_DAYS}."))
    value = form.get("file")
    if isinstance(value, UploadFile):
        data = await value.read(MAX_UPLOAD_BYTES + 1)
        filename = safe_filename(value.filename, "upload.bin")
        content_type = value.content_type or "application/octet-stream"
    elif isinstance(value, str):
        data, filename, content_type = value.encode(), TEXT_FIELD_FILENAME, "text/plain"
    else:
        raise HTTPException(status_code=422, detail="file is required: send it as a multipart form field "
                                                    "named 'file'.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status_code=413, detail=f"file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    days = int(retention) if isinstance(retention, str) else None
    return uploads.Upload(data, filename, content_type, days)


def upload_response(row: Artifact, links: ArtifactLinks, settings: Settings) -> UploadFileResponse:
    return UploadFileResponse(s3_uri=links.uri(row), presigned_url=links.url(row), file_id=row.id,
                              expires_at=utcnow() + timedelta(seconds=settings.artifact_url_ttl_seconds))


@router.post("/v1/upload_file", response_model=UploadFileResponse)
@router.post("/api/v1/upload_file", response_model=UploadFileResponse, include_in_schema=False)
async def upload_file(request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
                      caller: CallerDep, links: LinksDep) -> UploadFileResponse:
    upload = await _read_upload(request)
    row = await run_in_threadpool(uploads.store_upload, session, store, caller.organization_id, upload)
    return upload_response(row, links, settings)


@router.delete("/v1/files/{file_id}", status_code=204)
def delete_file(file_id: str, session: SessionDep, store: StoreDep, caller: CallerDep) -> Response:
    uploads.delete_upload(session, store, caller.organization_id, file_id)
    return Response(status_code=204)


@router.post("/v1/run/tasks/download_files", response_model=WorkflowRunResponse, tags=["Agent"])
def download_files(request: DownloadFilesRequest, session: SessionDep, settings: SettingsDep,
                   caller: CallerDep, dispatcher: DispatcherDep, links: LinksDep) -> WorkflowRunResponse:
    run = one_off.start_download_files(session, settings, dispatcher, caller.organization_id, caller.api_key,
                                       request)
    return workflow_run_response(session, run, links, settings)
