"""The agent's contract: what a run asks of the agent, what the agent asks of its store, what it returns.

The step loop itself (`drive`) is a plain async function over three small interfaces — the browser
(`workers.browser.BrowserRun`), the planner (`workers.planner.Planner`) and the `RunStore` below — so each
can be tested alone. `workers.runner` wires them to the database, storage and lifecycle.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import jsonschema

if TYPE_CHECKING:
    from workers.browser import BrowserRun
    from workers.planner import Planner, PlannerDecision

OutcomeStatus = Literal["completed", "failed", "terminated", "timed_out", "canceled"]


@dataclass(frozen=True)
class BrowserOptions:
    viewport_width: int = 1280
    viewport_height: int = 720
    locale: str | None = None
    timezone_id: str | None = None
    user_agent: str | None = None
    extra_http_headers: dict[str, str] | None = None
    storage_state: dict[str, Any] | None = None  # a browser profile's cookies and localStorage
    browser_address: str | None = None  # the user's own Chromium (CDP) instead of the pool's
    cdp_connect_headers: dict[str, str] | None = None
    download_timeout_s: float | None = None  # how long a started download may take to finish
    download_suffix: str | None = None  # downloaded files are stored with names ending in it


@dataclass(frozen=True)
class RunFile:
    """A file uploaded with POST /v1/upload_file that the run's upload_file actions may use."""

    file_id: str
    filename: str


@dataclass(frozen=True)
class TaskSpec:
    run_id: str
    prompt: str
    url: str | None
    max_steps: int
    data_extraction_schema: Any = None
    error_code_mapping: dict[str, str] | None = None
    model: str | None = None  # overrides the configured model name
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    files: tuple[RunFile, ...] = ()


@dataclass
class StepUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_ms: int = 0


@dataclass
class RunOutcome:
    status: OutcomeStatus
    output: Any = None
    summary: str | None = None
    failure_reason: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class RunStore(Protocol):
    """Where the agent records what it does. Every method may touch the database or storage."""

    async def start_step(self, index: int, url: str) -> str:
        """Record a new step; returns its step id."""
        ...

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        """Store bytes as an artifact of the run (step_id None = run-level); returns the artifact id."""
        ...

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str: ...

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str) -> None: ...

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None: ...

    async def verification_code(self) -> str | None:
        """The freshest unused one-time code for this run (pushed, pulled from totp_url, or generated),
        waiting up to the configured time; None if none came."""
        ...


class Steering(Protocol):
    """Whether a person has the browser: asked at every step boundary, so no action starts while
    someone holds control."""

    async def wait_if_paused(self) -> str | None:
        """None at once when nobody asked for control; else waits until control is given back and
        returns why the run paused (a person took control, or ask_human's reason)."""
        ...

    async def ask_human(self, reason: str) -> None:
        """Pause at the next step boundary until a person has done what `reason` says."""
        ...


@dataclass(frozen=True)
class ToolCall:
    """One tool call from the planner, already parsed: name is a design.md tool name."""

    name: str
    args: dict[str, Any]
    reasoning: str | None = None
    call_id: str = ""


@dataclass(frozen=True)
class ActionResult:
    succeeded: bool
    outcome: str  # one line for the history, e.g. "click 'Save' -> navigated to /done"
    page_changed: bool = False  # navigation, new tab, or DOM changed enough that later refs are stale


class PlannerError(Exception):
    """The LLM endpoint cannot be used (not configured, unreachable, refusing); the message is a
    sentence that tells the user what to fix. `request` is what was being sent, if anything."""

    def __init__(self, message: str, request: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.request = request


async def drive(task: TaskSpec, run: BrowserRun, planner: Planner, store: RunStore,
                steering: Steering | None = None) -> RunOutcome:
    """Open task.url, then step until the model completes or terminates, or a bound is hit.

    Safe to cancel at any await (the caller enforces the deadline and cancel requests that way):
    everything already recorded is complete, nothing is left half-written in this function.
    """
    # Imported here: actions and page_state import this module's types.
    from workers.actions import apply
    from workers.page_state import capture, step_screenshot

    if task.url:
        opened = await apply(run, ToolCall("goto_url", {"url": task.url}), store)
        if run.crashed:
            return _crashed(run, 0, None)
        if not opened.succeeded:
            return RunOutcome("failed", failure_reason=(
                f"The start page {task.url} could not be opened: {_effect(opened.outcome)} "
                "Check that the URL is right and reachable from the worker."))
    history: list[str] = []
    feedback: str | None = None  # what was wrong with the last answer; sent back once
    acted_step: str | None = None  # its screenshot_action is the next capture's screenshot: no 2nd shot
    for index in range(task.max_steps):
        if run.crashed:
            return _crashed(run, index, history)
        if steering is not None and (why := await steering.wait_if_paused()) is not None:
            await _save_action_screenshot(run, store, acted_step)  # the page as the agent left it
            acted_step = None
            history.append(f"paused ({why}) -> a person had control of the browser and may have changed "
                           f"the page; they left it on {run.active_page.url}. Look at the page afresh.")
            if run.crashed:
                return _crashed(run, index, history)
        started = time.monotonic()
        # Always taken: screenshot_llm shows the page the decision was made on, vision model or not. A
        # text-only model decides while it is being taken; nothing acts on the page before it is done.
        shot = asyncio.ensure_future(step_screenshot(run))
        try:
            state = await capture(run, screenshot=False)
            if planner.vision:
                state.screenshot = await shot
            step_id = await store.start_step(index, state.url)
            await store.save_artifact(step_id, "visible_elements_tree", state.snapshot.encode(), "text/plain")
            decision: PlannerDecision | PlannerError
            try:
                decision = await planner.decide(state, history, feedback)
            except PlannerError as exc:
                decision = exc
            await _save_screenshots(store, await shot, step_id, acted_step)
        finally:
            shot.cancel()  # only still running when the run was cancelled meanwhile
        if isinstance(decision, PlannerError):
            if decision.request is not None:
                await store.save_artifact(step_id, "llm_request", _json(decision.request), "application/json")
            await store.finish_step(step_id, StepUsage(), _ms_since(started))
            last = _last(history, "; last action: ")
            return RunOutcome("failed", failure_reason=f"{decision} (step {index + 1}{last})")
        await store.save_artifact(step_id, "llm_request", _json(decision.request), "application/json")
        await store.save_artifact(step_id, "llm_response", _json({
            "response": decision.response, "usage": asdict(decision.usage), "rejected": decision.feedback,
        }), "application/json")
        problem = decision.feedback
        outcome: RunOutcome | None = None
        acted = False
        for number, call in enumerate(decision.calls):
            if call.name == "complete":
                problem = output_problem(task.data_extraction_schema, call.args.get("output"))
                verdict = f"complete -> rejected: {problem}" if problem else "complete -> the run completed"
                await store.record_action(step_id, number, call.name, call.args, call.reasoning,
                                          problem is None, verdict)
                if problem is None:
                    outcome = RunOutcome("completed", output=call.args.get("output"),
                                         summary=call.args.get("summary"))
                break
            if call.name == "terminate":
                outcome = _terminated(call)
                await store.record_action(step_id, number, call.name, call.args, call.reasoning, True,
                                          f"terminate -> {outcome.failure_reason}")
                break
            if call.name == "ask_human":
                asked = await _ask_human(steering, call)
                await store.record_action(step_id, number, call.name, call.args, call.reasoning,
                                          steering is not None, asked)
                history.append(asked)
                break
            if run.crashed:
                break
            result = await apply(run, call, store)
            acted = True
            await store.record_action(step_id, number, call.name, call.args, call.reasoning,
                                      result.succeeded, result.outcome)
            history.append(result.outcome)
            if result.page_changed or not result.succeeded or run.crashed:
                break
        await store.finish_step(step_id, decision.usage, max(0, _ms_since(started) - decision.usage.llm_ms))
        acted_step = step_id if acted and not run.crashed else None
        if outcome is None and run.crashed:
            return _crashed(run, index, history)
        if outcome is None and problem is not None and feedback is not None:
            outcome = RunOutcome("failed", failure_reason=_second_strike(planner, problem, index))
        if outcome is not None:
            await _save_action_screenshot(run, store, acted_step)
            return outcome
        feedback = problem
    await _save_action_screenshot(run, store, acted_step)
    return RunOutcome("timed_out", failure_reason=(
        f"Reached the step limit ({task.max_steps} steps) before the goal was met; last action: "
        f"{_last(history) or 'none'}. Raise max_steps if the task needs more steps."))


def output_problem(schema: Any, output: Any) -> str | None:
    """Why `output` does not satisfy data_extraction_schema (a JSON schema), or None."""
    from workers.planner import as_json_schema

    json_schema = as_json_schema(schema)
    if json_schema is None:
        return None
    try:
        jsonschema.validate(output, json_schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        at = f" at {where}" if where else ""
        return f"output{at} does not match data_extraction_schema: {exc.message}."
    except jsonschema.SchemaError as exc:
        return f"data_extraction_schema is not a valid JSON schema ({exc.message}); output cannot be checked."
    return None


async def _ask_human(steering: Steering | None, call: ToolCall) -> str:
    """Pause at the next step boundary until a person gave control back; the history line it leaves."""
    reason = str(call.args.get("reason") or "").strip() or "The agent asked for a person without a reason."
    if steering is None:
        return "ask_human -> no person can be asked in this run; carry on or terminate."
    await steering.ask_human(reason)
    return f"ask_human -> waiting for a person: {reason}"


def _terminated(call: ToolCall) -> RunOutcome:
    reason = str(call.args.get("reason") or "").strip() or "The model ended the run without giving a reason."
    code = call.args.get("error_code")
    errors = [{"error_code": str(code), "reasoning": reason, "confidence_float": 1.0,
               "error_type": "USER_DEFINED_ERROR"}] if code else []
    return RunOutcome("terminated", failure_reason=reason, errors=errors)


def _second_strike(planner: Planner, problem: str, index: int) -> str:
    if problem.startswith(("output", "data_extraction_schema")):
        return (f"The model's complete() output was rejected twice in a row (step {index + 1}): {problem} "
                "Check that the prompt asks for the data the schema describes.")
    return (f"The model ({planner.model}) gave an unusable answer twice in a row (step {index + 1}): "
            f"{problem} Use a model that supports tool calling, or set WAYFARER_LLM_MODEL to one.")


def _crashed(run: BrowserRun, index: int, history: list[str] | None) -> RunOutcome:
    return RunOutcome("failed", failure_reason=(
        f"The browser crashed ({run.crash_reason or 'it stopped responding'}) during step {index + 1}"
        f"{_last(history or [], '; last action: ')}. The run can be retried."))


async def _save_screenshots(store: RunStore, shot: bytes | None, step_id: str,
                            acted_step: str | None) -> None:
    """One screenshot, two roles: the new step's screenshot_llm and the acting step's screenshot_action."""
    if shot is None:
        return
    if acted_step is not None:
        await store.save_artifact(acted_step, "screenshot_action", shot, "image/jpeg")
    await store.save_artifact(step_id, "screenshot_llm", shot, "image/jpeg")


async def _save_action_screenshot(run: BrowserRun, store: RunStore, step_id: str | None) -> None:
    """The last acting step's screenshot_action, when no next capture will provide it."""
    from workers.page_state import take_screenshot

    if step_id is None:
        return
    shot = await take_screenshot(run.active_page)
    if shot is not None:  # else the page went away; the next capture reports what is left
        await store.save_artifact(step_id, "screenshot_action", shot, "image/jpeg")


def _effect(outcome: str) -> str:
    """The effect half of an ActionResult outcome ("goto_url x -> could not load x" -> "could not ...")."""
    effect = outcome.split(" -> ", 1)[-1].strip()
    return effect[:1].upper() + effect[1:]


def _last(history: list[str], prefix: str = "") -> str:
    return f"{prefix}{history[-1]}" if history else ""


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()
