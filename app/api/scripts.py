"""Scripts (`s_`, run_with "code"): list, read with versions and files, deploy a new version, download the
standalone Python file, delete (clears the cache key). docs/replay.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import CallerDep, SessionDep
from app.schemas.scripts import CreateScriptResponse, DeployScriptRequest, Script
from app.scripts import service as scripts
from app.scripts.views import created_response, script_response

router = APIRouter(tags=["Scripts"])


@router.get("/v1/scripts", response_model=list[Script])
def get_scripts(session: SessionDep, caller: CallerDep,
                page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                page_size: Annotated[int, Query(ge=1, le=100)] = 10) -> list[Script]:
    return [script_response(script, revision)
            for script, revision in scripts.list_scripts(session, caller.organization_id, page, page_size)]


@router.get("/v1/scripts/{script_id}", response_model=Script)
def get_script(script_id: str, session: SessionDep, caller: CallerDep) -> Script:
    script = scripts.require_script(session, caller.organization_id, script_id)
    return script_response(script, scripts.latest_revision(session, script.id), session=session)


@router.post("/v1/scripts/{script_id}/deploy", response_model=CreateScriptResponse)
def deploy_script(script_id: str, request: DeployScriptRequest, session: SessionDep,
                  caller: CallerDep) -> CreateScriptResponse:
    files = [scripts.NewFile(file.path, scripts.decode_content(file.path, file.content, file.encoding),
                             file.mime_type) for file in request.files]
    revision = scripts.deploy(session, caller.organization_id, script_id, files)
    return created_response(revision, scripts.revision_files(session, revision.id))


@router.get("/v1/scripts/{script_id}/download", response_class=Response,
            responses={200: {"content": {"text/x-python": {}}}})
def download_script(script_id: str, session: SessionDep, caller: CallerDep,
                    version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    revision, file = scripts.file_of(session, caller.organization_id, script_id, scripts.MAIN_PY, version)
    filename = f"{script_id}_v{revision.version}.py"
    return Response(file.content, media_type="text/x-python",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.delete("/v1/scripts/{script_id}", status_code=204)
def delete_script(script_id: str, session: SessionDep, caller: CallerDep) -> Response:
    scripts.delete_script(session, caller.organization_id, script_id)
    return Response(status_code=204)
