"""Workflow schedules (`wfs_`): Skyvern's WorkflowScheduleUpsertRequest, WorkflowSchedule,
WorkflowScheduleResponse, WorkflowScheduleListResponse, OrganizationScheduleItem and
OrganizationScheduleListResponse, DeleteScheduleResponse."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WorkflowScheduleUpsertRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cron_expression: str = Field(max_length=200)
    timezone: str = Field(max_length=100)
    enabled: bool | None = True
    parameters: dict[str, Any] | None = None
    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="before")
    @classmethod
    def _only_cron(cls, data: Any) -> Any:
        """Newer SDKs can also send interval and one-time schedules; say so instead of 'field required'."""
        if isinstance(data, dict) and not data.get("cron_expression"):
            other = [name for name in ("interval_seconds", "run_at", "first_fire_at") if data.get(name)]
            if other:
                raise ValueError(f"{', '.join(other)}: only cron schedules are supported here; give a "
                                 "cron_expression (e.g. '*/15 * * * *' for every 15 minutes)")
        return data


class WorkflowSchedule(BaseModel):
    workflow_schedule_id: str
    organization_id: str
    workflow_permanent_id: str
    cron_expression: str
    timezone: str
    enabled: bool
    parameters: dict[str, Any] | None = None
    temporal_schedule_id: str | None = None  # Skyvern's execution backend; none here
    name: str | None = None
    description: str | None = None
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None = None


class WorkflowScheduleResponse(BaseModel):
    schedule: WorkflowSchedule
    next_runs: list[datetime] = []


class WorkflowScheduleListResponse(BaseModel):
    schedules: list[WorkflowSchedule]


class OrganizationScheduleItem(BaseModel):
    workflow_schedule_id: str
    organization_id: str
    workflow_permanent_id: str
    workflow_title: str
    cron_expression: str
    timezone: str
    enabled: bool
    parameters: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    next_run: datetime | None = None
    created_at: datetime
    modified_at: datetime


class OrganizationScheduleListResponse(BaseModel):
    schedules: list[OrganizationScheduleItem]
    total_count: int
    page: int
    page_size: int


class DeleteScheduleResponse(BaseModel):
    ok: bool
