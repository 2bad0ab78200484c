"""Credentials (`cred_`): create, list, read, update, delete; pushed TOTP codes; the login task.

POST /v1/credentials/totp: a user pushes a verification code the agent's verification_code action reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.credentials import vault
from app.db.models import Credential, TotpCode
from app.runs import ids, service
from app.runs.kinds import LOGIN_WORKFLOW
from app.runs.views import task_run_response
from app.schemas.credentials import (
    CreateCredentialRequest,
    CredentialResponse,
    LoginRequest,
    TOTPCode,
    TOTPCodeCreate,
    normalize_totp_identifier,
)
from app.schemas.runs import TaskRunRequest, WorkflowRunResponse

router = APIRouter(tags=["Credentials"])

SHORT_CODE_LENGTH = 10
_CODE_IN_TEXT = re.compile(r"(?<!\d)\d{4,8}(?!\d)")


def extract_code(content: str) -> str | None:
    """Short content is the code itself; in longer content (an e-mail, an SMS) the first 4-8 digit run."""
    text = content.strip()
    if len(text) <= SHORT_CODE_LENGTH:
        return text or None
    match = _CODE_IN_TEXT.search(text)
    return match[0] if match else None


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


@router.post("/v1/credentials/totp", response_model=TOTPCode)
@router.post("/api/v1/totp", response_model=TOTPCode, include_in_schema=False)  # older TOTP relays
def send_totp_code(request: TOTPCodeCreate, session: SessionDep, caller: CallerDep) -> TOTPCode:
    code = extract_code(request.content)
    if code is None:
        raise HTTPException(status_code=400, detail="No verification code found in content: send the code "
                                                    "itself, or text containing a 4 to 8 digit code.")
    if request.task_id and service.find_run(session, caller.organization_id, request.task_id) is None:
        raise HTTPException(status_code=400, detail=f"Unknown task_id {request.task_id}")
    otp_type = request.type or "totp"
    row = TotpCode(id=ids.new_id(ids.TOTP_CODE), organization_id=caller.organization_id,
                   totp_identifier=normalize_totp_identifier(request.totp_identifier), code=code,
                   content=request.content, task_id=request.task_id, workflow_run_id=request.workflow_run_id,
                   source=request.source, otp_type=otp_type,
                   expired_at=_naive_utc(request.expired_at))
    session.add(row)
    session.commit()
    return TOTPCode(totp_code_id=row.id, totp_identifier=row.totp_identifier, code=row.code,
                    content=row.content, organization_id=row.organization_id, task_id=row.task_id,
                    workflow_id=request.workflow_id, workflow_run_id=row.workflow_run_id, source=row.source,
                    expired_at=row.expired_at, type=otp_type, otp_type=otp_type,
                    created_at=row.created_at, modified_at=row.modified_at)


def _credential_or_404(session: SessionDep, caller: CallerDep, credential_id: str) -> Credential:
    row = vault.find_credential(session, caller.organization_id, credential_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"Credential not found {credential_id}")
    return row


@router.post("/v1/credentials", response_model=CredentialResponse, status_code=201)
def create_credential(request: CreateCredentialRequest, session: SessionDep, settings: SettingsDep,
                      caller: CallerDep) -> CredentialResponse:
    try:
        row = vault.create_credential(session, settings, caller.organization_id, request)
    except vault.InvalidCredential as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return vault.credential_response(row)


@router.get("/v1/credentials", response_model=list[CredentialResponse])
def get_credentials(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,  # the offset must fit in a bigint
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    credential_type: Annotated[str | None, Query()] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> list[CredentialResponse]:
    rows = vault.list_credentials(session, caller.organization_id, page, page_size, credential_type, search)
    return [vault.credential_response(row) for row in rows]


@router.get("/v1/credentials/{credential_id}", response_model=CredentialResponse)
def get_credential(credential_id: str, session: SessionDep, caller: CallerDep) -> CredentialResponse:
    return vault.credential_response(_credential_or_404(session, caller, credential_id))


@router.post("/v1/credentials/{credential_id}/update", response_model=CredentialResponse)
def update_credential(credential_id: str, request: CreateCredentialRequest, session: SessionDep,
                      settings: SettingsDep, caller: CallerDep) -> CredentialResponse:
    row = _credential_or_404(session, caller, credential_id)
    try:
        vault.update_credential(session, settings, row, request)
    except vault.InvalidCredential as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return vault.credential_response(row)


@router.post("/v1/credentials/{credential_id}/delete", status_code=204)
def delete_credential(credential_id: str, session: SessionDep, caller: CallerDep) -> Response:
    session.delete(_credential_or_404(session, caller, credential_id))
    session.commit()
    return Response(status_code=204)


LOGIN_GOAL = (
    "Log in to this website with the stored credential. Type {username} into the username (or e-mail) "
    "field and {password} into the password field exactly as written here: they are placeholders the "
    "browser fills with the real values when typing. Then submit the form. If the site asks for a "
    "one-time, 2FA or verification code, use the verification_code tool on the code field and submit "
    "it. Call complete as soon as the page shows that you are logged in; terminate if the site rejects "
    "the credential."
)


def start_workflow_run(session: SessionDep, settings: SettingsDep, caller: CallerDep,
                       dispatcher: DispatcherDep, links: LinksDep, request: TaskRunRequest,
                       workflow: service.OneOffWorkflow) -> WorkflowRunResponse:
    """Create a login/download_files run: a task run reported as a one-off workflow run."""
    try:
        run = service.create_task_run(session, settings, dispatcher, caller.organization_id, request,
                                      caller.api_key, workflow)
    except service.RunRejected as exc:
        raise HTTPException(status_code=exc.status_code, detail=str(exc)) from exc
    except service.QueueUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    response = task_run_response(session, run, links, settings, artifacts=[])
    assert isinstance(response, WorkflowRunResponse)
    return response


@router.post("/v1/run/tasks/login", response_model=WorkflowRunResponse, tags=["Agent"])
def login(request: LoginRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
          dispatcher: DispatcherDep, links: LinksDep) -> WorkflowRunResponse:
    if request.credential_type != "skyvern":
        raise HTTPException(status_code=400, detail=(
            f"credential_type {request.credential_type!r} is not configured here: this server keeps "
            "credentials in its own vault; store one with POST /v1/credentials and use "
            "credential_type 'skyvern' with its credential_id."))
    if not request.credential_id:
        raise HTTPException(status_code=400,
                            detail="credential_id is required when credential_type is 'skyvern'.")
    if not request.url:
        raise HTTPException(status_code=400, detail="url is required: the page to log in on.")
    credential = _credential_or_404(session, caller, request.credential_id)
    if credential.credential_type != "password":
        raise HTTPException(status_code=400, detail=(
            f"credential_id {credential.id} is a {credential.credential_type} credential; "
            "login needs a password credential."))
    goal = LOGIN_GOAL.format(username=vault.placeholder("username"), password=vault.placeholder("password"))
    if request.prompt:
        goal += f"\nAdditional instructions: {request.prompt}"
    task = request.task_request(
        goal, f"Login with {credential.name}",
        totp_identifier=request.totp_identifier or credential.public.get("totp_identifier"))
    workflow = service.OneOffWorkflow(LOGIN_WORKFLOW, {
        "credential_type": request.credential_type, "credential_id": credential.id,
        "user_prompt": request.prompt})
    return start_workflow_run(session, settings, caller, dispatcher, links, task, workflow)
