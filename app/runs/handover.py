"""The record of who steered a run (run_events: control taken and given back, a run waiting for a
person), and the worker's side of a pause: stopping at a step boundary, ask_human, an idle takeover
ending. `key_id` is an API key's id, never the key; None when the run itself did it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Run, RunEvent
from app.runs import lifecycle
from app.runs.ids import RUN_EVENT, new_id

CONTROL_TAKEN = "control_taken"
CONTROL_GIVEN_BACK = "control_given_back"
WAITING_FOR_PERSON = "waiting_for_person"
MAX_REASON_CHARS = 2000


def record(session: Session, run_id: str, kind: str, key: str | None, detail: str | None = None) -> None:
    session.add(RunEvent(id=new_id(RUN_EVENT), run_id=run_id, kind=kind, key_id=key, detail=detail))


def pause_for_person(session: Session, run_id: str, reason: str) -> None:
    """ask_human: the run waits, with `reason`, until someone takes control and gives it back."""
    lifecycle.request_pause(session, run_id, None, reason[:MAX_REASON_CHARS])
    record(session, run_id, WAITING_FOR_PERSON, None, reason[:MAX_REASON_CHARS])


def paused_at_boundary(session: Session, run_id: str, worker_id: str) -> bool:
    return lifecycle.pause(session, run_id, worker_id)


def end_idle_takeover(session: Session, run_id: str, idle_seconds: int) -> bool:
    """Give control back for a holder who sent no input for idle_seconds."""
    holder = session.scalar(select(Run.control_key_id).where(Run.id == run_id))
    if not lifecycle.resume(session, run_id):
        return False
    record(session, run_id, CONTROL_GIVEN_BACK, holder, f"no input for {idle_seconds} s: given back "
                                                        "automatically")
    return True
