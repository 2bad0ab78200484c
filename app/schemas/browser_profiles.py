"""Browser profiles (`bp_`): Skyvern's CreateBrowserProfileRequest, UpdateBrowserProfileRequest and
BrowserProfile. Proxy fields are accepted and not acted on (Wayfarer runs no proxies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CreateBrowserProfileRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    browser_session_id: str | None = Field(default=None, min_length=1, max_length=64)
    workflow_run_id: str | None = Field(default=None, min_length=1, max_length=64)
    proxy_location: str | dict[str, Any] | None = None
    proxy_session_id: str | None = None


class UpdateBrowserProfileRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    proxy_location: str | dict[str, Any] | None = None
    proxy_session_id: str | None = None
    rotate_proxy_session_id: bool | None = None


class BrowserProfile(BaseModel):
    browser_profile_id: str
    organization_id: str
    name: str
    description: str | None = None
    source_browser_type: str | None = None
    proxy_location: str | dict[str, Any] | None = None
    proxy_session_id: str | None = None
    is_managed: bool = False
    workflow_permanent_id: str | None = None
    browser_profile_key_digest: str | None = None
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None = None
    last_verified_login_at: datetime | None = None
    linked_credential_name: str | None = None
