"""replay(): play a recorded script back on a fresh browser with no LLM call; heal a step that no longer
fits with one planner call (when ai_fallback allows), or end the run naming that step.

Per script step: capture the page (no screenshot), find the step's element (`locate.resolve`, looking
again whenever the document changes, up to the settle timeout: the page's own signal, never a fixed
sleep), apply the recorded call through the tool registry, and keep the step (with this page's URL and
title) for the script this run leaves behind; only a healed step's element is described afresh. A miss —
the element cannot be told apart, or the call fails — goes to the planner once, with the recorded intent
in its prompt; its call replaces the step in the new script. A step whose arguments hold a reference
this run has no value for (app/scripts/parameters.py) is a miss too, never typed as text; its heal is for
this run only, and the new script keeps the step with its reference. The recorded output is reused when
every value in it is on the final page; otherwise the planner is asked for it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

from playwright.async_api import Error as PlaywrightError

from app.schemas.extraction import output_problem
from app.scripts.document import ScriptDoc, ScriptStep
from app.scripts.parameters import References
from workers.agent.browser import BrowserRun
from workers.agent.contract import (
    ActionResult,
    PlannerError,
    RunOutcome,
    RunStore,
    Steering,
    StepUsage,
    TaskSpec,
    ToolCall,
)
from workers.agent.loop import crashed, ms_since, open_start_page, save_decision
from workers.agent.page_state import PageState, capture
from workers.agent.planner import Planner
from workers.agent.replay.locate import resolve, same_page
from workers.agent.replay.record import Recorder
from workers.agent.tools import ToolContext, apply, get_tool

POLL_SECONDS = 0.25  # the longest a missing element waits between two looks
MIN_POLL_SECONDS = 0.05  # the shortest: a page that changes all the time is not captured nonstop
# Resolves at the document's next change, or after `ms`.
_CHANGED_JS = """ms => new Promise(resolve => {
  const done = () => { observer.disconnect(); clearTimeout(timer); resolve(); };
  const observer = new MutationObserver(done);
  observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  const timer = setTimeout(done, ms);
})"""
AI_FALLBACK_OFF = ("ai_fallback is off, so the model was not asked; run again with ai_fallback true, or with "
                   "run_with \"agent\"")


@dataclass
class ReplayReport:
    outcome: RunOutcome
    script: ScriptDoc  # the script as this run did it: healed steps replaced
    replayed: int = 0
    healed: int = 0
    usage: StepUsage = field(default_factory=StepUsage)  # the heals' LLM calls and tokens
    healed_steps: list[int] = field(default_factory=list)  # 1-based script step numbers
    rewritten: bool = False  # a heal replaced a step or the output: `script` is a new version


@dataclass
class _Replay:
    task: TaskSpec
    run: BrowserRun
    store: RunStore
    planner: Planner | None  # None: no model may be asked, for the reason `unhealable` gives
    unhealable: str
    recorder: Recorder
    report: ReplayReport
    references: References
    history: list[str] = field(default_factory=list)


async def replay(task: TaskSpec, run: BrowserRun, script: ScriptDoc, store: RunStore,
                 planner: Planner | None, steering: Steering | None = None,
                 unhealable: str = AI_FALLBACK_OFF, references: References | None = None) -> ReplayReport:
    """`planner` None: a step that does not fit ends the run, `unhealable` saying why no model was asked.
    `script` has this run's values in place of its references (`with_values`); `references` names those
    left unfilled."""
    recorder = Recorder(run, task.url)
    recorder.script.llm_calls, recorder.script.tokens = script.llm_calls, script.tokens
    state = _Replay(task, run, store, planner, unhealable, recorder,
                    ReplayReport(RunOutcome("failed"), recorder.script), references or References())
    state.report.outcome = await _play(state, script, steering)
    return state.report


async def _play(state: _Replay, script: ScriptDoc, steering: Steering | None) -> RunOutcome:
    if (failed := await open_start_page(state.task, state.run, state.store)) is not None:
        return failed
    for index, step in enumerate(script.steps):
        if steering is not None:
            await steering.wait_if_paused()
        if state.run.crashed:
            return crashed(state.run, index, state.history)
        ended = await _step(state, index, step)
        if ended is not None:
            return ended
    return await _finish(state, script, len(script.steps))


async def _step(state: _Replay, index: int, step: ScriptStep) -> RunOutcome | None:
    """One script step as one run step; a run outcome when it ended the run."""
    started = time.monotonic()
    unfilled = state.references.unfilled(step.args)
    if not unfilled:
        page_state, ref, why = await _find(state.run, step)
    else:  # never typed as text: a miss, healed or failed as any other
        page_state, ref, why = await capture(state.run, screenshot=False), None, f"it {_lacking(unfilled)}"
    step_id = await state.store.start_step(index, page_state.url)
    await _save_snapshot(state.store, step_id, page_state)
    if why is None:
        call = ToolCall(step.tool, {**step.args, **({"ref": ref} if ref else {})},
                        reasoning=f"replayed script step {index + 1}")
        context = ToolContext(state.run, state.store, page_state.labels, state.task)
        result = await apply(context, call)
        await state.store.record_action(step_id, 0, call.name, call.args, call.reasoning, result.succeeded,
                                        result.outcome, replay="replayed")
        if result.succeeded:  # kept as recorded (its element was found by that description), on this page
            state.recorder.script.steps.append(replace(step, url=page_state.url, title=page_state.title))
            state.history.append(result.outcome)
            state.report.replayed += 1
            await state.store.finish_step(step_id, StepUsage(), ms_since(started))
            return None
        why = result.problem or result.outcome
        page_state = await capture(state.run, screenshot=False)
    return await _heal(state, index, step, step_id, page_state, why, started, keep=bool(unfilled))


def _lacking(unfilled: list[str]) -> str:
    return (f"refers to {', '.join(unfilled)}, which this run has no value for (an earlier block's "
            "output without that path, or null)")


async def _find(run: BrowserRun, step: ScriptStep) -> tuple[PageState, str | None, str | None]:
    """A fresh capture, the ref of the step's element in it, and why the step does not fit (None: it
    does), waiting up to the settle time for the recorded page and element to be there."""
    deadline = time.monotonic() + run.settle_timeout_ms / 1000
    while True:
        page_state = await capture(run, screenshot=False)
        ref, why = None, None
        if not same_page(step.url, step.title, page_state.url, page_state.title):
            why = (f"the page is not the one the script was recorded on (recorded: '{step.title}' at "
                   f"{step.url}; now: '{page_state.title}' at {page_state.url})")
        elif step.target is not None:
            ref = await resolve(run.active_page, page_state.labels, step.target)
            why = None if ref else f"its element ({step.target.label}) is not on the page"
        if why is None or time.monotonic() >= deadline:
            return page_state, ref, why
        await _changed(run, POLL_SECONDS)


async def _changed(run: BrowserRun, timeout_s: float) -> None:
    """Until the page changes (at least MIN_POLL_SECONDS, at most `timeout_s`): late content is looked
    for as soon as it lands."""
    started = time.monotonic()
    # PlaywrightError: a navigation replaced the document (look at the new one); TimeoutError: the page's
    # script is stuck (a dialog), so its timer never fired
    with contextlib.suppress(PlaywrightError, TimeoutError):
        async with asyncio.timeout(timeout_s + POLL_SECONDS):
            await run.active_page.evaluate(_CHANGED_JS, int(timeout_s * 1000))
    await asyncio.sleep(max(MIN_POLL_SECONDS - (time.monotonic() - started), 0.0))


async def _heal(state: _Replay, index: int, step: ScriptStep, step_id: str, page_state: PageState,
                why: str, started: float, keep: bool) -> RunOutcome | None:
    """`keep`: the step missed for want of a value in this run, not because the page changed; the new
    script keeps it as recorded (with its reference), not the heal's calls."""
    name = f"script step {index + 1} ({step.intent or step.tool})"
    if state.planner is None:
        await state.store.finish_step(step_id, StepUsage(), ms_since(started))
        return RunOutcome("failed", failure_reason=(
            f"Replay stopped at {name}: {why}. {state.unhealable}."))
    notice = (f"You are repairing one step of a recorded script. The recorded step was: "
              f"{step.intent or step.tool} (tool {step.tool}, arguments {step.args}). It could not be "
              f"replayed: {why}. Do that one step on this page now; call complete only if the task is "
              "already done.")
    outcome = await _ask(state, step_id, page_state, notice, started, record=not keep)
    if outcome is None:
        state.report.healed += 1
        state.report.healed_steps.append(index + 1)
        if keep:
            state.recorder.script.steps.append(step)
        else:
            state.report.rewritten = True
    return outcome


async def _ask(state: _Replay, step_id: str, page_state: PageState, notice: str,
               started: float, record: bool = True) -> RunOutcome | None:
    """One planner call on this step: its calls applied until one changes the page (as the step loop
    does), each marked healed and (`record`) recorded into the new script."""
    assert state.planner is not None
    try:
        decision = await state.planner.decide(page_state, state.history, None, notice)
    except PlannerError as exc:
        await state.store.finish_step(step_id, StepUsage(), ms_since(started))
        return RunOutcome("failed", failure_reason=f"Replay could not heal a step: {exc}")
    await save_decision(state.store, step_id, decision)
    _add(state.report.usage, decision.usage)
    context = ToolContext(state.run, state.store, page_state.labels, state.task)
    outcome: RunOutcome | None = None
    result: ActionResult | None = None
    for number, call in enumerate(decision.calls):
        if record:
            await state.recorder.before(call, page_state.labels)
        result = await apply(context, call)
        if record:
            state.recorder.after(call, result)
        await state.store.record_action(step_id, number, call.name, call.args, call.reasoning,
                                        result.succeeded, result.outcome, replay="healed")
        state.history.append(result.outcome)
        tool = get_tool(call.name)
        if tool is not None and tool.finishes:
            outcome = result.ends_run
            break
        if result.page_changed or not result.succeeded:
            break
    await state.store.finish_step(step_id, decision.usage, max(0, ms_since(started) - decision.usage.llm_ms))
    if outcome is None and (result is None or not result.succeeded):
        problem = decision.feedback or (result.outcome if result else "the model gave no call")
        return RunOutcome("failed", failure_reason=f"Replay could not heal a step: {problem}")
    return outcome


async def _finish(state: _Replay, script: ScriptDoc, index: int) -> RunOutcome:
    """The run's output: the recorded one when the page still shows it, else the planner's (one call)."""
    started = time.monotonic()
    page_state = await capture(state.run, screenshot=False)
    step_id = await state.store.start_step(index, page_state.url)
    await _save_snapshot(state.store, step_id, page_state)
    page_text = page_state.snapshot + "\n" + await _body_text(state.run)
    unfilled = state.references.unfilled([script.output, script.summary])
    if not unfilled and all(value in page_text for value in _texts(script.output)) and output_problem(
            state.task.data_extraction_schema, script.output) is None:
        call = ToolCall("complete", {"output": script.output, "summary": script.summary},
                        reasoning="replayed the recorded output: every value of it is on the final page")
        context = ToolContext(state.run, state.store, page_state.labels, state.task)
        state.recorder.script.output, state.recorder.script.summary = script.output, script.summary
        result = await apply(context, call)
        await state.store.record_action(step_id, 0, call.name, call.args, call.reasoning, result.succeeded,
                                        result.outcome, replay="replayed")
        if result.ends_run is not None:
            await state.store.finish_step(step_id, StepUsage(), ms_since(started))
            return result.ends_run
    if state.planner is None:
        await state.store.finish_step(step_id, StepUsage(), ms_since(started))
        why = _lacking(unfilled) if unfilled else "is no longer on the page"
        return RunOutcome("failed", failure_reason=(
            f"Replay stopped at the final extraction: the recorded output {why}. {state.unhealable}."))
    outcome = await _ask(state, step_id, page_state, (
        "Every step of a recorded script was replayed. Read the output the task asks for from this page "
        "and call complete with it."), started, record=not unfilled)
    if outcome is None:
        return RunOutcome("failed", failure_reason="Replay ended without the model completing the task.")
    state.report.healed += 1
    state.report.healed_steps.append(index + 1)
    if unfilled:  # this run's output; the script keeps the recorded one, references and all
        state.recorder.script.output, state.recorder.script.summary = script.output, script.summary
    else:
        state.report.rewritten = True
    return outcome


async def _save_snapshot(store: RunStore, step_id: str, page_state: PageState) -> None:
    await store.save_artifact(step_id, "visible_elements_tree", page_state.snapshot.encode(), "text/plain")


async def _body_text(run: BrowserRun) -> str:
    try:
        return str(await run.active_page.inner_text("body", timeout=2000))
    except Exception:  # the page may be gone or have no body; the snapshot alone is checked then
        return ""


def _texts(value: Any) -> list[str]:
    """The values an output reports (strings and numbers), each of which the page must show."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, bool) or value is None:
        return []
    return [str(value)]


def _add(total: StepUsage, usage: StepUsage) -> None:
    total.prompt_tokens += usage.prompt_tokens
    total.completion_tokens += usage.completion_tokens
    total.llm_calls += usage.llm_calls
    total.llm_ms += usage.llm_ms
