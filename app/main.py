"""The API application: routers, error handlers, and the lifespan that wires storage and dispatch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import select
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.accounts.service import seed_api_key
from app.api import (
    artifacts,
    browser_profiles,
    browser_sessions,
    credentials,
    files,
    folders,
    legacy,
    live,
    metrics,
    not_provided,
    run_control,
    runs,
    schedules,
    scripts,
    system,
    workflow_runs,
    workflows,
)
from app.artifacts.store import S3Store, make_store
from app.artifacts.uploads import UnknownFile
from app.credentials.totp import CodeRejected
from app.credentials.vault import InvalidCredential, UnknownCredential
from app.db.engine import session_scope
from app.db.migrate import describe, prepare_for_serving
from app.db.models import Run
from app.dispatch import Dispatcher, QueueUnavailable, make_dispatcher
from app.live.bus import make_live_bus
from app.platform.limits.quotas import OrgLimitReached
from app.platform.limits.request_body import RequestBodyLimit
from app.platform.observability import configure_logging
from app.platform.proxies import ProxyLocationRejected
from app.platform.settings import Settings, get_settings
from app.profiles.service import ProfileNameTaken, ProfileSourceUnavailable, UnknownProfile
from app.runs import lifecycle
from app.runs.control import ControlRefused
from app.runs.lifecycle import RunStatus
from app.runs.service import RunRejected, TextTooLong, UnknownRun
from app.scripts.service import ScriptRejected, UnknownScript
from app.sessions.lifecycle import UnknownBrowserSession
from app.sessions.service import SessionEnded, SessionRejected
from app.web import render as web_render
from app.web import router as web_router
from app.web import static_files
from app.web.auth import FormRefused, SignInRequired
from app.webhooks.delivery import ReplayRefused
from app.workflows.cron import ScheduleInvalid
from app.workflows.definitions import UnknownWorkflow, WorkflowVersionConflict
from app.workflows.folders import UnknownFolder
from app.workflows.scheduler import Scheduler
from app.workflows.schedules import UnknownSchedule
from app.workflows.validation import WorkflowInvalid

log = logging.getLogger("wayfarer.api")


def _recover_runs(settings: Settings, dispatcher: Dispatcher) -> None:
    """Embedded start-up: end runs a dead process left running, and dispatch runs still queued."""
    with session_scope(settings.database_url) as s:
        lost = lifecycle.expire_lost_runs(s, timedelta(seconds=settings.run_lease_seconds))
        queued = s.scalars(select(Run.id).where(Run.status == RunStatus.queued.value)
                           .order_by(Run.created_at)).all()
    for run_id in lost:
        log.warning("run %s ended failed: its worker was lost", run_id)
    for run_id in queued:
        dispatcher.enqueue(run_id)
    if queued:
        log.info("re-dispatched %d queued run(s)", len(queued))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.resolved_secret_key()  # fails start-up in production mode without WAYFARER_SECRET_KEY
    prepare_for_serving(settings.database_url)
    log.info("database %s", describe(settings.database_url))
    if settings.api_key:
        with session_scope(settings.database_url) as s:
            seed_api_key(s, settings.api_key)
    if not (settings.llm_base_url or settings.llm_api_key):
        log.warning("No LLM is configured (WAYFARER_LLM_BASE_URL / WAYFARER_LLM_API_KEY or OPENAI_*): "
                    "runs will fail until one is set.")
    app.state.store = make_store(settings)
    if isinstance(app.state.store, S3Store):
        app.state.store.check_bucket()
    app.state.dispatcher = make_dispatcher(settings)
    app.state.live = make_live_bus(settings)
    scheduler = Scheduler(settings, app.state.dispatcher).start() if settings.scheduler_poll_seconds else None
    try:
        if settings.embedded:
            _recover_runs(settings, app.state.dispatcher)
        yield
    finally:  # after uvicorn let the requests in flight finish; embedded: runs get the shutdown grace
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)
        await asyncio.to_thread(app.state.dispatcher.close)
        await app.state.live.close()


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    run_id = request.path_params.get("run_id")
    log.error("unhandled error on %s %s%s", request.method, request.url.path,
              f" (run {run_id})" if run_id else "", exc_info=exc)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL refuses NUL in text: that is bad input (a 422), not a server error."""
    if "NUL" not in str(exc):
        return await _unhandled(request, exc)
    return JSONResponse({"detail": "The request contains a NUL character (\\u0000), which cannot be stored "
                                   "or matched: remove it."}, status_code=422)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database dropped the connection mid-request (restart, failover, a killed backend): the pool
    has already discarded it, so the same request succeeds when retried — a 503, not a 500."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return JSONResponse({"detail": "The database connection was lost; retry the request."},
                        status_code=503, headers={"Retry-After": "1"})


async def _org_limit(request: Request, exc: Exception) -> JSONResponse:
    retry_after = exc.retry_after if isinstance(exc, OrgLimitReached) else 10
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(retry_after)})


# Every domain error and its HTTP status, once; the error's message is the response's detail.
DOMAIN_ERRORS: dict[type[Exception], int] = {
    UnknownRun: 404, UnknownBrowserSession: 404, UnknownProfile: 404, UnknownCredential: 404,
    UnknownFile: 404, UnknownWorkflow: 404, UnknownScript: 404, UnknownFolder: 404,
    UnknownSchedule: 404, ScheduleInvalid: 400,
    RunRejected: 400, SessionRejected: 400, ProfileSourceUnavailable: 400, InvalidCredential: 400,
    CodeRejected: 400, ReplayRefused: 400, ProxyLocationRejected: 400, WorkflowInvalid: 400,
    ScriptRejected: 400,
    SessionEnded: 409, ProfileNameTaken: 409, ControlRefused: 409, WorkflowVersionConflict: 409,
    TextTooLong: 422,
    QueueUnavailable: 503,
}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """The most specific entry of DOMAIN_ERRORS; RunRejected says its own (400, or 404 for a source)."""
    status = exc.status_code if isinstance(exc, RunRejected) else \
        next(DOMAIN_ERRORS[kind] for kind in type(exc).__mro__ if kind in DOMAIN_ERRORS)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPIOffline(title="Wayfarer", description="A self-hosted server for Skyvern's run API.",
                         lifespan=_lifespan)
    app.state.settings = settings or get_settings()
    configure_logging(app.state.settings)  # here too: each `serve --workers` process imports the app
    for module in (runs, run_control, live, artifacts, credentials, files, legacy, system, metrics,
                   browser_profiles, browser_sessions, folders, schedules, workflow_runs, workflows,
                   scripts):
        app.include_router(module.router)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(OrgLimitReached, _org_limit)
    for error in DOMAIN_ERRORS:
        app.add_exception_handler(error, _domain_error)
    app.include_router(web_router)  # the viewer's pages under /
    app.mount("/static", static_files(), name="static")
    app.add_exception_handler(web_render.PageNotFound, web_render.not_found_page)
    app.add_exception_handler(SignInRequired, web_render.sign_in_redirect)
    app.add_exception_handler(FormRefused, web_render.form_refused_page)
    app.add_middleware(RequestBodyLimit, max_bytes=app.state.settings.max_request_bytes)
    app.add_exception_handler(StarletteHTTPException, not_provided.explain_not_found)
    app.add_exception_handler(Exception, _unhandled)
    return app
