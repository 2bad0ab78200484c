"""What one agent step costs besides the model: harness time, prompt tokens, snapshot size.

Runs a fixed set of multi-step tasks on the test pages through the real step loop (drive(): capture,
artifacts, planner request over HTTP, actions, settling, screenshots, the run's video recording) with the
fake LLM answering instantly from scripts. Right after each task, in the same browser, the same pages and
actions run in a bare Playwright loop that only snapshots and acts (the floor), once as is and once
recording like a run does (the screencast encoded to WebM: to tell the recorder's share from the
harness's). Prints
per step, then medians with their spread and the ratios. Not a test: run it and read the figures.

    .venv/bin/python -m bench.step_overhead [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/step_overhead.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import Browser, BrowserContext, Page

from bench.common import Spread, agent_pool, bare_chromium, machine, ratio, token_encoding, verdict
from tests.fakes.fake_llm import FakeLLM
from tests.integration.agent.memory_store import MemoryStore
from tests.sites.refs import ref_for
from tests.sites.server import SiteServer, serve_sites
from workers.agent.browser import BrowserPool, BrowserRun
from workers.agent.contract import BrowserOptions, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner
from workers.agent.recording import WebmRecorder
from workers.agent.screencast import Screencast

RATIO_TARGET, MEDIAN_TARGET_MS, CALLS_TARGET = 1.25, 250, 1.05  # ratio: with recording on


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
    llm_calls: int
    prompt_tokens: int
    snapshot_chars: int


@dataclass
class Figures:
    steps: list[StepFigures]
    floor_ms: list[int]
    floor_video_ms: list[int]


def prompt_tokens(request: dict[str, Any], encoding: Any) -> int:
    texts = []
    for message in request["messages"]:
        content = message["content"]
        parts = content if isinstance(content, list) else [{"text": content}]
        texts += [part.get("text", "") for part in parts]
    texts.append(json.dumps(request["tools"]))
    return sum(len(encoding.encode(text)) for text in texts)


async def measure(sites: SiteServer, data_dir: Path, repeats: int, encoding: Any) -> Figures:
    """Harness and floors take turns task by task, so both see the same machine load."""
    figures = Figures([], [], [])
    async with agent_pool(data_dir) as (fake, settings, pool), bare_chromium(settings) as browser:
        for repeat in range(repeats):
            for name, (path, script) in TASKS.items():
                workdir = data_dir / f"bench-{repeat}-{name.replace(' ', '-')}"
                figures.steps += await agent_steps(pool, settings, fake, sites.url(path), workdir,
                                                   name, script, encoding)
                figures.floor_ms += await floor_steps(browser, sites.url(path), script, None)
                figures.floor_video_ms += await floor_steps(browser, sites.url(path), script,
                                                            workdir / "floor-video.webm")
    return figures


async def agent_steps(pool: BrowserPool, settings: Any, fake: FakeLLM, url: str, workdir: Path, name: str,
                      script: list[list[dict[str, Any]]], encoding: Any,
                      watch: Callable[[BrowserRun], AbstractAsyncContextManager[None]] | None = None,
                      ) -> list[StepFigures]:
    """One task through drive(); `watch` wraps the run (e.g. live viewers looking at it)."""
    token = workdir.name
    fake.script(token, script)
    task = TaskSpec(f"tsk_{token}", f"Bench task {token}.", url, len(script) + 1)
    store = MemoryStore()
    run = await pool.open_run(task.run_id, BrowserOptions(), workdir)
    planner = Planner(settings, task)
    try:
        async with watch(run) if watch else contextlib.nullcontext():
            outcome = await drive(task, run, planner, store)
    finally:
        await planner.aclose()
        await run.close()
    assert outcome.status == "completed", outcome.failure_reason
    trees = store.of_type("visible_elements_tree")
    requests = store.of_type("llm_request")
    steps = []
    for index, (step_id, _, _) in enumerate(store.steps):
        usage, harness_ms = store.finished[step_id]
        steps.append(StepFigures(name, index + 1, harness_ms, usage.llm_ms, usage.llm_calls,
                                 prompt_tokens(requests[index].json(), encoding),
                                 len(trees[index].data.decode())))
    return steps


async def floor_steps(browser: Browser, url: str, script: list[list[dict[str, Any]]],
                      recording: Path | None, playwright_video_dir: Path | None = None) -> list[int]:
    """The same page and actions with bare Playwright: snapshot, act, nothing else (but the recording
    to `recording`, made like a run's, when given; or Playwright's own recorder into
    `playwright_video_dir`, for comparison)."""
    timings: list[int] = []
    options = BrowserOptions()
    context = await browser.new_context(viewport={"width": options.viewport_width,
                                                  "height": options.viewport_height},
                                        record_video_dir=playwright_video_dir)
    page = await context.new_page()
    stop = await record_like_a_run(context, page, recording) if recording else None
    try:
        await page.goto(url)
        for step in script:
            started = time.monotonic()
            snapshot = await page.aria_snapshot(mode="ai")
            for call in step:
                await floor_act(page, snapshot, call)
            timings.append(int((time.monotonic() - started) * 1000))
    finally:
        if stop is not None:
            await stop()
        await context.close()
    return timings


async def record_like_a_run(context: BrowserContext, page: Page,
                            path: Path) -> Callable[[], Awaitable[Path | None]]:
    """Record `page` as a run does (BrowserRun.record); returns the coroutine that stops and finishes it."""
    options = BrowserOptions()
    screencast = Screencast(context, options.viewport_width, options.viewport_height)
    recorder = WebmRecorder(path, options.viewport_width, options.viewport_height)
    screencast.add_sink(recorder.add)
    await screencast.follow(page)

    async def stop() -> Path | None:
        await screencast.stop()
        return await recorder.close()
    return stop


async def floor_act(page: Any, snapshot: str, call: dict[str, Any]) -> None:
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
    encoding, encoding_name = token_encoding()
    with serve_sites() as sites, tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        figures = asyncio.run(measure(sites, Path(tmp), repeats, encoding))
    steps = figures.steps
    print(f"machine: {machine()}\n")
    header = ("task", "step", "harness ms", "llm ms", "prompt tokens", "snapshot chars")
    print(f"{header[0]:<14}{header[1]:>5}{header[2]:>12}{header[3]:>8}{header[4]:>15}{header[5]:>16}")
    for row in steps:
        print(f"{row.task:<14}{row.step:>5}{row.harness_ms:>12}{row.llm_ms:>8}{row.prompt_tokens:>15}"
              f"{row.snapshot_chars:>16}")
    harness = Spread.of(row.harness_ms for row in steps)
    floor, floor_video = Spread.of(figures.floor_ms), Spread.of(figures.floor_video_ms)
    print(f"\nsteps: {len(steps)} ({len(TASKS)} tasks x {repeats}), tasks interleaved with the floors")
    print(f"harness time per step (LLM wait excluded): {harness.show()} ms; target median ≤ "
          f"{MEDIAN_TARGET_MS} ms: {verdict(harness.median <= MEDIAN_TARGET_MS)}")
    print(f"floor (bare Playwright: snapshot + act): {floor.show()} ms")
    print(f"floor recording like a run (screencast to WebM): {floor_video.show()} ms")
    print(f"harness / floor: {ratio(harness.median, floor.median)} — target ≤ {RATIO_TARGET}x: "
          f"{verdict(harness.median <= RATIO_TARGET * floor.median)}; harness / floor with video: "
          f"{ratio(harness.median, floor_video.median)}")
    calls = sum(row.llm_calls for row in steps) / len(steps)
    print(f"LLM calls per step: {calls:.2f} — target ≤ {CALLS_TARGET}: {verdict(calls <= CALLS_TARGET)}")
    tokens = Spread.of(row.prompt_tokens for row in steps)
    print(f"prompt tokens per step: {tokens.show()} ({encoding_name}, system + user + tool schemas)")
    print(f"snapshot characters per step: {Spread.of(row.snapshot_chars for row in steps).show()}")


if __name__ == "__main__":
    main()
