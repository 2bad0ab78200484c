"""run_with "code" in the worker: record a script on the first run of a cache key, replay it on the next.

`drive_run` is what the runner drives: an ordinary agent run when run_with is "agent"; with "code", the
organization's script for the run's cache key is replayed (`workers.agent.replay.play`), or, when there
is none yet, the agent runs with a Recorder and a completed run stores what it did as version 1. A
replay that completed after healing a step the page no longer fits stores the healed script as the next
version. Either way the run gets its `script_run` (ScriptRunResponse plus Wayfarer's counts). A
workflow's agent blocks call `drive_code` themselves, one script per block
(workers/workflows/agent_blocks.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.db.engine import retry_transient, session_scope
from app.db.models import Run
from app.platform.settings import Settings
from app.scripts import service as scripts
from app.scripts.document import ScriptDoc
from app.scripts.keys import cache_key
from app.scripts.parameters import References, with_references, with_values
from app.scripts.service import StoredScript
from workers.agent.browser import BrowserRun
from workers.agent.contract import RunOutcome, Steering, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner, PlannerError, llm_config_problem
from workers.agent.replay.play import AI_FALLBACK_OFF, replay
from workers.agent.replay.record import Recorder
from workers.run_store import DbRunStore


@dataclass(frozen=True)
class CodeRun:
    organization_id: str
    cache_key: str
    ai_fallback: bool
    title: str


def code_run(run: Run, settings: Settings) -> CodeRun | None:
    """How the run uses scripts; None for an agent run."""
    request: dict[str, Any] = run.run_request or {}
    if (request.get("run_with") or settings.default_run_with) != "code":
        return None
    return CodeRun(run.organization_id, cache_key(request, run.prompt, run.url),
                   request.get("ai_fallback") is not False, run.title or run.prompt[:80])


def planner_for(settings: Settings, run: Run, task: TaskSpec) -> Planner | None:
    """The run's planner; None for a run_with "code" run when no LLM is configured: a replay needs none
    unless a step must be healed (else PlannerError saying what to set, as for any run)."""
    if code_run(run, settings) is not None and llm_config_problem(settings):
        return None
    return Planner(settings, task)


async def drive_run(settings: Settings, run: Run, task: TaskSpec, browser: BrowserRun,
                    planner: Planner | None, store: DbRunStore, steering: Steering | None) -> RunOutcome:
    """`planner` is None only for a code run without an LLM (planner_for)."""
    code = code_run(run, settings)
    if code is None:
        if planner is None:
            raise PlannerError(llm_config_problem(settings) or "No LLM is configured.")
        return await drive(task, browser, planner, store, steering)
    outcome, script_run = await drive_code(settings, code, task, browser, planner, store, steering)
    await asyncio.to_thread(save_script_run, settings, task.run_id, script_run)
    return outcome


async def drive_code(settings: Settings, code: CodeRun, task: TaskSpec, browser: BrowserRun,
                     planner: Planner | None, store: DbRunStore, steering: Steering | None,
                     references: References | None = None) -> tuple[RunOutcome, dict[str, Any]]:
    """Replay the script of `code.cache_key`, or record one; the outcome and this part's script_run (its
    counts only: the store may hold earlier parts of the run, a workflow's other blocks). `references`:
    what the script stores as references (a workflow block's, app/scripts/parameters.py)."""
    references = references or References()
    parameters = references.values
    stored = await asyncio.to_thread(_find, settings, code)
    if stored is None:
        if planner is None:
            raise PlannerError(llm_config_problem(settings) or "No LLM is configured.")
        return await _record(settings, code, task, browser, planner, store, steering, parameters)
    unhealable = AI_FALLBACK_OFF if not code.ai_fallback else (
        "No LLM is configured to heal it (set WAYFARER_LLM_BASE_URL and WAYFARER_LLM_MODEL)")
    report = await replay(task, browser, with_values(stored.document, parameters), store,
                          planner if code.ai_fallback else None, steering, unhealable, references)
    revision_id = stored.revision_id
    if report.rewritten and report.outcome.status == "completed":
        _, revision_id = await asyncio.to_thread(_save, settings, code, task.run_id,
                                                 with_references(report.script, parameters), stored.script_id)
    saved = max(0, stored.document.tokens - report.usage.prompt_tokens - report.usage.completion_tokens)
    return report.outcome, {
        "script_id": stored.script_id, "script_revision_id": revision_id,
        "ai_fallback_triggered": report.usage.llm_calls > 0, "steps_replayed": report.replayed,
        "steps_healed": report.healed, "llm_calls": report.usage.llm_calls,
        "tokens_saved_estimate": saved if report.outcome.status == "completed" else 0}


async def _record(settings: Settings, code: CodeRun, task: TaskSpec, browser: BrowserRun, planner: Planner,
                  store: DbRunStore, steering: Steering | None,
                  parameters: Mapping[str, Any]) -> tuple[RunOutcome, dict[str, Any]]:
    calls_before, tokens_before = store.llm_calls, store.tokens_used
    recorder = Recorder(browser, task.url)
    outcome = await drive(task, browser, planner, store, steering, recorder)
    script_id: str | None = None
    revision_id: str | None = None
    llm_calls = store.llm_calls - calls_before
    if outcome.status == "completed":
        recorder.script.llm_calls, recorder.script.tokens = llm_calls, store.tokens_used - tokens_before
        await store.flush()  # the script's run id must name a run whose records are stored
        script_id, revision_id = await asyncio.to_thread(
            _save, settings, code, task.run_id, with_references(recorder.script, parameters), None)
    return outcome, {
        "script_id": script_id, "script_revision_id": revision_id, "ai_fallback_triggered": False,
        "steps_replayed": 0, "steps_healed": 0, "llm_calls": llm_calls, "tokens_saved_estimate": 0}


@retry_transient
def _find(settings: Settings, code: CodeRun) -> StoredScript | None:
    with session_scope(settings.database_url) as s:
        return scripts.find_for_key(s, code.organization_id, code.cache_key)


@retry_transient
def _save(settings: Settings, code: CodeRun, run_id: str, document: ScriptDoc,
          script_id: str | None) -> tuple[str, str]:
    """(script id, revision id) of the new revision."""
    with session_scope(settings.database_url) as s:
        revision = scripts.save_recording(s, code.organization_id, code.cache_key, run_id, document,
                                          code.title, script_id)
        return revision.script_id, revision.id


@retry_transient
def save_script_run(settings: Settings, run_id: str, script_run: dict[str, Any]) -> None:
    with session_scope(settings.database_url) as s:
        scripts.record_script_run(s, run_id, script_run)
