"""Uploaded files (Skyvern's UploadFileResponse) and the download_files task request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.runs import normalize_http_url


class UploadFileResponse(BaseModel):
    s3_uri: str
    presigned_url: str
    file_id: str | None = None
    expires_at: datetime | None = None


class DownloadFilesRequest(BaseModel):
    """Skyvern's DownloadFilesRequest (POST /v1/run/tasks/download_files)."""

    model_config = ConfigDict(extra="ignore")

    navigation_goal: str = Field(min_length=1)
    url: str | None = None
    webhook_url: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    totp_identifier: str | None = Field(default=None, max_length=500)
    totp_url: str | None = None
    browser_session_id: str | None = None
    browser_profile_id: str | None = None
    start_fresh_browser: bool | None = None
    browser_address: str | None = None
    extra_http_headers: dict[str, str] | None = None
    cdp_connect_headers: dict[str, str] | None = None
    max_screenshot_scrolling_times: int | None = None
    download_suffix: str | None = Field(default=None, max_length=100)
    download_timeout: float | None = Field(default=None, gt=0, le=3600)
    max_steps_per_run: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("url", "webhook_url", "totp_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return normalize_http_url(value)
