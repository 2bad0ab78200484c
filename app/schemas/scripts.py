"""The scripts API's models, as in Skyvern's spec (Script, DeployScriptRequest, CreateScriptResponse,
FileNode); `cache_key`, `versions` and `files` on a script are Wayfarer's extensions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ScriptFileCreate(BaseModel):
    path: str = Field(min_length=1, max_length=500, pattern=r"^[^/\\][^\\]*$")
    content: str = Field(max_length=5_000_000)
    encoding: Literal["base64", "utf-8"] = "base64"
    mime_type: str | None = Field(default=None, max_length=120)


class DeployScriptRequest(BaseModel):
    files: list[ScriptFileCreate] = Field(max_length=50)


class FileNode(BaseModel):
    type: str
    size: int | None = None
    mime_type: str | None = None
    content_hash: str | None = None
    created_at: datetime
    children: dict[str, FileNode] | None = None


class CreateScriptResponse(BaseModel):
    script_id: str
    version: int
    run_id: str | None = None
    file_count: int
    file_tree: dict[str, FileNode]
    created_at: datetime


class ScriptFile(BaseModel):
    """One file of a version, with its text (an extension)."""

    path: str
    content: str
    mime_type: str
    size: int
    content_hash: str


class ScriptVersion(BaseModel):
    """One version of a script (an extension)."""

    script_revision_id: str
    version: int
    run_id: str | None = None
    created_at: datetime


class Script(BaseModel):
    script_revision_id: str
    script_id: str
    organization_id: str
    run_id: str | None = None
    version: int
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None = None
    cache_key: str | None = None  # extension: the runs that replay it
    versions: list[ScriptVersion] | None = None  # extension, GET /v1/scripts/{id} only
    files: list[ScriptFile] | None = None  # extension: the newest version's files, GET /v1/scripts/{id} only
