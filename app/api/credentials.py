"""Credentials (`cred_`): create, list, read, update, delete; pushed TOTP codes; the login task.

POST /v1/credentials/totp: a user pushes a verification code the agent's verification_code action reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import CallerDep, DispatcherDep, LinksDep, SessionDep, SettingsDep
from app.credentials import totp, vault
from app.runs import one_off
from app.runs.views import workflow_run_response
from app.schemas.credentials import (
    CreateCredentialRequest,
    CredentialResponse,
    CredentialType,
    CredentialVaultType,
    LoginRequest,
    TOTPCode,
    TOTPCodeCreate,
)
from app.schemas.runs import WorkflowRunResponse

router = APIRouter(tags=["Credentials"])


@router.post("/v1/credentials/totp", response_model=TOTPCode)
@router.post("/api/v1/totp", response_model=TOTPCode, include_in_schema=False)  # older TOTP relays
def send_totp_code(request: TOTPCodeCreate, session: SessionDep, caller: CallerDep) -> TOTPCode:
    return totp.push_code(session, caller.organization_id, request)


@router.post("/v1/credentials", response_model=CredentialResponse, status_code=201)
def create_credential(request: CreateCredentialRequest, session: SessionDep, settings: SettingsDep,
                      caller: CallerDep) -> CredentialResponse:
    row = vault.create_credential(session, settings, caller.organization_id, request)
    return vault.credential_response(row)


@router.get("/v1/credentials", response_model=list[CredentialResponse])
def get_credentials(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,  # the offset must fit in a bigint
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    credential_type: Annotated[CredentialType | None, Query()] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    vault_type: Annotated[CredentialVaultType | None, Query()] = None,
) -> list[CredentialResponse]:
    if vault_type not in (None, "skyvern"):  # every credential here is in this server's own vault
        return []
    rows = vault.list_credentials(session, caller.organization_id, page, page_size, credential_type, search)
    return [vault.credential_response(row) for row in rows]


@router.get("/v1/credentials/{credential_id}", response_model=CredentialResponse)
def get_credential(credential_id: str, session: SessionDep, caller: CallerDep) -> CredentialResponse:
    return vault.credential_response(vault.require_credential(session, caller.organization_id, credential_id))


@router.post("/v1/credentials/{credential_id}/update", response_model=CredentialResponse)
def update_credential(credential_id: str, request: CreateCredentialRequest, session: SessionDep,
                      settings: SettingsDep, caller: CallerDep) -> CredentialResponse:
    row = vault.require_credential(session, caller.organization_id, credential_id)
    return vault.credential_response(vault.update_credential(session, settings, row, request))


@router.post("/v1/credentials/{credential_id}/delete", status_code=204)
def delete_credential(credential_id: str, session: SessionDep, caller: CallerDep) -> Response:
    vault.delete_credential(session, caller.organization_id, credential_id)
    return Response(status_code=204)


@router.post("/v1/run/tasks/login", response_model=WorkflowRunResponse, tags=["Agent"])
def login(request: LoginRequest, session: SessionDep, settings: SettingsDep, caller: CallerDep,
          dispatcher: DispatcherDep, links: LinksDep) -> WorkflowRunResponse:
    run = one_off.start_login(session, settings, dispatcher, caller.organization_id, caller.api_key, request)
    return workflow_run_response(session, run, links, settings)
