"""Folders (`fld_`): create, list, get, update, delete, and `PUT /v1/agents/{wpid}/folder` (also under the
older `/v1/workflows/{wpid}/folder`, hidden from the schema)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.api.deps import CallerDep, SessionDep
from app.schemas.folders import Folder, FolderCreate, FolderUpdate, UpdateWorkflowFolderRequest
from app.schemas.workflows import Workflow
from app.workflows import folders
from app.workflows.definitions import workflow_response

router = APIRouter(tags=["Workflows"])

FolderId = Annotated[str, Path(description="Folder ID", examples=["fld_123"])]


@router.post("/v1/folders", response_model=Folder)
def create_folder(request: FolderCreate, session: SessionDep, caller: CallerDep) -> Folder:
    row = folders.create_folder(session, caller.organization_id, request)
    return folders.folder_responses(session, caller.organization_id, [row])[0]


@router.get("/v1/folders", response_model=list[Folder])
def get_folders(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=500, description="Number of folders per page")] = 100,
    search: Annotated[str | None, Query(max_length=500,
                                        description="Search folders by title or description")] = None,
) -> list[Folder]:
    rows = folders.list_folders(session, caller.organization_id, search, (page - 1) * page_size, page_size)
    return folders.folder_responses(session, caller.organization_id, rows)


@router.get("/v1/folders/{folder_id}", response_model=Folder)
def get_folder(folder_id: FolderId, session: SessionDep, caller: CallerDep) -> Folder:
    row = folders.require_folder(session, caller.organization_id, folder_id)
    return folders.folder_responses(session, caller.organization_id, [row])[0]


@router.put("/v1/folders/{folder_id}", response_model=Folder)
def update_folder(folder_id: FolderId, request: FolderUpdate, session: SessionDep,
                  caller: CallerDep) -> Folder:
    row = folders.update_folder(session, caller.organization_id, folder_id, request)
    return folders.folder_responses(session, caller.organization_id, [row])[0]


@router.delete("/v1/folders/{folder_id}")
def delete_folder(
    folder_id: FolderId, session: SessionDep, caller: CallerDep,
    delete_workflows: Annotated[bool, Query(
        description="If true, also delete all workflows in this folder")] = False,
) -> dict[str, Any]:
    folders.delete_folder(session, caller.organization_id, folder_id, delete_workflows)
    return {"status": "deleted", "folder_id": folder_id, "workflows_deleted": delete_workflows}


def update_workflow_folder(
    workflow_permanent_id: Annotated[str, Path(description="Workflow permanent ID", examples=["wpid_123"])],
    request: UpdateWorkflowFolderRequest, session: SessionDep, caller: CallerDep,
) -> Workflow:
    row = folders.move_workflow(session, caller.organization_id, workflow_permanent_id, request.folder_id)
    return workflow_response(row)


for prefix, listed in (("/v1/agents", True), ("/v1/workflows", False)):
    router.add_api_route(f"{prefix}/{{workflow_permanent_id}}/folder", update_workflow_folder,
                         methods=["PUT"], response_model=Workflow, include_in_schema=listed)
