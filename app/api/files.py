"""Uploaded files (`file_`) and the download_files task.

POST /v1/upload_file takes `file` as a real multipart file part, or — as both official SDKs send it —
as a plain text form field, whose text is then the file's content (stored as `upload.txt`): the
server cannot read a path on the client's machine. An uploaded file is stored like an artifact without
a run, so its `presigned_url` is the same kind of signed link and works as an upload_file action's
`file_url`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.credentials import start_workflow_run
from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep, StoreDep
from app.artifacts.names import safe_filename
from app.artifacts.store import ArtifactStore
from app.artifacts.uploads import UPLOAD_ARTIFACT_TYPE, find_uploads
from app.db.models import Artifact, utcnow
from app.platform.settings import Settings
from app.runs import ids, service
from app.runs.kinds import DOWNLOAD_FILES_WORKFLOW
from app.runs.views import ArtifactLinks
from app.schemas.files import DownloadFilesRequest, UploadFileResponse
from app.schemas.runs import WorkflowRunResponse

router = APIRouter(tags=["Files"])

MAX_UPLOAD_BYTES = 30 * 2**20  # Skyvern's MAX_UPLOAD_FILE_SIZE
MAX_RETENTION_DAYS = 365
TEXT_FIELD_FILENAME = "upload.txt"


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str
    retention_days: int | None


async def _read_upload(request: Request) -> Upload:
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
    return Upload(data, filename, content_type, int(retention) if isinstance(retention, str) else None)


def _store_upload(session: Session, store: ArtifactStore, organization_id: str, upload: Upload) -> Artifact:
    """Store the file; with retention_days, app.artifacts.retention deletes it that many days from now."""
    file_id = ids.new_id(ids.FILE)
    key = f"{organization_id}/uploads/{file_id}/{upload.filename}"
    store.put(key, upload.data, upload.content_type)
    now = utcnow()
    row = Artifact(id=file_id, organization_id=organization_id, run_id=None, step_id=None,
                   artifact_type=UPLOAD_ARTIFACT_TYPE, storage_key=key, content_type=upload.content_type,
                   size=len(upload.data), checksum=hashlib.sha256(upload.data).hexdigest(),
                   filename=upload.filename, created_at=now,
                   expires_at=now + timedelta(days=upload.retention_days) if upload.retention_days else None)
    session.add(row)
    session.commit()
    return row


def upload_response(row: Artifact, links: ArtifactLinks, settings: Settings) -> UploadFileResponse:
    return UploadFileResponse(s3_uri=links.uri(row), presigned_url=links.url(row), file_id=row.id,
                              expires_at=utcnow() + timedelta(seconds=settings.artifact_url_ttl_seconds))


@router.post("/v1/upload_file", response_model=UploadFileResponse)
@router.post("/api/v1/upload_file", response_model=UploadFileResponse, include_in_schema=False)
async def upload_file(request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
                      caller: CallerDep, links: LinksDep) -> UploadFileResponse:
    upload = await _read_upload(request)
    row = await run_in_threadpool(_store_upload, session, store, caller.organization_id, upload)
    return upload_response(row, links, settings)


@router.delete("/v1/files/{file_id}", status_code=204)
def delete_file(file_id: str, session: SessionDep, store: StoreDep, caller: CallerDep) -> Response:
    found = find_uploads(session, caller.organization_id, [file_id])
    if not found:
        raise HTTPException(status_code=404, detail=f"File not found {file_id}")
    row = found[0]
    store.delete(row.storage_key)
    session.delete(row)
    session.commit()
    return Response(status_code=204)


DOWNLOAD_GOAL = ("{goal}\nThis task succeeds only once a file has been downloaded: use the download_file "
                 "tool on the link or button that downloads it, then call complete.")


@router.post("/v1/run/tasks/download_files", response_model=WorkflowRunResponse, tags=["Agent"])
def download_files(request: DownloadFilesRequest, session: SessionDep, settings: SettingsDep,
                   caller: CallerDep, dispatcher: DispatcherDep, links: LinksDep) -> WorkflowRunResponse:
    if not request.url:
        raise HTTPException(status_code=400, detail="url is required: the page to start downloading from.")
    task = request.task_request(DOWNLOAD_GOAL.format(goal=request.navigation_goal), "Download files",
                                max_steps=request.max_steps_per_run)
    workflow = service.OneOffWorkflow(DOWNLOAD_FILES_WORKFLOW, {
        "navigation_goal": request.navigation_goal, "download_suffix": request.download_suffix,
        "download_timeout": request.download_timeout})
    return start_workflow_run(session, settings, caller, dispatcher, links, task, workflow)
