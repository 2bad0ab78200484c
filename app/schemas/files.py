"""Uploaded files (Skyvern's UploadFileResponse) and the download_files task request."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.schemas.runs import OneOffRunFields


class UploadFileResponse(BaseModel):
    s3_uri: str
    presigned_url: str
    file_id: str | None = None
    expires_at: datetime | None = None


class DownloadFilesRequest(OneOffRunFields):
    """Skyvern's DownloadFilesRequest (POST /v1/run/tasks/download_files)."""

    navigation_goal: str = Field(min_length=1)
    download_suffix: str | None = Field(default=None, max_length=100)
    download_timeout: float | None = Field(default=None, gt=0, le=3600)
    max_steps_per_run: int | None = Field(default=None, ge=1, le=1000)
