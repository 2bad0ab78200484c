"""Executes one run end to end: claim, open a browser context, drive the agent, store, finalize.

The same code runs in the embedded in-process executor and in a Celery worker (workers.host).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from app.artifacts.store import ArtifactStore
from app.artifacts.uploads import find_uploads
from app.credentials.vault import CredentialValues, load_run_credential
from app.db.engine import retry_transient, session_scope
from app.db.models import Run
from app.live.bus import LOCAL_BUS, LiveBus
from app.platform.limits.quotas import claim_within_org_limit, over_token_cap
from app.platform.observability import BROWSER_CONTEXTS, bind_run
from app.platform.proxies import ProxyLocationRejected, proxy_browser_options
from app.platform.security import decrypt
from app.platform.settings import Settings
from app.profiles.service import keep_run_state, load_storage_state
from app.runs import lifecycle
from app.runs.kinds import DOWNLOAD_FILES_WORKFLOW, WORKFLOW_RUN_TYPE
from app.runs.lifecycle import HELD, Lease, RunStatus
from app.runs.warnings import with_warnings
from app.sessions import lifecycle as session_lifecycle
from workers.agent.browser import BrowserPool, BrowserRun
from workers.agent.contract import BrowserOptions, PlannerError, RunFile, RunOutcome, TaskSpec
from workers.agent.planner import Planner
from workers.control import PauseVerdict, RunSteering
from workers.deadline import RunDeadline, finally_deadline, run_deadline
from workers.live import LivePublisher
from workers.run_store import DbRunStore, RunIdentity
from workers.scripted import code_run, drive_run, planner_for
from workers.sessions import HeldSession
from workers.workflows.context import WorkflowContext
from workers.workflows.engine import load_run_workflow, run_finally_block, run_workflow
from workers.workflows.records import BlockRecorder

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # also how fast a cancel request is noticed
HAND_BACK = RunOutcome("canceled")  # the stop reason "handed back"; ends canceled if a cancel came first
FINAL_PAGE_TIMEOUT_S = 5  # the final screenshot and HTML each: a page stuck loading must not hold the run


def leave_queued(run_id: str) -> None:
    """Embedded: the next start dispatches the runs left queued (the sweeper is the backstop)."""


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    pool: BrowserPool
    artifacts: ArtifactStore
    worker_id: str
    on_final: Callable[[str], None]  # this worker ended the run (its webhook is owed: wake the deliverer)
    # set when this process shuts down: the runs it still holds are stopped and handed back
    hand_back: threading.Event = field(default_factory=threading.Event)
    requeue: Callable[[str], None] = leave_queued  # sends a run this worker gave back to the queue again
    live: LiveBus = LOCAL_BUS  # where live frames go and a holder's input comes from


@dataclass(frozen=True)
class StoredInputs:
    """What a run request names by id, fetched for the worker: the browser profile's state, the CDP
    handshake headers (stored encrypted, masked in run_request), the uploaded files (file_ids)."""

    storage_state: dict[str, Any] | None = None
    cdp_connect_headers: dict[str, str] | None = None
    files: tuple[tuple[RunFile, Path], ...] = ()


def task_spec(run: Run, settings: Settings, inputs: StoredInputs | None = None) -> TaskSpec:
    request: dict[str, Any] = run.run_request or {}
    inputs = inputs or StoredInputs()
    parameters = request.get("parameters") or {}  # a download_files run keeps its download options here
    model = request.get("model") or {}
    model_name = model.get("model_name") or model.get("name") if isinstance(model, dict) else None
    return TaskSpec(
        run_id=run.id,
        prompt=run.prompt,
        url=run.url,
        max_steps=run.max_steps,
        data_extraction_schema=request.get("data_extraction_schema"),
        error_code_mapping=request.get("error_code_mapping"),
        model=model_name,
        browser=BrowserOptions(extra_http_headers=request.get("extra_http_headers"),
                               storage_state=inputs.storage_state,
                               browser_address=request.get("browser_address"),
                               cdp_connect_headers=inputs.cdp_connect_headers,
                               download_timeout_s=parameters.get("download_timeout"),
                               download_suffix=parameters.get("download_suffix"),
                               **proxy_browser_options(settings, request.get("proxy_location"))),
        files=tuple(file for file, _ in inputs.files),
        max_repeated_actions=settings.max_repeated_actions,
    )


def _stored_inputs(ctx: WorkerContext, run: Run, workdir: Path) -> StoredInputs:
    """Loads what the run names by id; LookupError when its browser profile was deleted since."""
    with session_scope(ctx.settings.database_url) as s:
        state = (load_storage_state(ctx.settings, s, run.organization_id, run.browser_profile_id)
                 if run.browser_profile_id else None)
        uploads = find_uploads(s, run.organization_id, (run.run_request or {}).get("file_ids") or [])
    headers = (json.loads(decrypt(ctx.settings.resolved_secret_key(), run.cdp_connect_headers_encrypted))
               if run.cdp_connect_headers_encrypted else None)
    files = []
    for row in uploads:
        file = RunFile(row.id, row.filename or row.id)
        path = workdir / "files" / row.id / file.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(ctx.artifacts.get(row.storage_key))
        files.append((file, path))
    return StoredInputs(state, headers, tuple(files))


async def _keep_browser_state(ctx: WorkerContext, run: Run, browser: BrowserRun) -> None:
    """A workflow run's final cookies and localStorage, kept for POST /v1/browser_profiles."""
    if run.run_type != WORKFLOW_RUN_TYPE or browser.crashed:
        return
    try:
        async with asyncio.timeout(10):
            state = await browser.context.storage_state()
        await asyncio.to_thread(_save_browser_state, ctx, run.id, dict(state))
    except Exception as exc:  # the run's own outcome does not depend on it
        log.warning("could not keep the browser state of %s: %s", run.id, exc)


def _save_browser_state(ctx: WorkerContext, run_id: str, state: dict[str, Any]) -> None:
    with session_scope(ctx.settings.database_url) as s:
        keep_run_state(ctx.settings, s, run_id, state)


def _load_credential(ctx: WorkerContext, run: Run) -> CredentialValues | None:
    with session_scope(ctx.settings.database_url) as s:
        return load_run_credential(s, ctx.settings, run.organization_id, run.run_request)


def _claim(ctx: WorkerContext, run_id: str, browser_session_id: str | None) -> Run | None:
    """Claim the run; in a browser session, show it as the session's runnable in the same transaction
    (a client that sees the run `running` sees the session's runnable_id too)."""
    with session_scope(ctx.settings.database_url) as s:
        if not lifecycle.claim(s, run_id, ctx.worker_id):
            if lifecycle.expire_lost_runs(s, timedelta(seconds=ctx.settings.run_lease_seconds)):
                log.info("expired lost runs while %s was redelivered", run_id)
            return None
        run = s.get(Run, run_id)
        if run is not None and browser_session_id is not None:
            session_lifecycle.set_runnable(s, browser_session_id, run)
        return run


async def execute_run(ctx: WorkerContext, run_id: str, browser_session: HeldSession | None = None) -> bool:
    """Run `run_id` if this worker can claim it (inside `browser_session`'s browser when given); returns
    whether it ran here."""
    run = await claim_within_org_limit(ctx.settings, run_id, lambda: _claim(
        ctx, run_id, browser_session.id if browser_session else None))
    if run is None:
        log.info("run %s not claimed (already taken or ended)", run_id)
        return False
    bind_run(run.id, run.organization_id)
    log.info("run started on %s", ctx.worker_id)
    identity = RunIdentity(run.id, run.organization_id, run.started_at or run.created_at,
                           run.totp_identifier, run.totp_url, run.webhook_key_encrypted)
    store = DbRunStore(ctx.settings, ctx.artifacts, identity)
    workdir = Path(tempfile.mkdtemp(prefix=f"wayfarer-{run_id}-"))
    browser: BrowserRun | None = None
    planner: Planner | None = None
    downloads = 0
    handing_back = False
    recorder: BlockRecorder | None = None  # a workflow run's blocks as they run
    after_deadline: Callable[[], Awaitable[None]] | None = None  # a workflow run's finally block
    try:
        store.use_credential(await asyncio.to_thread(_load_credential, ctx, run))
        inputs = await asyncio.to_thread(_stored_inputs, ctx, run, workdir)
        task = task_spec(run, ctx.settings, inputs)
        workflow = await asyncio.to_thread(load_run_workflow, ctx.settings, run) if run.workflow_id else None
        # a workflow: one per block; a code run without an LLM: none (planner_for)
        planner = planner_for(ctx.settings, run, task) if workflow is None else None
        browser = await (browser_session.open_run(run, task.browser, workdir) if browser_session
                         else ctx.pool.open_run(run_id, task.browser, workdir))
        BROWSER_CONTEXTS.inc()
        browser.upload_files = {file.file_id: path for file, path in inputs.files}
        steering = RunSteering(ctx.settings, run_id, ctx.worker_id)
        if browser.screencast is None:  # a run in a session or on the user's browser: for the live view
            browser.start_screencast(task.browser.viewport_width, task.browser.viewport_height, None)
        live = LivePublisher(ctx.live, f"run:{run_id}", browser, lambda: steering.paused, steering.touch)
        live.start()
        if workflow is not None:
            recorder = BlockRecorder(ctx.settings.database_url, run_id)
            context = WorkflowContext(ctx.settings, run.organization_id, task, browser, store, steering,
                                      recorder, dict(workflow.values), workflow.credentials,
                                      code_run(run, ctx.settings), workflow.parameter_keys,
                                      workflow.output_keys,
                                      max_steps_override=(run.run_request or {}).get("max_steps_override"))
            definition = workflow.spec.workflow_definition
            work = run_workflow(context, definition.blocks, definition.finally_block_label)
            if (label := definition.finally_block_label) is not None:
                after_deadline = partial(run_finally_block, context, definition.blocks, label)
        else:
            work = drive_run(ctx.settings, run, task, browser, planner, store, steering)
        try:
            outcome = await _supervise(ctx, run_id, work, store, steering, run_deadline(ctx.settings, run),
                                       recorder, after_deadline)
        finally:
            await live.stop()
        if outcome is HAND_BACK and recorder is not None and recorder.started:
            outcome = _not_restarted(recorder)
        if workflow is not None and outcome is not HAND_BACK and outcome.output is None:  # stopped midway
            outcome = replace(outcome, output=context.outputs)  # what the finished blocks produced
        handing_back = outcome is HAND_BACK
    except Exception as exc:  # every failure becomes a reason the user can act on
        log.exception("run %s failed", run_id)
        outcome = RunOutcome("failed", failure_reason=_reason_from(exc, store))
    finally:
        if planner is not None:
            await planner.aclose()
        if browser is not None:
            await _keep_browser_state(ctx, run, browser)
            downloads = await _store_final_artifacts(browser, store, handing_back)
    outcome = _require_download(run, outcome, downloads)
    try:
        await store.flush()  # the run is not final before everything it recorded is stored
    except Exception as exc:
        outcome = RunOutcome("failed", failure_reason=(
            f"The run's records could not be stored ({exc}); its status was "
            f"{outcome.status} before that."))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if outcome is HAND_BACK and await asyncio.to_thread(_hand_back, ctx, run_id):
        log.info("run handed back to the queue after %d step(s): this worker is shutting down",
                 store.steps_started)
        ctx.requeue(run_id)
        return True
    log.info("run ended %s%s", outcome.status,
             f": {outcome.failure_reason}" if outcome.failure_reason else "")
    if await asyncio.to_thread(_finalize, ctx, run_id, outcome):
        ctx.on_final(run_id)
    return True


async def _supervise(ctx: WorkerContext, run_id: str, work: Any, store: DbRunStore,
                     steering: RunSteering, limit: RunDeadline, recorder: BlockRecorder | None,
                     after_deadline: Callable[[], Awaitable[None]] | None = None) -> RunOutcome:
    """Await the agent while renewing the lease; stop it on cancel, at the deadline (workers/deadline.py),
    or to hand it back. Paused time does not count against the deadline, up to WAYFARER_MAX_PAUSE_SECONDS.
    Stopped at the deadline, a workflow run then runs `after_deadline` (its finally block), supervised
    the same way within WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS; the run keeps the deadline's outcome."""
    agent = asyncio.ensure_future(work)
    deadline = time.monotonic() + limit.seconds
    paused_before = steering.paused_seconds()  # (a finally block after the deadline: not its allowance)
    while True:
        done, _ = await asyncio.wait({agent}, timeout=HEARTBEAT_SECONDS)
        if done:
            return agent.result()
        lease = await asyncio.to_thread(_heartbeat, ctx, run_id)
        verdict = steering.observe(lease) if lease is not None else PauseVerdict()
        if verdict.idle:
            await steering.end_idle_takeover()
        paused_allowance = min(steering.paused_seconds() - paused_before, ctx.settings.max_pause_seconds)
        stop: RunOutcome | None = None
        cleanup: Callable[[], Awaitable[None]] | None = None
        if lease is None or lease.status not in HELD or lease.cancel_requested:
            stop = RunOutcome("canceled")
        elif ctx.hand_back.is_set():
            stop = HAND_BACK
        elif verdict.terminate is not None:
            stop = RunOutcome("terminated", failure_reason=verdict.terminate)
        elif time.monotonic() >= deadline + paused_allowance:
            stop = limit.timed_out(store, recorder)
            cleanup = after_deadline
        elif over_token_cap(ctx.settings, store.tokens_used):
            stop = RunOutcome("timed_out", failure_reason=(
                f"The run used {store.tokens_used} LLM tokens, over its cap of "
                f"{ctx.settings.run_max_tokens} (WAYFARER_RUN_MAX_TOKENS), after {store.steps_started} "
                "step(s)."))
        if stop is not None:
            if recorder is not None:
                recorder.stopped_by = stop
            agent.cancel()
            await asyncio.gather(agent, return_exceptions=True)
            if cleanup is not None and (budget := finally_deadline(ctx.settings)) is not None:
                await _supervise(ctx, run_id, cleanup(), store, steering, budget, recorder)
            return stop


@retry_transient
def _heartbeat(ctx: WorkerContext, run_id: str) -> Lease | None:
    with session_scope(ctx.settings.database_url) as s:
        return lifecycle.heartbeat(s, run_id, ctx.worker_id)


@retry_transient
def _hand_back(ctx: WorkerContext, run_id: str) -> bool:
    with session_scope(ctx.settings.database_url) as s:
        return lifecycle.hand_back(s, run_id, ctx.worker_id)


def _not_restarted(recorder: BlockRecorder) -> RunOutcome:
    """A workflow run this worker must give up once a block has started is not handed back: run again,
    a send_email or http_request block it already ran would run twice."""
    where = f" during block '{recorder.last_label}'" if recorder.last_label else ""
    return RunOutcome("failed", failure_reason=(
        f"The worker running this workflow shut down{where}; a workflow run is not restarted, so that no "
        "block runs twice. Retry it (POST /v1/agents/runs/{id}/retry) to run it again."))


def _reason_from(exc: Exception, store: DbRunStore) -> str:
    if isinstance(exc, PlannerError | ProxyLocationRejected):  # a sentence naming what to fix
        return str(exc)
    detail = str(exc).strip() or type(exc).__name__
    where = f" after {store.steps_started} step(s)" if store.steps_started else " before the first step"
    last = f"; last action: {store.last_outcome}" if store.last_outcome else ""
    return f"The run stopped{where} because of an error: {detail}{last}."


def _require_download(run: Run, outcome: RunOutcome, downloads: int) -> RunOutcome:
    """A download_files run has succeeded only if a file was downloaded."""
    workflow = run.run_request.get("workflow_id")
    if outcome.status != "completed" or downloads or workflow != DOWNLOAD_FILES_WORKFLOW:
        return outcome
    return RunOutcome("failed", output=outcome.output, summary=outcome.summary, failure_reason=(
        "The model reported the task complete, but no file was downloaded; check that the navigation "
        "goal leads to a download link or button."))


async def _store_final_artifacts(browser: BrowserRun, store: DbRunStore, handing_back: bool) -> int:
    """screenshot_final, html_scrape, then (after closing) recording, downloads and console log;
    returns how many files were downloaded. A run handed back stores none: its next attempt will."""
    page = browser.active_page
    if not (browser.crashed or handing_back):
        try:
            shot = await page.screenshot(type="jpeg", quality=70, timeout=FINAL_PAGE_TIMEOUT_S * 1000)
            await store.save_artifact(None, "screenshot_final", shot, "image/jpeg")
            async with asyncio.timeout(FINAL_PAGE_TIMEOUT_S):  # content() has no timeout of its own
                html = await page.content()
            await store.save_artifact(None, "html_scrape", html.encode(), "text/html")
        except Exception as exc:  # the page may be gone; the rest must still be stored
            log.warning("final page capture failed for %s: %s", store, exc)
    media = await browser.close()
    BROWSER_CONTEXTS.dec()
    if handing_back:
        return 0
    if media.recording is not None and media.recording.exists():
        await store.save_artifact_file(None, "recording", media.recording, "video/webm")
    for path in media.downloads:
        await store.save_artifact_file(None, "download", path, "application/octet-stream", path.name)
    if media.console_log:
        await store.save_artifact(None, "browser_console_log", media.console_log.encode(), "text/plain")
    return len(media.downloads)


@retry_transient
def _finalize(ctx: WorkerContext, run_id: str, outcome: RunOutcome) -> bool:
    """Write the final status; False when the run was already ended elsewhere (e.g. a forced cancel)."""
    with session_scope(ctx.settings.database_url) as s:
        run = s.get(Run, run_id)
        errors = list(run.errors or []) + outcome.errors if run else outcome.errors
        ended = lifecycle.finish(s, run_id, RunStatus(outcome.status),
                                 failure_reason=with_warnings(outcome.failure_reason, errors),
                                 output=outcome.output, summary=outcome.summary, errors=errors)
        if not ended:
            log.info("run %s was already final when its runner finished", run_id)
        return ended
