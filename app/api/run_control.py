"""Pause and resume a run: the API client (or the person on the run's page) holds control while the
agent waits at a step boundary. Extensions of Skyvern's API (docs/architecture.md, "Run control")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from app.accounts.service import active_api_key
from app.api.deps import INVALID_CREDENTIALS, CallerDep, SessionDep
from app.runs import control
from app.schemas.run_control import PauseRunRequest, RunControlResponse

router = APIRouter(tags=["Runs"])


def _holder(session: SessionDep, caller: CallerDep) -> str:
    """The caller's API key id: who holds control (never the key itself)."""
    row = active_api_key(session, caller.api_key)
    if row is None:  # revoked since the key cache vouched for it
        raise HTTPException(status_code=403, detail=INVALID_CREDENTIALS)
    return row.id


def _response(run_id: str, state: control.Control) -> RunControlResponse:
    return RunControlResponse(run_id=run_id, status=state.status, pause_requested=state.pause_requested,
                              held_by_key_id=state.holder_key_id, reason=state.reason)


@router.post("/v1/runs/{run_id}/pause", response_model=RunControlResponse)
def pause_run(run_id: str, session: SessionDep, caller: CallerDep,
              request: Annotated[PauseRunRequest | None, Body()] = None) -> RunControlResponse:
    state = control.take_control(session, caller.organization_id, run_id, _holder(session, caller),
                                 request.reason if request else None)
    return _response(run_id, state)


@router.post("/v1/runs/{run_id}/resume", response_model=RunControlResponse)
def resume_run(run_id: str, session: SessionDep, caller: CallerDep) -> RunControlResponse:
    return _response(run_id, control.give_back(session, caller.organization_id, run_id,
                                               _holder(session, caller)))
