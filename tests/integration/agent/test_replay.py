"""Record a run's script, replay it with no LLM call, heal a perturbed page (real Chromium, fake LLM)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.scripts.document import ScriptDoc
from tests.fakes.fake_llm import last_user_text
from tests.integration.agent.conftest import Agent, MemoryStore
from workers.agent.contract import BrowserOptions, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner
from workers.agent.replay.play import ReplayReport, replay
from workers.agent.replay.record import Recorder

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

ORDER = "/replay-order.html"
ORDER_SCRIPT: list[Any] = [
    [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada"}},
     {"name": "select_option", "args": {"ref": {"role": "combobox", "name": "Size"}, "option": "Large"}},
     {"name": "checkbox", "args": {"ref": {"role": "checkbox", "name": "Insured"}, "checked": True}},
     {"name": "click", "args": {"ref": {"role": "button", "name": "Send order"}}}],
    [{"name": "complete", "args": {"output": {"greeting": "Thanks, Ada!"}, "summary": "Ordered."}}],
]


async def record(agent: Agent, token: str) -> ScriptDoc:
    agent.fake.script(token, ORDER_SCRIPT)
    task = TaskSpec(f"tsk_{token}", f"Order a large insured parcel for Ada ({token}).",
                    agent.sites.url(ORDER), 6)
    browser = await agent.pool.open_run(task.run_id, BrowserOptions(), agent.tmp_path / token)
    recorder = Recorder(browser, task.url)
    planner = Planner(agent.settings(), task)
    try:
        outcome = await drive(task, browser, planner, MemoryStore(), recorder=recorder)
    finally:
        await planner.aclose()
        await browser.close()
    assert outcome.status == "completed"
    return recorder.script


async def play(agent: Agent, script: ScriptDoc, token: str, path: str, *,
               ai_fallback: bool = True) -> tuple[ReplayReport, MemoryStore]:
    task = TaskSpec(f"tsk_{uuid.uuid4().hex[:8]}", f"Order a large insured parcel for Ada ({token}).",
                    agent.sites.url(path), 6)
    browser = await agent.pool.open_run(task.run_id, BrowserOptions(), agent.tmp_path / task.run_id)
    planner = Planner(agent.settings(), task) if ai_fallback else None
    store = MemoryStore()
    try:
        report = await replay(task, browser, script, store, planner)
    finally:
        if planner is not None:
            await planner.aclose()
        await browser.close()
    return report, store


async def test_the_recording_keeps_roles_names_and_fallbacks_not_refs(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    assert [step.tool for step in script.steps] == ["goto_url", "input_text", "select_option", "checkbox",
                                                    "click"][1:]
    click = script.steps[-1]
    assert click.target is not None and (click.target.role, click.target.name) == ("button", "Send order")
    assert "#send" in click.target.fallbacks and "ref" not in click.args
    assert script.steps[0].args == {"text": "Ada"}  # typed values are kept as given
    assert script.output == {"greeting": "Thanks, Ada!"}
    assert ScriptDoc.from_json(script.to_json()) == script


async def test_replay_makes_no_llm_call_and_does_the_task(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    recorded_requests = len(agent.fake.requests_for(token))
    report, store = await play(agent, script, token, ORDER)
    assert report.outcome.status == "completed" and report.outcome.output == {"greeting": "Thanks, Ada!"}
    assert len(agent.fake.requests_for(token)) == recorded_requests  # not one request more
    assert (report.replayed, report.healed, report.usage.llm_calls) == (4, 0, 0)
    assert agent.sites.submissions[-1] == {"name": "Ada", "size": "Large", "insured": "yes"}
    assert {action["replay"] for action in store.actions} == {"replayed"}


async def test_a_reworded_button_with_its_id_is_found_without_the_model(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    before = len(agent.fake.requests_for(token))
    report, _ = await play(agent, script, token, "/replay-order-renamed.html")
    assert report.outcome.status == "completed" and report.healed == 0
    assert len(agent.fake.requests_for(token)) == before


async def test_a_moved_button_is_healed_by_one_call_and_the_new_script_replays(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    before = len(agent.fake.requests_for(token))
    agent.fake.script(token, [[{"name": "click", "args": {"ref": {"role": "button", "name": "Confirm"}}}]])
    report, store = await play(agent, script, token, "/replay-order-moved.html")
    assert report.outcome.status == "completed", report.outcome.failure_reason
    assert (report.healed, report.healed_steps, report.usage.llm_calls) == (1, [4], 1)
    assert len(agent.fake.requests_for(token)) == before + 1
    heal_prompt = last_user_text(agent.fake.requests_for(token)[-1])
    assert "repairing one step of a recorded script" in heal_prompt
    assert "click button 'Send order'" in heal_prompt
    assert [a["replay"] for a in store.actions][-2:] == ["healed", "replayed"]
    healed = report.script
    assert healed.steps[-1].target is not None and healed.steps[-1].target.name == "Confirm"

    again, _ = await play(agent, healed, token, "/replay-order-moved.html")
    assert again.outcome.status == "completed" and again.healed == 0
    assert len(agent.fake.requests_for(token)) == before + 1


async def test_without_ai_fallback_a_miss_fails_naming_the_step(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    report, _ = await play(agent, script, token, "/replay-order-moved.html", ai_fallback=False)
    assert report.outcome.status == "failed"
    assert "script step 4 (click button 'Send order')" in (report.outcome.failure_reason or "")


async def test_the_right_elements_on_another_page_are_not_acted_on(agent: Agent) -> None:
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    assert (script.steps[0].title, script.steps[0].url) == ("Order a parcel", agent.sites.url(ORDER))
    submissions = len(agent.sites.submissions)
    report, store = await play(agent, script, token, "/replay-expired.html", ai_fallback=False)
    assert report.outcome.status == "failed" and store.actions == []
    assert "script step 1 (input_text textbox 'Name')" in (report.outcome.failure_reason or "")
    assert "not the one the script was recorded on" in (report.outcome.failure_reason or "")
    assert len(agent.sites.submissions) == submissions


async def test_a_script_replays_in_a_browser_that_navigated_before(agent: Agent) -> None:
    """After a navigation Playwright prefixes the main frame's refs too ("f2e5"); a workflow's later block
    (or a loop's next iteration) replays there what was recorded on a first document ("e5")."""
    token = f"task-{uuid.uuid4().hex[:10]}"
    script = await record(agent, token)
    task = TaskSpec(f"tsk_{uuid.uuid4().hex[:8]}", f"Order a large insured parcel ({token}).",
                    agent.sites.url(ORDER), 6)
    browser = await agent.pool.open_run(task.run_id, BrowserOptions(), agent.tmp_path / task.run_id)
    try:
        first = await replay(task, browser, script, MemoryStore(), None)
        again = await replay(task, browser, script, MemoryStore(), None)  # on a page opened after /submit
    finally:
        await browser.close()
    assert first.outcome.status == again.outcome.status == "completed", again.outcome.failure_reason
    assert again.replayed == 4
