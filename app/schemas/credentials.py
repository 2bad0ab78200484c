"""TOTP codes pushed by users (Skyvern's TOTPCodeCreate / TOTPCode)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

OtpType = Literal["totp", "magic_link"]


def normalize_totp_identifier(identifier: str) -> str:
    """E-mail identifiers match case-insensitively (as in Skyvern); others exactly, minus whitespace."""
    identifier = identifier.strip()
    return identifier.lower() if "@" in identifier else identifier


class TOTPCodeCreate(BaseModel):
    totp_identifier: str = Field(min_length=1, max_length=500)
    content: str = Field(min_length=1)
    task_id: str | None = None
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    source: str | None = Field(default=None, max_length=200)
    expired_at: datetime | None = None
    type: OtpType | None = None


class TOTPCode(BaseModel):
    totp_code_id: str
    totp_identifier: str
    code: str
    content: str
    organization_id: str
    task_id: str | None = None
    workflow_id: str | None = None
    workflow_run_id: str | None = None
    source: str | None = None
    expired_at: datetime | None = None
    type: OtpType | None = None
    otp_type: OtpType | None = None
    created_at: datetime
    modified_at: datetime
