"""Workflow ("agent") definitions: create, list, get, update (a new version), versions, delete.

Every route answers under `/v1/agents…` (the spec's paths) and `/v1/workflows…` (the names older SDKs and
integrations still call; hidden from the schema).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from app.api.deps import CallerDep, SessionDep, SettingsDep
from app.schemas.workflows import Workflow, WorkflowRequest, WorkflowStatus
from app.workflows import definitions
from app.workflows.definitions import WorkflowFilter, workflow_response

router = APIRouter(tags=["Agents"])

# The request body: WorkflowRequest (json_definition / yaml_definition) or the definition itself.
DefinitionBody = Annotated[dict[str, Any], Body(openapi_examples={"yaml": {"value": WorkflowRequest(
    yaml_definition="title: Example\nworkflow_definition:\n  parameters: []\n  blocks:\n"
                    "    - block_type: goto_url\n      label: open\n      url: https://example.com\n"
).model_dump()}})]


def create_workflow(body: DefinitionBody, session: SessionDep, settings: SettingsDep, caller: CallerDep,
                    folder_id: str | None = None) -> Workflow:
    row = definitions.create_workflow(session, settings, caller.organization_id, body, folder_id)
    return workflow_response(row)


def get_workflows(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    only_saved_tasks: bool = False,
    only_workflows: bool = False,
    only_templates: bool = False,
    search_key: Annotated[str | None, Query(max_length=500)] = None,
    title: Annotated[str | None, Query(max_length=500)] = None,
    folder_id: str | None = None,
    status: Annotated[list[WorkflowStatus] | None, Query()] = None,
) -> list[Workflow]:
    if only_templates:  # this server has no template gallery
        return []
    saved_tasks = True if only_saved_tasks else (False if only_workflows else None)
    workflow_filter = WorkflowFilter(search=search_key or title, statuses=status or (),
                                     saved_tasks=saved_tasks, folder_id=folder_id)
    rows = definitions.list_workflows(session, caller.organization_id, workflow_filter,
                                      (page - 1) * page_size, page_size)
    return [workflow_response(row) for row in rows]


def get_workflow(workflow_permanent_id: str, session: SessionDep, caller: CallerDep,
                 version: Annotated[int | None, Query(ge=1)] = None) -> Workflow:
    return workflow_response(definitions.require_workflow(session, caller.organization_id,
                                                          workflow_permanent_id, version))


def get_workflow_versions(workflow_permanent_id: str, session: SessionDep,
                          caller: CallerDep) -> list[Workflow]:
    return [workflow_response(row)
            for row in definitions.list_versions(session, caller.organization_id, workflow_permanent_id)]


def update_workflow(workflow_id: str, body: DefinitionBody, session: SessionDep, settings: SettingsDep,
                    caller: CallerDep) -> Workflow:
    row = definitions.update_workflow(session, settings, caller.organization_id, workflow_id, body)
    return workflow_response(row)


def delete_workflow(workflow_id: str, session: SessionDep, caller: CallerDep) -> None:
    definitions.delete_workflow(session, caller.organization_id, workflow_id)


for prefix, listed in (("/v1/agents", True), ("/v1/workflows", False)):
    router.add_api_route(prefix, create_workflow, methods=["POST"], response_model=Workflow,
                         include_in_schema=listed)
    router.add_api_route(prefix, get_workflows, methods=["GET"], response_model=list[Workflow],
                         include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_permanent_id}}", get_workflow, methods=["GET"],
                         response_model=Workflow, include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_permanent_id}}/versions", get_workflow_versions,
                         methods=["GET"], response_model=list[Workflow], include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_id}}", update_workflow, methods=["POST", "PUT"],
                         response_model=Workflow, include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_id}}/delete", delete_workflow, methods=["POST"],
                         include_in_schema=listed)
    router.add_api_route(f"{prefix}/{{workflow_id}}", delete_workflow, methods=["DELETE"],
                         include_in_schema=False)
