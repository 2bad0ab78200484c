"""Workflow ("agent") definitions: create, read, list, update (a new version), delete.

A workflow is a permanent id (`wpid_…`) over numbered versions; each version is one `workflows` row
(`w_…`) holding the author's definition as validated (app/workflows/validation.py). Updates never
change a row: they add the next version, so runs started on an older version keep reading it.
Deleting marks every version deleted; deleted workflows are not listed, read or run.

For code built on top (schedules, folders): `require_workflow(session, org, wpid)` is the one lookup of
the current version (LookupError subclass UnknownWorkflow → 404), `workflow_response(row)` the one
response shape; `folder_id` is a column of every version, carried over by updates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Workflow as WorkflowRow
from app.db.models import utcnow
from app.platform.proxies import proxy_route
from app.platform.settings import Settings
from app.profiles.service import find_profile
from app.runs import ids
from app.schemas.runs import normalize_http_url
from app.schemas.workflows import (
    Workflow,
    WorkflowCreateYAMLRequest,
    WorkflowDefinition,
    WorkflowParameterYAML,
)
from app.scripts.keys import RUN_WITH
from app.workflows.templates import TemplateInvalid, names_in, render
from app.workflows.validation import WorkflowInvalid, output_names, parse_request


class UnknownWorkflow(LookupError):
    """No such workflow in the organization, or it was deleted (HTTP 404)."""

    def __init__(self, workflow_permanent_id: str, version: int | None = None) -> None:
        suffix = f" version {version}" if version is not None else ""
        super().__init__(f"Workflow not found {workflow_permanent_id}{suffix}")


class WorkflowVersionConflict(ValueError):
    """Another update of the same workflow was stored at the same moment (HTTP 409): retry."""


@dataclass(frozen=True)
class WorkflowFilter:
    search: str | None = None  # case-insensitive, in the title
    statuses: Sequence[str] = ()
    saved_tasks: bool | None = None  # True: only saved tasks; False: only workflows
    folder_id: str | None = None


def create_workflow(session: Session, settings: Settings, organization_id: str, body: dict[str, Any],
                    folder_id: str | None = None) -> WorkflowRow:
    request = _checked(session, settings, organization_id, body)
    row = WorkflowRow(id=ids.new_id(ids.WORKFLOW), workflow_permanent_id=ids.new_id(ids.WORKFLOW_PERMANENT),
                      organization_id=organization_id, version=1, folder_id=folder_id or request.folder_id,
                      **_columns(request))
    session.add(row)
    session.flush()
    return row


def update_workflow(session: Session, settings: Settings, organization_id: str, workflow_permanent_id: str,
                    body: dict[str, Any]) -> WorkflowRow:
    current = require_workflow(session, organization_id, workflow_permanent_id)
    request = _checked(session, settings, organization_id, body)
    row = WorkflowRow(id=ids.new_id(ids.WORKFLOW), workflow_permanent_id=workflow_permanent_id,
                      organization_id=organization_id, version=current.version + 1,
                      folder_id=request.folder_id or current.folder_id, **_columns(request))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise WorkflowVersionConflict(f"Workflow {workflow_permanent_id} was updated at the same time; "
                                      "retry the update") from None
    return row


def _checked(session: Session, settings: Settings, organization_id: str,
             body: dict[str, Any]) -> WorkflowCreateYAMLRequest:
    """Validated, and each setting either honoured by runs or refused here."""
    request = parse_request(body, settings.allow_code_blocks)
    proxy_route(settings, request.proxy_location)  # ProxyLocationRejected (400) when no proxy serves it
    if request.persist_browser_session:
        raise WorkflowInvalid("persist_browser_session: not supported; create a browser session "
                              "(POST /v1/browser_sessions) and pass its browser_session_id to each run")
    if request.run_with not in RUN_WITH:
        raise WorkflowInvalid(f"run_with: {request.run_with!r} is not one of {', '.join(RUN_WITH)}")
    _check_cache_key(request)
    for name in ("webhook_callback_url", "totp_verification_url"):
        try:
            normalize_http_url(getattr(request, name))
        except ValueError as exc:
            raise WorkflowInvalid(f"{name}: {exc}") from None
    profile_id = request.browser_profile_id
    if profile_id and find_profile(session, organization_id, profile_id) is None:
        raise WorkflowInvalid(f"browser_profile_id: Browser profile not found {profile_id}")
    return request


def _columns(request: WorkflowCreateYAMLRequest) -> dict[str, Any]:
    return {"title": request.title, "status": request.status,
            "definition": request.model_dump(mode="json", exclude={"folder_id"})}


def current_versions(organization_id: str) -> Select[WorkflowRow]:
    """The current version of each of the organization's workflows that is not deleted."""
    latest = (select(WorkflowRow.workflow_permanent_id, func.max(WorkflowRow.version).label("version"))
              .where(WorkflowRow.organization_id == organization_id, WorkflowRow.deleted_at.is_(None))
              .group_by(WorkflowRow.workflow_permanent_id).subquery())
    return select(WorkflowRow).join(latest, and_(
        WorkflowRow.workflow_permanent_id == latest.c.workflow_permanent_id,
        WorkflowRow.version == latest.c.version)).where(WorkflowRow.organization_id == organization_id)


def require_workflow(session: Session, organization_id: str, workflow_permanent_id: str,
                     version: int | None = None) -> WorkflowRow:
    """The current version (or the given one) of a workflow that is not deleted."""
    query = select(WorkflowRow).where(WorkflowRow.organization_id == organization_id,
                                      WorkflowRow.workflow_permanent_id == workflow_permanent_id,
                                      WorkflowRow.deleted_at.is_(None))
    query = query.where(WorkflowRow.version == version) if version is not None \
        else query.order_by(WorkflowRow.version.desc())
    row = session.scalars(query.limit(1)).first()
    if row is None:
        raise UnknownWorkflow(workflow_permanent_id, version)
    return row


def list_workflows(session: Session, organization_id: str, workflow_filter: WorkflowFilter, offset: int,
                   limit: int) -> Sequence[WorkflowRow]:
    query = current_versions(organization_id)
    if workflow_filter.search:
        query = query.where(WorkflowRow.title.ilike(f"%{escape_like(workflow_filter.search)}%", escape="\\"))
    if workflow_filter.statuses:
        query = query.where(WorkflowRow.status.in_(workflow_filter.statuses))
    if workflow_filter.folder_id is not None:
        query = query.where(WorkflowRow.folder_id == workflow_filter.folder_id)
    rows = session.scalars(query.order_by(WorkflowRow.created_at.desc(), WorkflowRow.id.desc())).all()
    if workflow_filter.saved_tasks is not None:  # a flag inside the definition: filtered here
        wanted = workflow_filter.saved_tasks
        rows = [row for row in rows if bool(row.definition.get("is_saved_task")) == wanted]
    return rows[offset:offset + limit]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_versions(session: Session, organization_id: str,
                  workflow_permanent_id: str) -> Sequence[WorkflowRow]:
    require_workflow(session, organization_id, workflow_permanent_id)
    return session.scalars(select(WorkflowRow).where(
        WorkflowRow.organization_id == organization_id,
        WorkflowRow.workflow_permanent_id == workflow_permanent_id,
        WorkflowRow.deleted_at.is_(None)).order_by(WorkflowRow.version)).all()


def delete_workflow(session: Session, organization_id: str, workflow_permanent_id: str) -> None:
    now = utcnow()
    for row in list_versions(session, organization_id, workflow_permanent_id):
        row.deleted_at = now


def _check_cache_key(request: WorkflowCreateYAMLRequest) -> None:
    """cache_key may read the workflow's parameters (`{{ region }}`) and nothing else."""
    parameters = {parameter.key for parameter in request.workflow_definition.parameters
                  if isinstance(parameter, WorkflowParameterYAML)}
    try:
        unknown = sorted(names_in(request.cache_key or "") - parameters)
    except TemplateInvalid as exc:
        raise WorkflowInvalid(f"cache_key: {exc}") from None
    if unknown:
        raise WorkflowInvalid(f"cache_key: {', '.join(map(repr, unknown))} is not a parameter of this "
                              f"workflow (its parameters: {', '.join(sorted(parameters)) or 'none'})")


def run_cache_key(spec: WorkflowCreateYAMLRequest, workflow_permanent_id: str,
                  parameters: dict[str, Any]) -> str:
    """The scripts a run_with "code" run shares: its cache_key rendered over the run's parameters (each
    agent block adds its label); the workflow's id when it has none or "default"."""
    if not spec.cache_key or spec.cache_key == "default":
        return workflow_permanent_id
    key = f"{workflow_permanent_id}/{render(spec.cache_key, parameters)}"
    return key if len(key) <= 400 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def definition_of(row: WorkflowRow) -> WorkflowCreateYAMLRequest:
    """The stored definition as models (it was validated when stored)."""
    return WorkflowCreateYAMLRequest.model_validate(row.definition)


# --- the response shape -----------------------------------------------------------------------------

def workflow_response(row: WorkflowRow) -> Workflow:
    spec = dict(row.definition)
    definition = dict(spec.pop("workflow_definition"))
    stamps = {"workflow_id": row.id, "created_at": row.created_at, "modified_at": row.modified_at}
    parameters = [_parameter_out(parameter, index, row, stamps)
                  for index, parameter in enumerate(definition.pop("parameters"))]
    by_key = {parameter["key"]: parameter for parameter in parameters}
    for parameter in parameters:  # a context parameter shows its source, as Skyvern's response does
        if parameter.get("parameter_type") == "context":
            parameter["source"] = by_key[parameter["source_parameter_key"]]
    blocks = [_block_out(block, row, stamps) for block in definition.pop("blocks")]
    definition["version"] = row.version
    return Workflow.model_validate({
        **{name: value for name, value in spec.items() if name in Workflow.model_fields},
        "workflow_id": row.id, "agent_id": row.workflow_permanent_id, "organization_id": row.organization_id,
        "workflow_permanent_id": row.workflow_permanent_id, "version": row.version,
        "is_saved_task": bool(spec.get("is_saved_task")), "folder_id": row.folder_id,
        "workflow_definition": WorkflowDefinition(parameters=parameters, blocks=blocks, **definition),
        "created_at": row.created_at, "modified_at": row.modified_at, "deleted_at": row.deleted_at,
    })


def _parameter_out(parameter: dict[str, Any], index: int, row: WorkflowRow,
                   stamps: dict[str, Any]) -> dict[str, Any]:
    kind = parameter.get("parameter_type", "workflow")
    id_field = {"workflow": "workflow_parameter_id", "output": "output_parameter_id",
                "credential": "credential_parameter_id"}.get(kind)
    out = {**parameter, **stamps} if id_field else dict(parameter)
    if id_field:
        out[id_field] = f"{id_field.removesuffix('_id')}_{row.id}_{index}"
    return out


def _block_out(block: dict[str, Any], row: WorkflowRow, stamps: dict[str, Any]) -> dict[str, Any]:
    output_key = output_names(block["label"])[0]
    # unset fields are left out: some are lists in the response schema that never take null
    out = {key: value for key, value in block.items() if value is not None}
    out["output_parameter"] = {"parameter_type": "output", "key": output_key,
                               "output_parameter_id": f"op_{row.id}_{block['label']}", **stamps}
    if "loop_blocks" in block:
        out["loop_blocks"] = [_block_out(child, row, stamps) for child in block["loop_blocks"]]
    if block.get("block_type") == "send_email":  # the spec's SendEmailBlock names where SMTP comes from
        for part in ("host", "port", "username", "password"):
            out[f"smtp_{part}"] = {"parameter_type": "aws_secret", "key": f"smtp_{part}",
                                   "aws_secret_parameter_id": f"asp_{row.id}_{block['label']}_{part}",
                                   "aws_key": f"WAYFARER_SMTP_{part.upper()}", **stamps}
    return out
