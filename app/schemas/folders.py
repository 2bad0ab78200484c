"""Folders (`fld_`) that group workflows: Skyvern's FolderCreate, FolderUpdate, Folder and
UpdateWorkflowFolderRequest."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FolderCreate(BaseModel):
    title: str = Field(min_length=1, max_length=255, description="Folder title")
    description: str | None = Field(default=None, max_length=5000, description="Folder description")


class FolderUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=255, description="Folder title")
    description: str | None = Field(default=None, max_length=5000, description="Folder description")


class Folder(BaseModel):
    title: str
    description: str | None = None
    folder_id: str
    organization_id: str
    workflow_count: int = Field(default=0, description="Number of workflows in this folder")
    created_at: datetime
    modified_at: datetime


class UpdateWorkflowFolderRequest(BaseModel):
    folder_id: str | None = Field(default=None, max_length=64, description=(
        "Folder ID to assign workflow to. Set to null to remove from folder."))
