"""Who steers a run: a person (or an API client) takes control, the agent pauses at its next step
boundary, and control is given back. Status changes go through lifecycle; every hand-over is recorded
(app.runs.handover) with the API key's id, never the key. The worker's side of a pause is in
app.runs.handover too, which the worker imports without the API's services.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.db.models import Run
from app.runs import lifecycle
from app.runs.handover import CONTROL_GIVEN_BACK, CONTROL_TAKEN, MAX_REASON_CHARS, record
from app.runs.lifecycle import ControlHeld, InvalidTransition, RunStatus
from app.runs.service import UnknownRun, find_run


class ControlRefused(Exception):
    """The run cannot change hands now (ended, being canceled, or held by someone else): a 409."""


@dataclass(frozen=True)
class Control:
    """A run's control state as a page or an API client sees it."""

    status: str
    paused: bool  # the agent stopped at a step boundary: input reaches the page
    pause_requested: bool
    holder_key_id: str | None
    reason: str | None


def control_of(run: Run) -> Control:
    return Control(run.status, run.status == RunStatus.paused, bool(run.pause_requested),
                   run.control_key_id, run.pause_reason)


def take_control(session: Session, organization_id: str, run_id: str, holder: str,
                 reason: str | None = None) -> Control:
    """`holder` (an API key id) takes control: the run pauses at its next step boundary and stays
    paused until they give it back. Taking it again is harmless; another holder's run is refused."""
    run = _find(session, organization_id, run_id)
    try:
        lifecycle.request_pause(session, run_id, holder, reason[:MAX_REASON_CHARS] if reason else None)
    except ControlHeld:
        raise ControlRefused(f"Run {run_id} is controlled by another API key; it must be given back "
                             "first.") from None
    except InvalidTransition as exc:
        raise ControlRefused(f"Run {run_id} is {exc.current}; only a queued, running or paused run can "
                             "be paused.") from None
    if run.control_key_id != holder:
        record(session, run_id, CONTROL_TAKEN, holder, reason)
    return _committed(session, run)


def give_back(session: Session, organization_id: str, run_id: str, holder: str) -> Control:
    """Resume a paused run (or withdraw a pause not reached yet); refused when another key holds it."""
    run = _find(session, organization_id, run_id)
    try:
        resumed = lifecycle.resume(session, run_id, holder)
    except ControlHeld:
        raise ControlRefused(f"Run {run_id} is controlled by another API key; only it can give "
                             "control back.") from None
    if not resumed and run.status not in (RunStatus.queued, RunStatus.running, RunStatus.paused):
        raise ControlRefused(f"Run {run_id} is {run.status}; only a paused run can be resumed.")
    if resumed:
        record(session, run_id, CONTROL_GIVEN_BACK, holder)
    return _committed(session, run)


def _committed(session: Session, run: Run) -> Control:
    session.commit()
    session.refresh(run)
    return control_of(run)


def _find(session: Session, organization_id: str, run_id: str) -> Run:
    run = find_run(session, organization_id, run_id)
    if run is None:
        raise UnknownRun(run_id)
    return run
