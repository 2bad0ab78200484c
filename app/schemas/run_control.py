"""Pause and resume a run (a Wayfarer extension of Skyvern's API: POST /v1/runs/{run_id}/pause, /resume)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PauseRunRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=2000,
                               description="Shown on the run's page while it is paused.")


class RunControlResponse(BaseModel):
    run_id: str
    status: str = Field(description="The run's status: `paused` once the agent stopped at a step boundary.")
    pause_requested: bool = Field(description="A pause was asked for; the agent stops at its next step "
                                              "boundary (no action starts while the run is paused).")
    held_by_key_id: str | None = Field(default=None, description="The id of the API key holding control.")
    reason: str | None = None
