"""Record once, replay for free: LLM calls, tokens and wall time of a task's first run (the agent,
recording a script) against its replay (run_with "code"), and of replays on perturbed pages (heals).

Each task runs through the real step loop with a Recorder (drive()), then through replay() with the
recorded script, in the same browser pool, on the test pages, the fake LLM answering from scripts
(`--llm-delay` adds a model's latency to each answer; 0 measures the harness alone). Checks the issue's
targets: replay LLM calls <= 10% of the first run's, wall time <= a third, outputs equal; a perturbed
page heals with at most one call per changed step and the healed script then replays with none.

    .venv/bin/python -m bench.replay [--repeats N] [--llm-delay SECONDS] [--task NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/replay.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.scripts.document import ScriptDoc
from bench.common import Spread, agent_pool, machine, print_table, verdict
from bench.step_overhead import TASKS as STEP_TASKS
from tests.e2e.test_actions_full_stack import SCENARIOS
from tests.fakes.fake_llm import FakeLLM
from tests.integration.agent.memory_store import MemoryStore
from tests.integration.agent.test_replay import ORDER, ORDER_SCRIPT
from tests.sites.server import SiteServer, serve_sites
from workers.agent.browser import BrowserPool, RunMedia
from workers.agent.contract import BrowserOptions, RunOutcome, StepUsage, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner
from workers.agent.replay.play import replay
from workers.agent.replay.record import Recorder

TASKS: dict[str, tuple[str, list[Any]]] = {
    **STEP_TASKS, "parcel order": (ORDER, ORDER_SCRIPT),
    # every action kind of the full-stack tests: selects, radios, dates, overlays, shadow DOM, a new tab,
    # hover menus, keys, far below the fold, late content, navigation; iframes (same and cross origin)
    **{name.replace("_", " "): (scenario.path, [*scenario.steps, [
        {"name": "complete", "args": {"output": {"seen": scenario.seen}, "summary": "done"}}]])
       for name, scenario in SCENARIOS.items()},
    "iframes": ("/frames.html?other={other}/frame-inner.html?who=cross", [
        [{"name": "click", "args": {"ref": {"role": "button", "name": "Press same"}}}],
        [{"name": "click", "args": {"ref": {"role": "button", "name": "Press cross"}}}],
        [{"name": "complete", "args": {"output": {"seen": "cross pressed"}, "summary": "done"}}]]),
    "download": ("/download.html", [  # the replay must save the file again: compared with the first run's
        [{"name": "download_file", "args": {"ref": {"role": "link", "name": "Download report"}}}],
        [{"name": "complete", "args": {"output": {"page": "Reports"}, "summary": "downloaded"}}]]),
}
CONFIRM = [{"name": "click", "args": {"ref": {"role": "button", "name": "Confirm"}}}]
PERTURBED = {  # page -> the heal answers the model gives (one per changed step)
    "/replay-order-renamed.html": [],  # reworded button, banner, classes: found by its id, no call
    "/replay-order-moved.html": [CONFIRM],  # moved, renamed, no id: one call
}


@dataclass
class Figure:
    task: str
    kind: str
    llm_calls: int
    tokens: int
    seconds: float
    output: Any
    status: str
    files: list[str]  # the names of the files the run downloaded


def delayed(steps: list[Any], delay: float, sites: SiteServer) -> list[Any]:
    """The steps with the sites' address filled in, each answered after `delay` seconds."""
    steps = json.loads(json.dumps(steps).replace("{site}", sites.url("")))
    return [{"delay": delay, "then": step} for step in steps] if delay else steps


def task_url(sites: SiteServer, path: str) -> str:
    return sites.url(path.replace("{other}", sites.other_origin_url("").rstrip("/")))


async def first_run(pool: BrowserPool, settings: Any, fake: FakeLLM, sites: SiteServer, url: str,
                    script: list[Any], workdir: Path, delay: float) -> tuple[Figure, ScriptDoc, str]:
    token = f"bench-{uuid.uuid4().hex[:10]}"
    fake.script(token, delayed(script, delay, sites))
    task = TaskSpec(f"tsk_{token}", f"Do the task ({token}).", url, 12)
    browser = await pool.open_run(task.run_id, BrowserOptions(), workdir / token)
    recorder, store = Recorder(browser, url), UsageStore()
    planner = Planner(settings, task)
    started = time.monotonic()
    try:
        outcome = await drive(task, browser, planner, store, recorder=recorder)
    finally:
        seconds = time.monotonic() - started
        await planner.aclose()
        media = await browser.close()
    recorder.script.llm_calls, recorder.script.tokens = store.usage.llm_calls, store.tokens
    return _figure("", "first run", store.usage, seconds, outcome, media), recorder.script, token


async def replay_run(pool: BrowserPool, settings: Any, url: str, script: ScriptDoc, token: str,
                     workdir: Path, kind: str) -> tuple[Figure, ScriptDoc]:
    task = TaskSpec(f"tsk_{uuid.uuid4().hex[:10]}", f"Do the task ({token}).", url, 12)
    browser = await pool.open_run(task.run_id, BrowserOptions(), workdir / task.run_id)
    planner = Planner(settings, task)
    started = time.monotonic()
    try:
        report = await replay(task, browser, script, MemoryStore(), planner)
    finally:
        seconds = time.monotonic() - started
        await planner.aclose()
        media = await browser.close()
    return _figure("", kind, report.usage, seconds, report.outcome, media), report.script


class UsageStore(MemoryStore):
    """A MemoryStore that sums the LLM usage of the steps it records."""

    def __init__(self) -> None:
        super().__init__()
        self.usage = StepUsage()

    @property
    def tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None:
        await super().finish_step(step_id, usage, harness_ms)
        self.usage.llm_calls += usage.llm_calls
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.completion_tokens += usage.completion_tokens


def _figure(task: str, kind: str, usage: StepUsage, seconds: float, outcome: RunOutcome,
            media: RunMedia) -> Figure:
    return Figure(task, kind, usage.llm_calls, usage.prompt_tokens + usage.completion_tokens, seconds,
                  outcome.output, outcome.status, sorted(path.name for path in media.downloads))


async def measure(repeats: int, delay: float, data_dir: Path, names: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    with serve_sites() as sites:
        async with agent_pool(data_dir) as (fake, settings, pool):
            for _ in range(repeats):
                for name in names:
                    path, script = TASKS[name]
                    url = task_url(sites, path)
                    first, recorded, token = await first_run(pool, settings, fake, sites, url, script,
                                                             data_dir, delay)
                    again, _ = await replay_run(pool, settings, url, recorded, token, data_dir, "replay")
                    figures += [replace(first, task=name), replace(again, task=name)]
                    if path != ORDER:
                        continue
                    for page, heals in PERTURBED.items():
                        fake.script(token, delayed(heals, delay, sites))
                        healed, rewritten = await replay_run(pool, settings, sites.url(page), recorded, token,
                                                             data_dir, f"heal {page}")
                        after, _ = await replay_run(pool, settings, sites.url(page), rewritten, token,
                                                    data_dir, f"after heal {page}")
                        figures += [replace(healed, task=name), replace(after, task=name)]
    return figures


def report(figures: list[Figure], delay: float) -> None:
    print(f"# replay — {machine()}; fake LLM answering after {delay} s")
    print_table(["task", "run", "status", "LLM calls", "tokens", "seconds", "downloads"],
                [[f.task, f.kind, f.status, f.llm_calls, f.tokens, f"{f.seconds:.2f}", len(f.files)]
                 for f in figures])
    firsts = [f for f in figures if f.kind == "first run"]
    replays = [f for f in figures if f.kind == "replay"]
    calls = sum(f.llm_calls for f in replays) / max(1, sum(f.llm_calls for f in firsts))
    speed = [r.seconds / f.seconds for f, r in zip(firsts, replays, strict=True)]
    pairs = list(zip(firsts, replays, strict=True))
    equal = all(f.output == r.output and f.files == r.files and r.status == "completed" for f, r in pairs)
    print(f"\nreplay LLM calls / first run's: {calls:.0%} (target <= 10%: {verdict(calls <= 0.10)})")
    print(f"replay time / first run's: {Spread.of(speed).show(2)} (target <= 0.33: "
          f"{verdict(max(speed) <= 1 / 3)})")
    print(f"outputs and downloaded files equal, completed: {verdict(equal)}")
    heals = [f for f in figures if f.kind.startswith("heal ")]
    afters = [f for f in figures if f.kind.startswith("after heal ")]
    clean = not any(f.llm_calls for f in afters)
    print(f"heals: {[f.llm_calls for f in heals]} call(s) (target <= 1 per changed step); after a heal: "
          f"{sum(f.llm_calls for f in afters)} call(s) (target 0: {verdict(clean)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--llm-delay", type=float, default=0.0, help="seconds the fake model takes to answer")
    parser.add_argument("--task", action="append", choices=list(TASKS), help="only this task (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-replay-") as tmp:
        figures = asyncio.run(measure(args.repeats, args.llm_delay, Path(tmp), args.task or list(TASKS)))
    report(figures, args.llm_delay)


if __name__ == "__main__":
    main()
