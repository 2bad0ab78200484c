"""Rendering the viewer's pages: the Jinja2 templates, the words and formats they show, the error pages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.db.models import Run, utcnow
from app.runs.lifecycle import FINAL, RunStatus
from app.web.auth import SignInRequired, Viewer, viewer_identity

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Everything a page loads comes from this origin; artifacts too (/v1/artifacts/…/content).
_HEADERS = {
    # inline <style> is allowed (a partial may carry its own), inline script never
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# (label, what it means): shown beside each other, so no colour is needed to tell statuses apart
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "created": ("Created", "The run was accepted and is about to be queued."),
    "queued": ("Queued", "The run waits for a free browser."),
    "running": ("Running", "The agent is working on the task."),
    "paused": ("Waiting for a person", "The agent has stopped and waits for a person to act."),
    "completed": ("Completed", "The agent reached the goal."),
    "failed": ("Failed", "An error stopped the run."),
    "terminated": ("Stopped by the agent", "The agent decided the goal cannot be reached."),
    "timed_out": ("Timed out", "The run used up its steps or its time."),
    "canceled": ("Canceled", "Someone canceled the run."),
}
STATUS_MARKS = {"completed": "✓", "failed": "✗", "terminated": "■", "timed_out": "◔", "canceled": "⊘",
                "paused": "‖", "running": "▶", "queued": "…", "created": "…"}
RUN_TYPES = {"task_v1": "Task (skyvern-1.0)", "task_v2": "Task (skyvern-2.0)",
             "task_v3": "Task (skyvern-3.0)", "workflow_run": "Workflow run"}
_FINAL = frozenset(status.value for status in FINAL)


def is_active(status: str) -> bool:
    return status not in _FINAL


def can_cancel(status: str) -> bool:
    return status in (RunStatus.created, RunStatus.queued, RunStatus.running, RunStatus.paused)


def status_label(status: str) -> str:
    return STATUS_WORDS.get(status, (status.replace("_", " ").capitalize(), ""))[0]


def status_meaning(status: str) -> str:
    return STATUS_WORDS.get(status, ("", ""))[1]


def format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def format_seconds(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def run_duration(run: Run) -> str:
    """From start to end (or to now while it runs); nothing before it starts."""
    if run.started_at is None:
        return "—"
    return format_seconds(((run.finished_at or utcnow()) - run.started_at).total_seconds())


def format_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def as_table(value: Any) -> tuple[list[str], list[list[Any]]] | None:
    """(columns, rows) when the value is a non-empty list of objects, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        return None
    columns = list(dict.fromkeys(key for item in value for key in item))
    return columns, [[item.get(column) for column in columns] for item in value]


def cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else compact_json(value)


def artifact_path(artifact_id: str) -> str:
    """Same-origin link to an artifact's bytes; the page's session cookie authorizes it."""
    return f"/v1/artifacts/{artifact_id}/content"


templates.env.globals.update(status_label=status_label, status_meaning=status_meaning, is_active=is_active,
                             can_cancel=can_cancel, STATUS_WORDS=STATUS_WORDS, STATUS_MARKS=STATUS_MARKS,
                             RUN_TYPES=RUN_TYPES, artifact_path=artifact_path, as_table=as_table)
templates.env.filters.update(time=format_time, duration=run_duration, bytes=format_bytes,
                             pretty_json=pretty_json, compact_json=compact_json, cell=cell)


def page(request: Request, name: str, viewer: Viewer | None, status_code: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A rendered template with the viewer (and its CSRF token) in its context and the page headers."""
    return templates.TemplateResponse(request, name, {"viewer": viewer, **context}, status_code=status_code,
                                      headers={**_HEADERS, **(headers or {})})


class PageNotFound(Exception):
    """Nothing of that id in the viewer's organization (whether it exists elsewhere or not)."""


async def not_found_page(request: Request, exc: Exception) -> Response:
    return page(request, "not_found.html", await viewer_identity(request), status_code=404, what=str(exc))


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    next_path = exc.next_path if isinstance(exc, SignInRequired) else "/runs"
    return RedirectResponse("/signin?" + urlencode({"next": next_path}), status_code=303)


async def form_refused_page(request: Request, exc: Exception) -> Response:
    return page(request, "form_refused.html", None, status_code=403)
