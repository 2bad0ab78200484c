"""The runs list and one run's page, with its cancel, retry-webhook and (workflow runs') run-again buttons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.api.deps import DispatcherDep, SessionDep, SettingsDep
from app.runs import queries, service
from app.web.auth import FormViewerDep, ViewerDep
from app.web.render import PageNotFound, is_active, page
from app.webhooks.delivery import ReplayRefused
from app.workflows import runs as workflow_runs
from app.workflows.definitions import UnknownWorkflow

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
NOTICES = {
    "canceled": "The run was canceled.",
    "cancel-refused": "The run had already ended: there was nothing to cancel.",
    "webhook-delivered": "The webhook was sent again and its receiver accepted it.",
    "webhook-failed": "The webhook was sent again but its receiver did not accept it: see the attempts "
                      "below.",
    "webhook-refused": "This run has no webhook URL, so there was nothing to send.",
    "run-again-refused": "The workflow refused this run's request now (a parameter or credential may have "
                         "changed): the API's POST /v1/agents/runs/RUN_ID/retry says why.",
    "workflow-gone": "This run's workflow was deleted, so it cannot run again.",
}

@router.get("/runs")
def runs_page(request: Request, viewer: ViewerDep, session: SessionDep,
              page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
              status: str = "", run_type: str = "", q: str = "") -> Response:
    run_filter = queries.RunFilter(statuses=[status] if status else (),
                                   run_types=[run_type] if run_type else (), search=q.strip() or None)
    runs = queries.list_runs(session, viewer.organization_id, run_filter,
                             (page_number - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    shown = runs[:PAGE_SIZE]
    return page(request, "runs.html", viewer, runs=shown, page_number=page_number,
                has_next=len(runs) > PAGE_SIZE, status=status, run_type=run_type, q=q,
                refresh=page_number == 1 or any(is_active(run.status) for run in shown))  # new runs show up


def _no_such_run(run_id: str) -> PageNotFound:
    """The same answer for another organization's run as for a missing one."""
    return PageNotFound(f"There is no run {run_id} in your organization.")


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, viewer: ViewerDep, session: SessionDep,
             notice: str = "") -> Response:
    record = queries.run_record(session, viewer.organization_id, run_id)
    if record is None:
        raise _no_such_run(run_id)
    run = record.run
    return page(request, "run.html", viewer, record=record, run=run, notice=NOTICES.get(notice),
                refresh=is_active(run.status), live={"kind": "run", "id": run.id, "status": run.status})


def _back_to_run(run_id: str, notice: str) -> Response:
    return RedirectResponse(f"/runs/{run_id}?notice={notice}", status_code=303)


@router.post("/runs/{run_id}/cancel")
def cancel_run(run_id: str, viewer: FormViewerDep, settings: SettingsDep,
               dispatcher: DispatcherDep) -> Response:
    try:
        service.cancel_run(settings, viewer.organization_id, run_id)
    except service.UnknownRun as exc:
        raise _no_such_run(run_id) from exc
    except service.RunRejected:
        return _back_to_run(run_id, "cancel-refused")
    return _back_to_run(run_id, "canceled")


@router.post("/runs/{run_id}/retry_webhook")
def retry_webhook(run_id: str, viewer: FormViewerDep, settings: SettingsDep) -> Response:
    try:
        result = service.replay_webhook(settings, viewer.organization_id, run_id, None, viewer.api_key)
    except service.UnknownRun as exc:
        raise _no_such_run(run_id) from exc
    except ReplayRefused:
        return _back_to_run(run_id, "webhook-refused")
    delivered = result["error"] is None and 200 <= (result["status_code"] or 0) < 300
    return _back_to_run(run_id, "webhook-delivered" if delivered else "webhook-failed")


@router.post("/runs/{run_id}/run_again")
def run_workflow_again(run_id: str, viewer: FormViewerDep, session: SessionDep, settings: SettingsDep,
                       dispatcher: DispatcherDep) -> Response:
    """A workflow run again with the same request (the API's retry); a task runs again from the form."""
    try:
        run = workflow_runs.retry_workflow_run(session, settings, dispatcher, viewer.organization_id, run_id,
                                               viewer.api_key)
    except service.UnknownRun as exc:
        raise _no_such_run(run_id) from exc
    except UnknownWorkflow:
        return _back_to_run(run_id, "workflow-gone")
    except service.RunRejected:
        return _back_to_run(run_id, "run-again-refused")
    return RedirectResponse(f"/runs/{run.id}", status_code=303)
