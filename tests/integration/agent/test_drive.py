"""The step loop end to end: real Chromium, served pages, the fake LLM over HTTP, an in-memory store."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError

from tests.fakes.fake_llm import last_user_text
from tests.integration.agent.conftest import Agent, MemoryStore
from workers.agent.contract import PlannerError, TaskSpec
from workers.agent.planner import SNAPSHOT_CLOSE, SNAPSHOT_OPEN, Planner

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

GREETING_SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
SIGN = [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada"}},
        {"name": "click", "args": {"ref": {"role": "button", "name": "Sign"}}}]


def complete(output: Any, summary: str = "Done.") -> list[dict[str, Any]]:
    return [{"name": "complete", "args": {"output": output, "summary": summary}}]


def wait() -> list[dict[str, Any]]:
    return [{"name": "wait", "args": {"seconds": 0}}]


async def test_completes_with_valid_output_and_records_every_step(agent: Agent) -> None:
    settings = agent.settings(llm_vision=True)
    outcome, store, token = await agent.run([SIGN, complete({"greeting": "Thanks, Ada!"}, "Signed.")],
                                            settings=settings, data_extraction_schema=GREETING_SCHEMA)
    assert (outcome.status, outcome.output, outcome.summary) == ("completed", {"greeting": "Thanks, Ada!"},
                                                                 "Signed.")
    assert agent.sites.submissions[-1]["name"] == "Ada"

    first, second = agent.fake.requests_for(token)
    page = last_user_text(first)
    block = page.split(SNAPSHOT_OPEN, 1)[1].split(SNAPSHOT_CLOSE, 1)[0]
    assert "untrusted page content" in page and '- button "Sign" [ref=' in block
    assert first["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "1. input_text textbox 'Name' -> " in last_user_text(second)
    assert "2. click button 'Sign' -> navigated to /submit" in last_user_text(second)

    assert [step[1] for step in store.steps] == [0, 1]
    for step_id, _, _ in store.steps:
        kinds = {a.artifact_type for a in store.artifacts if a.step_id == step_id}
        assert {"screenshot_llm", "visible_elements_tree", "llm_request", "llm_response"} <= kinds
        usage, harness_ms = store.finished[step_id]
        assert usage.llm_calls == 1 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert harness_ms >= 0
    assert [a.step_id for a in store.of_type("screenshot_action")] == ["stp_0"]
    request = store.of_type("llm_request")[0].json()
    assert request["tools"] and request["messages"][0]["role"] == "system"
    response = store.of_type("llm_response")[0].json()
    assert response["usage"]["llm_calls"] == 1 and response["response"]["choices"][0]["message"]["tool_calls"]
    assert [(a["action_type"], a["succeeded"]) for a in store.actions] == [
        ("input_text", True), ("click", True), ("complete", True)]


async def test_invalid_output_is_sent_back_once_and_then_corrected(agent: Agent) -> None:
    outcome, _, token = await agent.run([complete({"greeting": 5}), complete({"greeting": "hi"})],
                                        data_extraction_schema=GREETING_SCHEMA)
    assert (outcome.status, outcome.output) == ("completed", {"greeting": "hi"})
    retry = last_user_text(agent.fake.requests_for(token)[1])
    assert ("Your last answer was rejected: output at greeting does not match data_extraction_schema: "
            "5 is not of type 'string'.") in retry


async def test_invalid_output_twice_fails_saying_why(agent: Agent) -> None:
    outcome, store, _ = await agent.run([complete({"greeting": 5}), complete({})],
                                        data_extraction_schema=GREETING_SCHEMA)
    assert outcome.status == "failed"
    assert outcome.failure_reason == (
        "The model's complete() output was rejected twice in a row (step 2): output does not match "
        "data_extraction_schema: 'greeting' is a required property. Check that the prompt asks for the "
        "data the schema describes.")
    assert [a["succeeded"] for a in store.actions] == [False, False]


async def test_terminate_with_an_error_code(agent: Agent) -> None:
    reason = "The guest book is closed."
    script = [[{"name": "terminate", "args": {"reason": reason, "error_code": "CLOSED"}}]]
    outcome, _, _ = await agent.run(script, error_code_mapping={"CLOSED": "the guest book is closed"})
    assert (outcome.status, outcome.failure_reason) == ("terminated", "The guest book is closed.")
    assert outcome.errors == [{"error_code": "CLOSED", "reasoning": "The guest book is closed.",
                               "confidence_float": 1.0, "error_type": "USER_DEFINED_ERROR"}]


async def test_malformed_answer_then_fixed(agent: Agent) -> None:
    outcome, _, token = await agent.run([{"content": "Let me think."}, complete(None)])
    assert outcome.status == "completed"
    assert ("Your last answer was rejected: it contained no tool call (you wrote: 'Let me think.')."
            in last_user_text(agent.fake.requests_for(token)[1]))


async def test_malformed_twice_fails_saying_what_the_model_did(agent: Agent) -> None:
    script = [[{"name": "click", "args": {"ref": {"role": "button", "name": "Nope"}}}],
              [{"name": "click", "arguments": '{"ref": '}]]
    outcome, store, _ = await agent.run(script)
    assert outcome.status == "failed" and outcome.failure_reason is not None
    assert outcome.failure_reason.startswith(
        "The model (fake-model) gave an unusable answer twice in a row (step 2): the arguments of click "
        "are not valid JSON")
    assert "WAYFARER_LLM_MODEL" in outcome.failure_reason
    assert store.actions == []  # nothing was executed
    assert store.of_type("llm_response")[0].json()["rejected"].startswith(
        "click: \"missing button 'Nope'\" is not a ref in the current snapshot")


async def test_llm_500_is_retried_by_the_client(agent: Agent) -> None:
    outcome, store, token = await agent.run([{"status": 500}, complete(None)])
    assert outcome.status == "completed"
    assert len(agent.fake.requests_for(token)) == 2
    assert store.finished["stp_0"][0].llm_calls == 1


async def test_llm_timeout_fails_with_a_clear_reason(agent: Agent) -> None:
    settings = agent.settings(llm_timeout_seconds=0.5, llm_max_retries=1)
    outcome, store, _ = await agent.run([{"delay": 5}, {"delay": 5}], settings=settings)
    assert outcome.status == "failed"
    assert store.of_type("llm_request")[0].json()["model"] == "fake-model"  # what was being sent
    assert outcome.failure_reason == (
        f"The LLM endpoint {agent.fake.base_url} (model 'fake-model') did not answer within 0.5 s "
        "(2 attempt(s)); check the server or raise WAYFARER_LLM_TIMEOUT_SECONDS. (step 1)")


async def test_an_llm_error_says_how_many_requests_were_made_and_what_the_provider_said(agent: Agent) -> None:
    too_long = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000."
    settings = agent.settings(llm_max_retries=3)
    outcome, _, token = await agent.run([{"status": 400, "message": too_long}], settings=settings)
    assert outcome.failure_reason is not None and len(agent.fake.requests_for(token)) == 1
    assert outcome.failure_reason.startswith(
        f"The LLM endpoint {agent.fake.base_url} (model 'fake-model') answered HTTP 400 after 1 attempt(s): "
        f"{too_long}")  # a 400 is not retried: one request, not four
    page = "<html><body><h1>502 Bad Gateway</h1>\n  upstream   exploded</body></html>"
    outcome, _, token = await agent.run([{"status": 500, "raw": page}] * 2,
                                        settings=agent.settings(llm_max_retries=1))
    assert len(agent.fake.requests_for(token)) == 2
    assert outcome.failure_reason is not None and (
        "answered HTTP 500 after 2 attempt(s): response body: <html><body><h1>502 Bad Gateway</h1> upstream "
        "exploded</body></html>") in outcome.failure_reason


async def test_unreachable_llm_names_the_endpoint(agent: Agent) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    settings = agent.settings(WAYFARER_LLM_BASE_URL=dead, llm_max_retries=0)
    outcome, _, _ = await agent.run([], settings=settings)
    assert outcome.status == "failed" and outcome.failure_reason is not None
    assert outcome.failure_reason.startswith(f"The LLM endpoint {dead} (model 'fake-model') could not be "
                                             "reached after 1 attempt(s)")
    assert "check WAYFARER_LLM_BASE_URL" in outcome.failure_reason


async def test_no_llm_configured_fails_at_once_naming_the_settings(agent: Agent) -> None:
    settings = agent.settings(WAYFARER_LLM_BASE_URL=None, WAYFARER_LLM_API_KEY=None)
    with pytest.raises(PlannerError, match=r"set WAYFARER_LLM_BASE_URL .* WAYFARER_LLM_API_KEY"):
        Planner(settings, TaskSpec("tsk_x", "p", None, 3))


async def test_step_limit_times_out_with_the_last_action(agent: Agent) -> None:
    outcome, store, _ = await agent.run([wait(), wait(), wait()], max_steps=2)
    assert (outcome.status, outcome.failure_reason) == ("timed_out", (
        "Reached the step limit (2 steps) before the goal was met; last action: wait 0s -> done. "
        "Raise max_steps if the task needs more steps."))
    assert len(store.steps) == 2


async def test_multi_step_form_flow(agent: Agent) -> None:
    def ref(role: str, name: str) -> dict[str, str]:
        return {"role": role, "name": name}

    script = [
        [{"name": "input_text", "args": {"ref": ref("textbox", "Name"), "text": "Grace"}},
         {"name": "click", "args": {"ref": ref("button", "Next")}}],
        [{"name": "input_text", "args": {"ref": ref("textbox", "City"), "text": "Arlington"}},
         {"name": "select_option", "args": {"ref": ref("combobox", "Speed"), "option": "Express"}}],
        [{"name": "click", "args": {"ref": ref("button", "Place order")}}],
        complete({"greeting": "Thanks, Grace!"}),
    ]
    outcome, store, _ = await agent.run(script, "/wizard.html", data_extraction_schema=GREETING_SCHEMA)
    assert outcome.status == "completed", outcome.failure_reason
    assert agent.sites.submissions[-1] == {"name": "Grace", "city": "Arlington", "speed": "Express"}
    assert len(store.steps) == 4 and all(a["succeeded"] for a in store.actions)


async def test_unreachable_start_url_fails_saying_so(agent: Agent) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    outcome, store, _ = await agent.run([], url=url)
    assert (outcome.status, outcome.failure_reason) == ("failed", (
        f"The start page {url} could not be opened: Could not load {url}: net::ERR_CONNECTION_REFUSED. "
        "Check that the URL is right and reachable from the worker."))
    assert store.steps == []


async def test_browser_crash_mid_run_fails_saying_so(agent: Agent) -> None:
    class CrashingStore(MemoryStore):
        """Crashes the page's renderer as the second step starts, as a real crash would."""

        async def start_step(self, index: int, url: str) -> str:
            if index == 1 and self.browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await self.browser.active_page.goto("chrome://crash", timeout=3000)
                async with asyncio.timeout(10):
                    while not self.browser.crashed:
                        await asyncio.sleep(0.05)
            return await super().start_step(index, url)

    agent.store_factory = CrashingStore
    outcome, _, _ = await agent.run([wait(), wait(), wait()])
    assert outcome.status == "failed"
    assert outcome.failure_reason == ("The browser crashed (the page crashed) during step 2; last action: "
                                      "wait 0s -> done. The run can be retried.")
