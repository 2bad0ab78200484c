"""Queue latency: how long a run waits between created and running when a worker slot is free.

For the embedded in-process executor and for Celery on Redis (one `wayfarer worker`, PostgreSQL), it
creates runs one after another through the API (each a one-step task answered instantly by the fake
LLM), waits for each to end, and takes started_at - created_at from GET /v1/runs/{id}. The baseline,
measured in the same run, is the client's round trip of the POST that created the run.

    .venv/bin/python bench/queue_latency.py [--runs 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/queue_latency.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Spread, machine, print_table, ratio, verdict
from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM, start_fake_llm
from tests.sites.server import SiteServer, serve_sites
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack

TARGET_MS = 100.0
DONE = [[{"name": "complete", "args": {"output": None, "summary": "nothing to do"}}]]


@contextmanager
def stack_for(mode: str, tmp: Path, fake: FakeLLM) -> Iterator[Stack]:
    if mode == "in-process":
        with running_stack(tmp / mode, llm_base_url=fake.base_url) as stack:
            yield stack
        return
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
            tmp / mode, llm_base_url=fake.base_url, database_url=pg_url, redis_url=redis_url,
            workers=1) as stack:
        yield stack


def measure(stack: Stack, fake: FakeLLM, sites: SiteServer, runs: int) -> tuple[list[float], list[float]]:
    """(queue latencies, POST round trips) in ms; the first run (browser start-up) is left out."""
    waits: list[float] = []
    posts: list[float] = []
    with stack.client() as client:
        for index in range(runs + 1):
            token = f"queue-{uuid.uuid4().hex[:10]}"
            fake.script(token, DONE)
            started = time.monotonic()
            response = client.post("/v1/run/tasks", json={"prompt": f"Nothing ({token}).",
                                                           "url": sites.url(FORM_PATH)})
            post_ms = (time.monotonic() - started) * 1000
            response.raise_for_status()
            run = stack.wait_final(response.json()["run_id"], timeout=60)
            if index == 0:
                continue
            posts.append(post_ms)
            waits.append((_time(run["started_at"]) - _time(run["created_at"])).total_seconds() * 1000)
    return waits, posts


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per mode (default 10)")
    runs = parser.parse_args().runs
    figures: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp, start_fake_llm() as fake, \
            serve_sites() as sites:
        for mode in ("in-process", "celery"):
            with stack_for(mode, Path(tmp), fake) as stack:
                figures[mode] = measure(stack, fake, sites, runs)
    print(f"machine: {machine()}\n")
    rows = []
    for mode, (waits, posts) in figures.items():
        wait, post = Spread.of(waits), Spread.of(posts)
        rows.append((mode, wait.show(1), f"{wait.p95:.1f}", f"{post.median:.1f}",
                     ratio(wait.median, post.median), verdict(wait.median <= TARGET_MS)))
    print_table(("dispatcher", "created→running ms", "p95 ms", "POST ms (baseline)", "vs POST",
                 f"target ≤ {TARGET_MS:.0f} ms"), rows)


if __name__ == "__main__":
    main()
