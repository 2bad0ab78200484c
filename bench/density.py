"""How many concurrent runs one worker host sustains: throughput, step latency and memory per run.

Starts the real stack (`wayfarer serve` in embedded mode: the server process is the worker host, with
one shared Chromium) and the fake LLM answering instantly; then, for N = 1, 4, 8, 16 (32 while time
allows), creates N runs at once through the API, each a multi-step task on the guest book page, and
waits for all of them. Step latency is the step's recorded wall time (harness + LLM); memory is the
peak RSS (and PSS, shared pages counted once) of the server process plus every Chromium process.
Every figure is also given as a ratio against N = 1 measured in the same run.

    .venv/bin/python bench/density.py [--steps 6] [--levels 1,4,8,16,32] [--budget 150] [--env NAME=VALUE]

`--env` sets a server setting for the whole run, e.g. `--env WAYFARER_RECORD_VIDEO=false` (no recording).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/density.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import Step
from bench.common import MemorySampler, Spread, TreeMemory, machine, print_table, ratio, tree_memory, verdict
from tests.fakes.fake_llm import FakeLLM, start_fake_llm
from tests.sites.server import SiteServer, serve_sites
from tests.support.stack import FINAL, Stack, running_stack

CONCURRENT_TARGET, MIB_PER_RUN_TARGET = 16, 120
RUN_TIMEOUT_S = 120.0


@dataclass
class Level:
    runs: int
    completed: int
    steps: int
    wall_s: float
    step_ms: Spread
    peak: TreeMemory

    @property
    def throughput(self) -> float:
        return self.steps / self.wall_s


def script(steps: int) -> list[Any]:
    """steps - 1 steps that type into the form (the page stays), then complete."""
    name = {"role": "textbox", "name": "Name"}
    typing = [[{"name": "input_text", "args": {"ref": name, "text": f"Ada {i}"}}] for i in range(steps - 1)]
    return [*typing, [{"name": "complete", "args": {"output": {"ok": True}, "summary": "typed"}}]]


def run_level(stack: Stack, fake: FakeLLM, sites: SiteServer, runs: int, steps: int) -> Level:
    tokens = [f"density-{uuid.uuid4().hex[:10]}" for _ in range(runs)]
    for token in tokens:
        fake.script(token, script(steps))
    with MemorySampler(stack.processes["api"].pid) as memory, stack.client() as client:
        started = time.monotonic()
        run_ids = []
        for token in tokens:
            response = client.post("/v1/run/tasks", json={
                "prompt": f"Type the name ({token}).", "url": sites.url("/guestbook.html"),
                "max_steps": steps + 2})
            response.raise_for_status()
            run_ids.append(response.json()["run_id"])
        statuses = wait_all(client, run_ids)
        wall = time.monotonic() - started
    with session_scope(stack.env["WAYFARER_DATABASE_URL"]) as session:
        rows = session.scalars(select(Step).where(Step.run_id.in_(run_ids))).all()
        latencies = [row.harness_ms + row.llm_ms for row in rows]
    completed = sum(status == "completed" for status in statuses)
    return Level(runs, completed, len(latencies), wall, Spread.of(latencies), memory.peak)


def wait_all(client: Any, run_ids: list[str]) -> list[str]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    statuses = dict.fromkeys(run_ids, "queued")
    while time.monotonic() < deadline:
        for run_id in [r for r, s in statuses.items() if s not in FINAL]:
            statuses[run_id] = client.get(f"/v1/runs/{run_id}").json()["status"]
        if all(status in FINAL for status in statuses.values()):
            break
        time.sleep(0.1)
    return list(statuses.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="steps per run (default 6)")
    parser.add_argument("--levels", default="1,4,8,16,32", help="concurrent runs to try, in order")
    parser.add_argument("--budget", type=float, default=150, help="seconds; skip levels once spent")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting for this run (repeatable)")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    began = time.monotonic()
    results: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp, start_fake_llm() as fake, \
            serve_sites() as sites:
        database_url = f"sqlite:///{Path(tmp) / 'density.db'}"
        extra_env = {"WAYFARER_MAX_CONCURRENT_RUNS": str(max(levels)), "WAYFARER_LOG_LEVEL": "WARNING",
                     **dict(setting.split("=", 1) for setting in args.env)}
        with running_stack(Path(tmp), llm_base_url=fake.base_url, database_url=database_url,
                           extra_env=extra_env) as stack:
            run_level(stack, fake, sites, 1, 2)  # warm-up: the shared browser starts
            idle = tree_memory(stack.processes["api"].pid)
            for runs in levels:
                spent = time.monotonic() - began
                if results and spent + (time.monotonic() - began) / len(results) * 2 > args.budget:
                    print(f"(N = {runs} skipped: {spent:.0f} s of the {args.budget:.0f} s budget spent)")
                    break
                results.append(run_level(stack, fake, sites, runs, args.steps))
    report(results, idle, args.steps, args.env)


def report(results: list[Level], idle: TreeMemory, steps: int, settings: list[str]) -> None:
    base = results[0]
    print(f"machine: {machine()}")
    if settings:
        print(f"server settings: {' '.join(settings)}")
    print(f"{steps} steps per run; idle host (server + shared browser): RSS {idle.rss_mib:.0f} MiB, "
          f"PSS {idle.pss_mib:.0f} MiB\n")
    rows = []
    for level in results:
        added = level.runs - base.runs
        per_run_rss = (level.peak.rss_mib - base.peak.rss_mib) / added if added else float("nan")
        per_run_pss = (level.peak.pss_mib - base.peak.pss_mib) / added if added else float("nan")
        rows.append((
            level.runs, f"{level.completed}/{level.runs}", level.steps, f"{level.throughput:.2f}",
            ratio(level.throughput, base.throughput), f"{level.step_ms.median:.0f}",
            f"{level.step_ms.p95:.0f}", ratio(level.step_ms.median, base.step_ms.median),
            f"{level.peak.rss_mib:.0f}", f"{level.peak.pss_mib:.0f}", level.peak.chromium_processes,
            f"{per_run_rss:.0f}", f"{per_run_pss:.0f}"))
    print_table(("N", "completed", "steps", "steps/s", "vs N=1", "p50 ms", "p95 ms", "p50 vs N=1",
                 "peak RSS MiB", "peak PSS MiB", "chromium procs", "RSS/added run", "PSS/added run"), rows)
    sustained = [level.runs for level in results if level.completed == level.runs]
    top = results[-1]
    added = top.runs - base.runs
    per_run = (top.peak.rss_mib - base.peak.rss_mib) / added if added else float("nan")
    per_run_pss = (top.peak.pss_mib - base.peak.pss_mib) / added if added else float("nan")
    most = max(sustained, default=0)
    print(f"\nconcurrent runs all completed: up to {most} — target ≥ {CONCURRENT_TARGET}: "
          f"{verdict(most >= CONCURRENT_TARGET)}")
    # PSS splits shared pages between the processes mapping them; summed RSS counts Chromium's shared
    # libraries once per process, so the target is judged on PSS.
    print(f"PSS per added run (N={base.runs}→{top.runs}): {per_run_pss:.0f} MiB (RSS {per_run:.0f} MiB) — "
          f"target ≤ {MIB_PER_RUN_TARGET}: {verdict(per_run_pss <= MIB_PER_RUN_TARGET)}")


if __name__ == "__main__":
    main()
