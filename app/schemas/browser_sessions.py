"""Browser session (`pbs_`) requests and responses, field for field as in Skyvern's spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.runs import FileInfo, HttpUrlField

MIN_TIMEOUT_MINUTES = 5
MAX_TIMEOUT_MINUTES = 240
DEFAULT_TIMEOUT_MINUTES = 60

PersistentBrowserType = Literal["msedge", "chrome", "stealth-chromium"]
Extension = Literal["ad-blocker", "captcha-solver"]


class CreateBrowserSessionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: HttpUrlField = None
    timeout: int | None = Field(default=None, ge=MIN_TIMEOUT_MINUTES)  # null: the 60 minute default
    proxy_location: Any = None
    proxy_session_id: str | None = None
    extensions: list[Extension] | None = None  # stored and echoed, not applied (docs/architecture.md)
    browser_type: PersistentBrowserType | None = None
    browser_profile_id: str | None = Field(default=None, pattern=r"^bp_")
    generate_browser_profile: bool | None = None
    needs_live_view: bool | None = None



class UpdateBrowserSessionRequest(BaseModel):
    generate_browser_profile: bool


class ExtendBrowserSessionRequest(BaseModel):
    additional_minutes: int = Field(ge=1)


class CloseBrowserSessionResponse(BaseModel):
    message: str = "Browser session closed"


class BrowserSessionResponse(BaseModel):
    browser_session_id: str
    organization_id: str
    status: str | None = None
    runnable_type: str | None = None
    runnable_id: str | None = None
    timeout: int | None = None
    browser_address: str | None = None
    app_url: str | None = None
    extensions: list[str] | None = None
    browser_type: str | None = None
    browser_profile_id: str | None = None
    generate_browser_profile: bool = False
    vnc_streaming_supported: bool = False
    stream_transport: str | None = None
    download_path: str | None = None
    downloaded_files: list[FileInfo] | None = None
    recordings: list[FileInfo] | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None = None
    warning: str | None = None
    failure_reason: str | None = None  # not in Skyvern's schema: why a session ended failed
