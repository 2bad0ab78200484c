"""A fake OpenAI-compatible chat-completions server that answers from per-task scripts.

    with start_fake_llm() as fake:
        fake.script("task-1234", [
            [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada"}},
             {"name": "click", "args": {"ref": {"role": "button", "name": "Sign"}}}],
            [{"name": "complete", "args": {"output": {"ok": True}, "summary": "Signed."}}],
        ])
        # point WAYFARER_LLM_BASE_URL at fake.base_url; put "task-1234" in the task's prompt

A request is served by the script whose key occurs in its messages (the longest such key, so "t-1" and
"t-1-stall" can coexist); each request takes the script's next step. A step is one of:
  [call, ...]             tool calls; call = {"name", "args"} or {"name", "arguments": "<raw text>"}
                          (raw text for malformed JSON); an args "ref" given as {"role", "name"} is
                          resolved against the `[ref=eN]` lines of the snapshot the request carries
  {"status": 500}         an HTTP error (with a short retry-after-ms so client retries are quick);
                          {"status": 500, "raw": "text"} answers that text as the body instead of JSON
  {"delay": 5, "then": step}   answer `then` (default: terminate) after sleeping, to trip client timeouts
  {"content": "text"}     a plain text answer without tool calls
An args value {"match": "<regex>"} (anywhere in the args) becomes the regex's first group found in the
snapshot the request carries (None if absent): a scripted answer that reads the page, e.g. what a person
typed into a field while they held control.
When a script runs out (or no key matches) the answer is terminate(reason="script exhausted").

The same scripting works over HTTP for other processes: POST /fake/scripts {"key", "steps"}, GET
/fake/requests (every chat request body received, in order); `RemoteFakeLLM(base_url)` wraps them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tests.sites.refs import ref_for

Step = Any  # list of tool calls, or a dict (status / delay / content)
EXHAUSTED = [{"name": "terminate", "args": {"reason": "script exhausted"}}]


class FakeLLM:
    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self._scripts: dict[str, list[Step]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def script(self, key: str, steps: list[Step]) -> None:
        with self._lock:
            self._scripts[key] = list(steps)

    def requests_for(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for body in self.requests if key in message_text(body)]

    def _next_step(self, body: dict[str, Any]) -> Step:
        text = message_text(body)
        with self._lock:
            self.requests.append(body)
            keys = [key for key in self._scripts if key in text]
            if not keys:
                return EXHAUSTED
            steps = self._scripts[max(keys, key=len)]
            return steps.pop(0) if steps else EXHAUSTED

    async def answer(self, body: dict[str, Any], request: Request) -> Response:
        if body.get("stream"):
            return _error(400, "stream: true is not supported by the fake; send stream: false.")
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return _error(400, "model and messages are required.")
        step = self._next_step(body)
        while isinstance(step, dict) and "delay" in step:
            until = time.monotonic() + float(step["delay"])
            while time.monotonic() < until:  # ends early once the client has given up
                if await request.is_disconnected():
                    return _error(499, "the client went away")
                await asyncio.sleep(0.05)
            step = step.get("then", EXHAUSTED)
        if isinstance(step, dict) and "status" in step:
            retry = {"retry-after-ms": str(step.get("retry_after_ms", 20))}
            if "raw" in step:
                return PlainTextResponse(str(step["raw"]), status_code=int(step["status"]), headers=retry)
            return _error(int(step["status"]), step.get("message", "scripted failure"), retry)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if isinstance(step, dict) and "content" in step:
            message["content"] = step["content"]
            finish = "stop"
        else:
            snapshot = last_user_text(body)
            message["tool_calls"] = [self._tool_call(call, snapshot) for call in step]
            finish = "tool_calls"
        number = next(self._ids)
        prompt_tokens = len(json.dumps(body.get("messages")) + json.dumps(body.get("tools") or [])) // 4
        completion_tokens = len(json.dumps(message)) // 4
        return JSONResponse({
            "id": f"chatcmpl-fake{number}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def _tool_call(self, call: dict[str, Any], snapshot: str) -> dict[str, Any]:
        if "arguments" in call:
            arguments = str(call["arguments"])
        else:
            args = _matched(dict(call.get("args") or {}), snapshot)
            if isinstance(args.get("ref"), dict):
                args["ref"] = _resolve(snapshot, args["ref"])
            arguments = json.dumps(args)
        return {"id": f"call_{next(self._ids)}", "type": "function",
                "function": {"name": call["name"], "arguments": arguments}}


def _matched(value: Any, snapshot: str) -> Any:
    if isinstance(value, dict) and set(value) == {"match"}:
        found = re.search(str(value["match"]), snapshot)
        return found.group(1) if found else None
    if isinstance(value, dict):
        return {key: _matched(item, snapshot) for key, item in value.items()}
    if isinstance(value, list):
        return [_matched(item, snapshot) for item in value]
    return value


def _resolve(snapshot: str, ref: dict[str, str]) -> str:
    try:
        return ref_for(snapshot, ref["role"], ref["name"])
    except LookupError:
        return f"missing {ref['role']} {ref['name']!r}"  # the product must reject it as an unknown ref


def message_text(body: dict[str, Any]) -> str:
    return "\n".join(_content_text(message.get("content")) for message in body.get("messages") or [])


def last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return _content_text(users[-1].get("content")) if users else ""


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}},
                        status_code=status, headers=headers)


def create_app(fake: FakeLLM) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON.")
        return await fake.answer(body, request)

    @app.post("/fake/scripts")
    async def add_script(request: Request) -> dict[str, bool]:
        payload = await request.json()
        fake.script(payload["key"], payload["steps"])
        return {"ok": True}

    @app.get("/fake/requests")
    async def received(key: str | None = None) -> list[dict[str, Any]]:
        return fake.requests_for(key) if key else list(fake.requests)

    return app


class RemoteFakeLLM:
    """The scripting API of a fake running in another process, over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._root = base_url.removesuffix("/v1")

    def script(self, key: str, steps: list[Step]) -> None:
        response = httpx.post(f"{self._root}/fake/scripts", json={"key": key, "steps": steps}, timeout=10)
        response.raise_for_status()

    @property
    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self._root}/fake/requests", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


@contextmanager
def start_fake_llm() -> Iterator[FakeLLM]:
    """Serve a FakeLLM with uvicorn on 127.0.0.1 (a free port) in a background thread."""
    fake = FakeLLM()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(fake), log_level="warning", timeout_graceful_shutdown=1,
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-llm", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake LLM server did not start within 10 s")
        time.sleep(0.02)
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
