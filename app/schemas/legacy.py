"""Skyvern's legacy task API (/api/v1/tasks): TaskRequest in, TaskResponse out."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.schemas.runs import HttpUrlField, KeepsUrlAsSent, normalize_http_url


class TaskRequest(KeepsUrlAsSent):
    model_config = ConfigDict(extra="ignore")

    url: Annotated[str, AfterValidator(normalize_http_url)]
    navigation_goal: str | None = None
    data_extraction_goal: str | None = None
    navigation_payload: dict[str, Any] | list[Any] | str | None = None
    title: str | None = None
    webhook_callback_url: HttpUrlField = None
    totp_verification_url: HttpUrlField = None
    totp_identifier: str | None = Field(default=None, max_length=500)
    proxy_location: str | dict[str, Any] | None = None
    extracted_information_schema: dict[str, Any] | list[Any] | str | None = None
    error_code_mapping: dict[str, str] | None = None
    extra_http_headers: dict[str, str] | None = None
    browser_session_id: str | None = None

    def prompt(self) -> str | None:
        """The goals and payload as one prompt for the agent; None when there is no goal at all."""
        parts = [self.navigation_goal or ""]
        if self.data_extraction_goal:
            parts.append(f"Extract: {self.data_extraction_goal}")
        if self.navigation_payload not in (None, "", {}, []):
            payload = self.navigation_payload if isinstance(self.navigation_payload, str) \
                else json.dumps(self.navigation_payload, ensure_ascii=False)
            parts.append(f"Use this data where the page asks for it: {payload}")
        prompt = "\n".join(part for part in parts if part).strip()
        return prompt if (self.navigation_goal or self.data_extraction_goal) else None


class CreateTaskResponse(BaseModel):
    task_id: str


class TaskResponse(BaseModel):
    """The legacy view of a run: the webhook payload's legacy fields plus the request it was made from."""

    model_config = ConfigDict(extra="allow")

    request: dict[str, Any]
    task_id: str
    status: str
    created_at: datetime
    modified_at: datetime
