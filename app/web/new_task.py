"""The new-task form: it creates the run through the same service call as POST /v1/run/tasks."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.api.deps import DispatcherDep, SessionDep, SettingsDep
from app.db.models import Run
from app.dispatch import QueueUnavailable
from app.platform.limits.quotas import OrgLimitReached
from app.runs import service
from app.schemas.runs import TaskRunRequest
from app.sessions import service as sessions
from app.sessions.lifecycle import UnknownBrowserSession
from app.web.auth import FormViewerDep, Viewer, ViewerDep
from app.web.render import page, pretty_json

router = APIRouter(include_in_schema=False)

ENGINES = ("skyvern-1.0", "skyvern-2.0", "skyvern-3.0")
FIELDS = ("prompt", "url", "title", "data_extraction_schema", "max_steps", "engine", "webhook_url",
          "browser_session_id")


def _prefill(run: Run) -> dict[str, str]:
    """The form filled in from an earlier run ("run again")."""
    schema = run.run_request.get("data_extraction_schema")
    max_steps = run.run_request.get("max_steps")
    return {"prompt": run.prompt, "url": run.url or "", "title": run.title or "",
            "data_extraction_schema": "" if schema is None else schema if isinstance(schema, str)
            else pretty_json(schema),
            "max_steps": str(max_steps) if max_steps else "", "engine": run.engine,
            "webhook_url": run.webhook_url or "", "browser_session_id": run.browser_session_id or ""}


def parse_task_form(form: dict[str, str]) -> tuple[TaskRunRequest | None, dict[str, str]]:
    """The request the form describes, or the problems with it by field name."""
    data: dict[str, Any] = {name: value.strip() for name, value in form.items() if value.strip()}
    errors: dict[str, str] = {}
    if "data_extraction_schema" in data:
        try:
            data["data_extraction_schema"] = json.loads(data["data_extraction_schema"])
        except json.JSONDecodeError as exc:
            errors["data_extraction_schema"] = (f"This is not valid JSON: {exc.msg} (line {exc.lineno}, "
                                                f"column {exc.colno}).")
    if errors:
        return None, errors
    try:
        return TaskRunRequest.model_validate(data), {}
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "prompt"
            errors.setdefault(name, error["msg"].removeprefix("Value error, "))
        return None, errors


def _form_page(request: Request, viewer: Viewer, session: SessionDep, form: dict[str, str],
               errors: dict[str, str] | None = None, error: str | None = None,
               status_code: int = 200) -> Response:
    active_sessions = sessions.active_sessions(session, viewer.organization_id)
    return page(request, "new_task.html", viewer, status_code=status_code, form=form, errors=errors or {},
                error=error, engines=ENGINES, sessions=active_sessions)


@router.get("/runs/new")
def new_task_form(request: Request, viewer: ViewerDep, session: SessionDep,
                  from_run: Annotated[str, Query(alias="from")] = "",
                  browser_session_id: str = "") -> Response:
    """An empty form, or one filled in from the run named by ?from= ("run again")."""
    earlier = service.find_run(session, viewer.organization_id, from_run) if from_run else None
    form = _prefill(earlier) if earlier else dict.fromkeys(FIELDS, "")
    if browser_session_id:
        form["browser_session_id"] = browser_session_id
    return _form_page(request, viewer, session, form)


@router.post("/runs/new")
def create_task(request: Request, viewer: FormViewerDep, session: SessionDep, settings: SettingsDep,
                dispatcher: DispatcherDep, prompt: Annotated[str, Form()] = "",
                url: Annotated[str, Form()] = "", title: Annotated[str, Form()] = "",
                data_extraction_schema: Annotated[str, Form()] = "", max_steps: Annotated[str, Form()] = "",
                engine: Annotated[str, Form()] = "", webhook_url: Annotated[str, Form()] = "",
                browser_session_id: Annotated[str, Form()] = "") -> Response:
    form = {"prompt": prompt, "url": url, "title": title, "data_extraction_schema": data_extraction_schema,
            "max_steps": max_steps, "engine": engine, "webhook_url": webhook_url,
            "browser_session_id": browser_session_id}
    task, errors = parse_task_form(form)
    if task is None:
        return _form_page(request, viewer, session, form, errors, status_code=400)
    try:
        run = service.create_task_run(session, settings, dispatcher, viewer.organization_id, task,
                                      viewer.api_key)
    except service.RunRejected as exc:
        return _form_page(request, viewer, session, form, error=str(exc), status_code=exc.status_code)
    except service.TextTooLong as exc:
        return _form_page(request, viewer, session, form, error=str(exc), status_code=422)
    except UnknownBrowserSession as exc:
        return _form_page(request, viewer, session, form, error=str(exc), status_code=404)
    except OrgLimitReached as exc:
        return _form_page(request, viewer, session, form, error=str(exc), status_code=429)
    except QueueUnavailable as exc:
        return _form_page(request, viewer, session, form, error=str(exc), status_code=503)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)
