"""The step loop: capture the page, ask the planner, apply its tool calls, record everything.

`drive` is a plain async function over small interfaces — the browser (`BrowserRun`), the planner
(`Planner`), the tool registry (`workers.agent.tools`) and the `RunStore` — so each can be tested alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Any

from workers.agent.browser import BrowserRun
from workers.agent.contract import (
    ActionRecorder,
    PlannerError,
    RunOutcome,
    RunStore,
    Steering,
    StepUsage,
    TaskSpec,
    ToolCall,
)
from workers.agent.page_state import capture, step_screenshot, take_screenshot
from workers.agent.planner import Planner, PlannerDecision
from workers.agent.repetition import RepetitionGuard
from workers.agent.tools import ToolContext, apply, get_tool


async def drive(task: TaskSpec, run: BrowserRun, planner: Planner, store: RunStore,
                steering: Steering | None = None, recorder: ActionRecorder | None = None) -> RunOutcome:
    """Open task.url, then step until the model completes or terminates, or a bound is hit. A
    `recorder` sees every call applied (a run recording a script for replay).

    Safe to cancel at any await (the caller enforces the deadline and cancel requests that way):
    everything already recorded is complete, nothing is left half-written in this function.
    """
    if (failed := await open_start_page(task, run, store)) is not None:
        return failed
    history: list[str] = []
    feedback: str | None = None  # what was wrong with the last answer; sent back once
    acted_step: str | None = None  # its screenshot_action is the next capture's screenshot: no 2nd shot
    repetition = RepetitionGuard(task.max_repeated_actions)
    for index in range(task.max_steps):
        if run.crashed:
            return crashed(run, index, history)
        if steering is not None and (why := await steering.wait_if_paused()) is not None:
            await _save_action_screenshot(run, store, acted_step)  # the page as the agent left it
            acted_step = None
            repetition = RepetitionGuard(task.max_repeated_actions)  # what a person did is no loop
            run.acted_at = time.time()
            history.append(f"paused ({why}) -> a person had control of the browser and may have changed "
                           f"the page; they left it on {run.active_page.url}. Look at the page afresh.")
            if run.crashed:
                return crashed(run, index, history)
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
                decision = await planner.decide(state, history, feedback, repetition.notice())
            except PlannerError as exc:
                decision = exc
            await _save_screenshots(store, await shot, step_id, acted_step)
        finally:
            shot.cancel()  # only still running when the run was cancelled meanwhile
        if isinstance(decision, PlannerError):
            if decision.request is not None:
                await store.save_artifact(step_id, "llm_request", _json(decision.request), "application/json")
            await store.finish_step(step_id, StepUsage(), ms_since(started))
            last = _last(history, "; last action: ")
            return RunOutcome("failed", failure_reason=f"{decision} (step {index + 1}{last})")
        await save_decision(store, step_id, decision)
        problem = decision.feedback
        outcome: RunOutcome | None = None
        acted: list[tuple[ToolCall, str]] = []  # the calls applied to the page, with their outcomes
        context = ToolContext(run, store, state.labels, task, steering)
        for number, call in enumerate(decision.calls):
            tool = get_tool(call.name)
            finishes = tool is not None and tool.finishes
            if run.crashed and not finishes:
                break
            if recorder is not None:
                await recorder.before(call, state.labels)
            result = await apply(context, call)
            if recorder is not None:
                recorder.after(call, result)
            await store.record_action(step_id, number, call.name, call.args, call.reasoning,
                                      result.succeeded, result.outcome)
            if finishes:
                outcome = result.ends_run
                if outcome is None:  # complete's output was rejected: the model is told, once
                    problem = result.problem
                break
            acted.append((call, result.outcome))
            history.append(result.outcome)
            if result.page_changed or not result.succeeded or run.crashed:
                break
        await store.finish_step(step_id, decision.usage, max(0, ms_since(started) - decision.usage.llm_ms))
        acted_step = step_id if acted and not run.crashed else None
        if outcome is None and run.crashed:
            return crashed(run, index, history)
        if outcome is None and acted:
            repetition.observe(state, [call for call, _ in acted],
                               ", then ".join(done.split(" -> ", 1)[0] for _, done in acted))
            outcome = repetition.stuck(index + 1)
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


async def open_start_page(task: TaskSpec, run: BrowserRun, store: RunStore) -> RunOutcome | None:
    """Open task.url (if any); the run's failed outcome when it could not be opened."""
    if not task.url:
        return None
    opened = await apply(ToolContext(run, store, task=task), ToolCall("goto_url", {"url": task.url}))
    if run.crashed:
        return crashed(run, 0, None)
    if opened.succeeded:
        return None
    return RunOutcome("failed", failure_reason=(
        f"The start page {task.url} could not be opened: {_effect(opened.outcome)} "
        "Check that the URL is right and reachable from the worker."))


def _second_strike(planner: Planner, problem: str, index: int) -> str:
    if problem.startswith(("output", "data_extraction_schema")):
        return (f"The model's complete() output was rejected twice in a row (step {index + 1}): {problem} "
                "Check that the prompt asks for the data the schema describes.")
    return (f"The model ({planner.model}) gave an unusable answer twice in a row (step {index + 1}): "
            f"{problem} Use a model that supports tool calling, or set WAYFARER_LLM_MODEL to one.")


async def save_decision(store: RunStore, step_id: str, decision: PlannerDecision) -> None:
    """What was sent to the model and what it answered, as the step's llm_request / llm_response."""
    await store.save_artifact(step_id, "llm_request", _json(decision.request), "application/json")
    await store.save_artifact(step_id, "llm_response", _json({
        "response": decision.response, "usage": asdict(decision.usage), "rejected": decision.feedback,
    }), "application/json")


def crashed(run: BrowserRun, index: int, history: list[str] | None) -> RunOutcome:
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


def ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()
