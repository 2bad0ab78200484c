"""Run creation and cancellation as the API performs them (statuses change only via lifecycle)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.artifacts.uploads import find_uploads
from app.db.engine import session_scope
from app.db.models import BrowserSession, Run, utcnow
from app.dispatch import Dispatcher, DispatchUnavailable, QueueUnavailable
from app.platform.limits.quotas import check_org_can_queue
from app.platform.proxies import proxy_route
from app.platform.security import encrypt
from app.platform.settings import Settings
from app.platform.url_policy import literal_address_problem, parse_policy
from app.profiles.service import find_profile
from app.runs import ids, lifecycle
from app.runs.kinds import RUN_TYPES, WORKFLOW_RUN_TYPE
from app.runs.lifecycle import FINAL, RunStatus
from app.runs.warnings import creation_warnings
from app.schemas.credentials import normalize_totp_identifier
from app.schemas.runs import TaskRunRequest
from app.sessions.lifecycle import ACTIVE as ACTIVE_SESSION
from app.sessions.lifecycle import UnknownBrowserSession, find_session
from app.webhooks import delivery as webhooks

log = logging.getLogger(__name__)

FOREIGN_ENGINES = frozenset({"openai-cua", "anthropic-cua", "ui-tars", "yutori-navigator"})
DEFAULT_ENGINE = "skyvern-1.0"
CANCEL_WAIT_SECONDS = 5.0
MASKED = "********"
FORCED_CANCEL_REASON = ("The run was canceled at the user's request; its worker did not stop within "
                        f"{int(CANCEL_WAIT_SECONDS)} s, so the run was ended without it.")


class RunRejected(Exception):
    """The request is well-formed but cannot be run here: HTTP 400, or 404 when it names something the
    organization does not have (the message names the field)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class TextTooLong(ValueError):
    """A prompt or goal longer than WAYFARER_MAX_PROMPT_CHARS (HTTP 422, naming the field): it would be
    sent to the model on every step and returned on every poll of the run."""

    def __init__(self, field: str, length: int, limit: int) -> None:
        super().__init__(f"{field} is {length:,} characters long; this server accepts at most {limit:,} "
                         "(WAYFARER_MAX_PROMPT_CHARS).")
        self.field = field


def check_text_sizes(settings: Settings, fields: Mapping[str, str | None]) -> None:
    """TextTooLong for the first of `fields` (name -> what the client sent) over the limit."""
    limit = settings.max_prompt_chars
    for name, text in fields.items():
        if text is not None and len(text) > limit:
            raise TextTooLong(name, len(text), limit)


class UnknownRun(LookupError):
    """The organization has no such run (HTTP 404); `noun` is "Task" on the legacy routes."""

    def __init__(self, run_id: str, noun: str = "Run") -> None:
        super().__init__(f"{noun} not found {run_id}")


@dataclass(frozen=True)
class WorkflowSource:
    """What makes a run a workflow run (`wr_` id, run_type workflow_run): a one-off workflow (login,
    download_files: a task run reported as a workflow run) or a stored workflow's version (`version_id`
    set: the workflow engine runs its blocks; `workflow_id` is then the workflow's wpid_). `schedule_id`:
    the schedule whose slot starts the run (its trigger_type is then `scheduled`). `max_elapsed_time_minutes`:
    the run's time limit (the worker ends it timed_out then). `max_steps_override`: each agent block's
    step limit (workers/workflows/agent_blocks.py)."""

    workflow_id: str
    parameters: dict[str, Any]
    version_id: str | None = None
    schedule_id: str | None = None
    max_elapsed_time_minutes: int | None = None
    max_steps_override: int | None = None

    def run_request(self, task_request: dict[str, Any]) -> dict[str, Any]:
        """Skyvern's WorkflowRunRequest shape; a one-off's prompt and url go to the parameters."""
        prompt, url = task_request.pop("prompt"), task_request.pop("url", None)
        parameters = self.parameters if self.version_id else {**self.parameters, "prompt": prompt, "url": url}
        task_request.pop("engine", None)
        limit, steps = self.max_elapsed_time_minutes, self.max_steps_override
        return {"workflow_id": self.workflow_id, "parameters": parameters, **task_request,
                **({"max_elapsed_time_minutes": limit} if limit else {}),
                **({"max_steps_override": steps} if steps else {})}


def _check_url_policy(settings: Settings, request: TaskRunRequest) -> None:
    """A webhook_url / totp_url naming a denied IP is refused now; host names are checked when used."""
    policy = parse_policy(settings.url_policy)
    for name in ("webhook_url", "totp_url"):
        url = getattr(request, name)
        problem = literal_address_problem(url, policy) if url else None
        if problem:
            raise RunRejected(f"{name} {url} cannot be used: {problem}")


def _browser_session(session: Session, organization_id: str, session_id: str | None) -> BrowserSession | None:
    """The run's browser session (None: the run opens its own browser); 404 for a session the
    organization does not have, 400 for one that has ended."""
    if session_id is None:
        return None
    row = find_session(session, organization_id, session_id)
    if row is None:
        raise UnknownBrowserSession(session_id)
    if row.status not in ACTIVE_SESSION:
        raise RunRejected(f"Browser session {session_id} has ended (status {row.status}): "
                          "create a new session for this run.")
    return row


def _check_proxy(settings: Settings, request: TaskRunRequest, held: BrowserSession | None) -> None:
    """proxy_location has a proxy here (else ProxyLocationRejected) and applies to a browser the run
    opens: a session's browser already goes out through the session's proxy, the user's own
    (browser_address) the way it is set up."""
    route = proxy_route(settings, request.proxy_location)
    if request.proxy_location is None:
        return
    if request.browser_address:
        raise RunRejected("proxy_location cannot be combined with browser_address: the run drives your "
                          "own browser, which goes out the way it is set up.")
    if held is not None:
        session_route = proxy_route(settings, (held.options or {}).get("proxy_location"))
        if route != session_route:
            held_location = session_route.location if session_route else "none"
            raise RunRejected(f"proxy_location: browser session {held.id} goes out through proxy location "
                              f"{held_location}; a run in it uses the session's browser (leave "
                              "proxy_location unset).")


def _check_sources(session: Session, organization_id: str, request: TaskRunRequest) -> None:
    """The profile and uploaded files a run names exist for the organization (404 naming the field)."""
    if request.browser_profile_id:
        if request.browser_address:
            raise RunRejected("browser_profile_id cannot be combined with browser_address: a profile "
                              "starts a new browser context, a run on your browser uses its own.")
        if find_profile(session, organization_id, request.browser_profile_id) is None:
            raise RunRejected(f"browser_profile_id: Browser profile not found {request.browser_profile_id}",
                              status_code=404)
    if request.file_ids:
        found = {row.id for row in find_uploads(session, organization_id, request.file_ids)}
        missing = [file_id for file_id in request.file_ids if file_id not in found]
        if missing:
            raise RunRejected(f"file_ids: File not found {', '.join(missing)} (upload files with POST "
                              "/v1/upload_file)", status_code=404)


def create_task_run(session: Session, settings: Settings, dispatcher: Dispatcher, organization_id: str,
                    request: TaskRunRequest, api_key: str, workflow: WorkflowSource | None = None,
                    texts: Mapping[str, str | None] | None = None) -> Run:
    """Insert a queued run, commit it, then enqueue it. The run is committed exactly once: after that
    nothing here raises except QueueUnavailable, which deletes the run again. `texts`: the prompt-like
    fields as the client sent them, by name, whose size is capped (default: the request's prompt)."""
    check_text_sizes(settings, {"prompt": request.prompt} if texts is None else texts)
    check_org_can_queue(session, settings, organization_id)
    engine = request.engine or DEFAULT_ENGINE
    if engine in FOREIGN_ENGINES:
        raise RunRejected(f"Engine {engine!r} is not supported by this server; use skyvern-1.0, "
                          "skyvern-2.0 or skyvern-3.0 (they run on Wayfarer's own agent).")
    _check_url_policy(settings, request)
    held = _browser_session(session, organization_id, request.browser_session_id)
    _check_proxy(settings, request, held)
    _check_sources(session, organization_id, request)
    run_request = request.model_dump(exclude_none=True)
    run_request["engine"] = engine
    cdp_headers = request.cdp_connect_headers
    if cdp_headers:  # only the worker's handshake needs the values
        run_request["cdp_connect_headers"] = dict.fromkeys(cdp_headers, MASKED)
    if workflow is not None:
        run_request = workflow.run_request(run_request)
    now = utcnow()
    run = Run(
        id=ids.new_id(ids.WORKFLOW_RUN if workflow else ids.TASK), organization_id=organization_id,
        run_type=WORKFLOW_RUN_TYPE if workflow else RUN_TYPES[engine], engine=engine,
        status=RunStatus.queued.value, title=request.title, prompt=request.prompt, url=request.url,
        run_request=run_request, max_steps=request.max_steps or settings.default_max_steps,
        webhook_url=request.webhook_url,
        webhook_key_encrypted=encrypt(settings.resolved_secret_key(), api_key),
        totp_identifier=normalize_totp_identifier(request.totp_identifier)
        if request.totp_identifier else None, totp_url=request.totp_url,
        browser_session_id=request.browser_session_id, browser_profile_id=request.browser_profile_id,
        cdp_connect_headers_encrypted=encrypt(settings.resolved_secret_key(), json.dumps(cdp_headers))
        if cdp_headers else None,
        errors=creation_warnings(request.assumed_scheme_note()), step_count=0, created_at=now,
        modified_at=now, queued_at=now,
        workflow_id=workflow.version_id if workflow else None,
        workflow_permanent_id=workflow.workflow_id if workflow and workflow.version_id else None,
        workflow_schedule_id=workflow.schedule_id if workflow else None,
    )
    session.add(run)
    session.commit()
    try:
        dispatcher.enqueue(run.id, held.worker_queue if held else None)
    except DispatchUnavailable as exc:
        session.execute(delete(Run).where(Run.id == run.id))
        session.commit()
        raise QueueUnavailable("The run queue is unavailable, so the run was not created; "
                               "try again shortly.") from exc
    except Exception:  # the run is stored as queued: the sweeper dispatches it again
        log.exception("enqueue of run %s failed; it stays queued for the sweeper", run.id)
    return run


def find_run(session: Session, organization_id: str, run_id: str) -> Run | None:
    """The run if it belongs to the organization; another organization's run is simply not found."""
    query = select(Run).where(Run.id == run_id, Run.organization_id == organization_id)
    return session.scalars(query).first()


def require_run(session: Session, organization_id: str, run_id: str, noun: str = "Run") -> Run:
    """The organization's run; UnknownRun otherwise."""
    run = find_run(session, organization_id, run_id)
    if run is None:
        raise UnknownRun(run_id, noun)
    return run


def _require_run_exists(settings: Settings, organization_id: str, run_id: str, noun: str) -> None:
    with session_scope(settings.database_url) as s:
        require_run(s, organization_id, run_id, noun)


def cancel_run(settings: Settings, organization_id: str, run_id: str, noun: str = "Run") -> None:
    """Cancel one run (see cancel_runs); UnknownRun, or RunRejected when it has already ended."""
    _require_run_exists(settings, organization_id, run_id, noun)
    _, failed = cancel_runs(settings, organization_id, [run_id])
    if failed:
        raise RunRejected(failed[run_id])


def replay_webhook(settings: Settings, organization_id: str, run_id: str, webhook_url: str | None,
                   signing_key: str) -> dict[str, Any]:
    """Send the run's webhook once more, now (webhooks.delivery.replay); UnknownRun, ReplayRefused."""
    _require_run_exists(settings, organization_id, run_id, "Run")
    return webhooks.replay(settings, run_id, webhook_url, signing_key)


def cancel_runs(settings: Settings, organization_id: str,
                run_ids: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Cancel each run; returns (canceled ids, {failed id: reason}). Running runs are flagged, given
    up to CANCEL_WAIT_SECONDS to be ended by their runner, then ended here."""
    cancelled: list[str] = []
    failed: dict[str, str] = {}
    flagged: list[str] = []
    with session_scope(settings.database_url) as s:
        for run_id in dict.fromkeys(run_ids):
            if find_run(s, organization_id, run_id) is None:
                failed[run_id] = f"Run not found {run_id}"
                continue
            try:
                outcome = lifecycle.request_cancel(s, run_id)
            except lifecycle.InvalidTransition as exc:
                failed[run_id] = f"Run {run_id} is already {exc.current}; an ended run cannot be canceled."
                continue
            cancelled.append(run_id)
            if outcome != RunStatus.canceled:
                flagged.append(run_id)
    _await_or_force(settings, flagged)
    return cancelled, failed


def _await_or_force(settings: Settings, run_ids: list[str]) -> list[str]:
    """Wait for flagged runs to end; force-cancel the ones still running. Returns those forced."""
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    pending = list(run_ids)
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        with session_scope(settings.database_url) as s:
            final = set(s.scalars(select(Run.id).where(Run.id.in_(pending),
                                                       Run.status.in_([f.value for f in FINAL]))).all())
        pending = [run_id for run_id in pending if run_id not in final]
    forced = []
    with session_scope(settings.database_url) as s:
        for run_id in pending:
            if lifecycle.finish(s, run_id, RunStatus.canceled, failure_reason=FORCED_CANCEL_REASON):
                forced.append(run_id)
    return forced
