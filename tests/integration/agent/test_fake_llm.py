"""The fake LLM answers the real wire format and is scriptable in-process and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.fake_llm import FakeLLM, RemoteFakeLLM, start_fake_llm

SNAPSHOT = '<page_snapshot>\n- button "Save" [ref=e7]\n</page_snapshot>'


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with start_fake_llm() as server:
        yield server


def ask(fake: FakeLLM, prompt: str, **extra: object) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "system", "content": prompt},
                                       {"role": "user", "content": SNAPSHOT}], **extra}
    return httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=10)


def test_scripted_tool_call_in_openai_wire_format_with_refs_resolved(fake: FakeLLM) -> None:
    fake.script("k-1", [[{"name": "click", "args": {"ref": {"role": "button", "name": "Save"}}}]])
    fake.script("k-1-other", [{"content": "wrong script"}])
    answer = ask(fake, "task k-1").json()
    assert answer["object"] == "chat.completion" and answer["model"] == "m"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "click"
    assert json.loads(call["function"]["arguments"]) == {"ref": "e7"}
    assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] > 0
    exhausted = ask(fake, "task k-1").json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert exhausted["name"] == "terminate"
    assert json.loads(exhausted["arguments"]) == {"reason": "script exhausted"}


def test_errors_text_answers_and_stream_rejection(fake: FakeLLM) -> None:
    fake.script("k-2", [{"status": 503}, {"content": "no tool call"}])
    assert ask(fake, "k-2").status_code == 503
    text = ask(fake, "k-2").json()["choices"][0]
    assert (text["finish_reason"], text["message"]["content"]) == ("stop", "no tool call")
    assert ask(fake, "k-2", stream=True).status_code == 400


def test_scripting_over_http(fake: FakeLLM) -> None:
    remote = RemoteFakeLLM(fake.base_url)
    remote.script("k-3", [[{"name": "go_back", "args": {}}]])
    assert ask(fake, "k-3").json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "go_back"
    assert any("k-3" in body["messages"][0]["content"] for body in remote.requests)
