"""Pause and resume a run: the API client (or the person on the run's page) holds control while the
agent waits at a step boundary. Extensions of Skyvern's API (docs/architecture.md, "Run control")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.api.deps import CallerDep, SessionDep
from app.runs import control
from app.schemas.run_control import PauseRunRequest, RunControlResponse

router = APIRouter(tags=["Runs"])


def _response(run_id: str, state: control.Control) -> RunControlResponse:
    return RunControlResponse(run_id=run_id, status=state.status, pause_requested=state.pause_requested,
                              held_by_key_id=state.holder_key_id, reason=state.reason)


@router.post("/v1/runs/{run_id}/pause", response_model=RunControlResponse)
def pause_run(run_id: str, session: SessionDep, caller: CallerDep,
              request: Annotated[PauseRunRequest | None, Body()] = None) -> RunControlResponse:
    holder = control.key_id(session, caller.api_key) or ""
    state = control.take_control(session, caller.organization_id, run_id, holder,
                                 request.reason if request else None)
    return _response(run_id, state)


@router.post("/v1/runs/{run_id}/resume", response_model=RunControlResponse)
def resume_run(run_id: str, session: SessionDep, caller: CallerDep) -> RunControlResponse:
    holder = control.key_id(session, caller.api_key) or ""
    return _response(run_id, control.give_back(session, caller.organization_id, run_id, holder))
