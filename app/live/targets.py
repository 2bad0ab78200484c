"""What a live view shows besides frames, per kind of target: a run (with its control state and the
viewer's commands) or a browser session. Another organization's target is simply not found (None)."""

from __future__ import annotations

from typing import Any

from app.db.engine import session_scope
from app.live.access import LiveViewer
from app.platform.settings import Settings
from app.runs import control
from app.runs.lifecycle import FINAL, RunStatus
from app.runs.service import UnknownRun, find_run
from app.sessions import lifecycle as session_lifecycle


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def session_topic(session_id: str) -> str:
    return f"session:{session_id}"


def run_status(settings: Settings, viewer: LiveViewer, run_id: str) -> dict[str, Any] | None:
    with session_scope(settings.database_url) as s:
        run = find_run(s, viewer.organization_id, run_id)
        if run is None:
            return None
        state = control.control_of(run)
        return {"type": "status", "kind": "run", "status": state.status, "paused": state.paused,
                "pause_requested": state.pause_requested, "held": state.holder_key_id is not None,
                "you_hold": state.holder_key_id == viewer.key_id, "reason": state.reason,
                "final": RunStatus(state.status) in FINAL}


def holds_paused_run(settings: Settings, viewer: LiveViewer, run_id: str) -> bool:
    """The viewer holds control of the run and the agent has stopped: their input may reach the page."""
    status = run_status(settings, viewer, run_id)
    return bool(status and status["paused"] and status["you_hold"])


def run_command(settings: Settings, viewer: LiveViewer, run_id: str, name: str) -> str | None:
    """A viewer's "take_control" or "give_back"; returns why it was refused, or None."""
    with session_scope(settings.database_url) as s:
        try:
            if name == "take_control":
                control.take_control(s, viewer.organization_id, run_id, viewer.key_id)
            elif name == "give_back":
                control.give_back(s, viewer.organization_id, run_id, viewer.key_id)
            else:
                return f"unknown command {name!r}"
        except (control.ControlRefused, UnknownRun) as exc:
            return str(exc)
    return None


def session_status(settings: Settings, viewer: LiveViewer, session_id: str) -> dict[str, Any] | None:
    with session_scope(settings.database_url) as s:
        row = session_lifecycle.find_session(s, viewer.organization_id, session_id)
        if row is None:
            return None
        return {"type": "status", "kind": "session", "status": row.status,
                "final": row.status not in session_lifecycle.ACTIVE}
