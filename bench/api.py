"""API latency and throughput: POST /v1/run/tasks and GET /v1/runs/{id} under wrk, SQLite and PostgreSQL.

Starts `wayfarer serve --workers 2` (tests/support/stack.py) with the Celery dispatcher pointed at a
private Redis db that no worker consumes, so runs are accepted and queued but never executed: only the
API is measured. For each database it runs wrk (Debian's `apt-get install wrk`) against GET /healthz
(the baseline: the framework's floor on this machine, measured in the same run), GET /v1/runs/{id}
and POST /v1/run/tasks, repeated, and prints the medians of the repeats with their range. Each run also
reports the CPU the server spent per request (the uvicorn processes plus, on PostgreSQL, the database's
backends for the bench database): unlike req/s, it hardly moves when other jobs load the machine.

    .venv/bin/python bench/api.py [--seconds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

if __package__ in (None, ""):  # run as `python bench/api.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Spread, machine, print_table, ratio, verdict
from tests.support.services import PG_ADMIN_URL, private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack

SERVE_WORKERS = 2
POST_P99_TARGET_MS, GET_RPS_TARGET = 25.0, 1500.0
GET_CONNECTIONS, POST_CONNECTIONS = 16, 4
RUN_REQUEST = {"prompt": "Benchmark run: never executed.", "url": "http://127.0.0.1:9/"}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_ms_per_request: float = 0.0


def wrk(url: str, api_key: str, seconds: int, connections: int, post_body: str | None = None) -> WrkResult:
    command = ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
               "-H", f"x-api-key: {api_key}", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if post_body is not None:
            script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(post_body)}\n'
                         'wrk.headers["Content-Type"] = "application/json"\n')
            script.flush()
            command[1:1] = ["-s", script.name]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    latency = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return WrkResult(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                     _ms(latency["50"]), _ms(latency["99"]), errors,
                     int(re.search(r"(\d+) requests in", out).group(1)))  # type: ignore[union-attr]


def server_cpu_seconds(stack: Stack) -> float:
    """CPU time so far of the server's processes and of the PostgreSQL backends of its database."""
    import psutil

    root = psutil.Process(stack.processes["api"].pid)
    pids = [root.pid, *(child.pid for child in root.children(recursive=True))]
    database_url = stack.env.get("WAYFARER_DATABASE_URL", "")
    if database_url.startswith("postgresql"):
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            pids += [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                    (database_url.rsplit("/", 1)[1],))]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:  # a pooled connection closed: its backend's CPU is not counted
            continue
        total += times.user + times.system
    return total


def measured(stack: Stack, url: str, seconds: int, connections: int,
             post_body: str | None = None) -> WrkResult:
    before = server_cpu_seconds(stack)
    result = wrk(url, stack.api_key, seconds, connections, post_body)
    result.cpu_ms_per_request = (server_cpu_seconds(stack) - before) * 1000 / max(result.requests, 1)
    return result


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


@contextmanager
def api_stack(tmp: Path, database: str) -> Iterator[Stack]:
    with private_redis() as redis_url, _database(tmp, database) as database_url, running_stack(
            tmp / database, llm_base_url="http://127.0.0.1:9/v1", database_url=database_url,
            redis_url=redis_url, serve_workers=SERVE_WORKERS) as stack:
        yield stack


@contextmanager
def _database(tmp: Path, database: str) -> Iterator[str]:
    if database == "postgresql":
        with throwaway_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{tmp / 'api.db'}"


def measure(stack: Stack, seconds: int, repeats: int) -> dict[str, list[WrkResult]]:
    run_id = stack.create_run(**RUN_REQUEST)["run_id"]
    body = json.dumps(RUN_REQUEST)
    results: dict[str, list[WrkResult]] = {
        "GET /healthz": [], "GET /v1/runs/{id}": [], "POST /v1/run/tasks": []}
    # Reads first, then writes: after a POST burst (~3,000 new runs in 5 s) PostgreSQL's own background
    # work (autovacuum, checkpoint) takes CPU for tens of seconds on a 2-core box and cut the next
    # GET run's req/s by ~40% (measured: 1,550 -> 910 -> 1,110 after 10 s more), which measured the
    # bench's order, not the read path.
    for _ in range(repeats):
        results["GET /healthz"].append(measured(stack, f"{stack.base_url}/healthz", seconds, GET_CONNECTIONS))
        results["GET /v1/runs/{id}"].append(
            measured(stack, f"{stack.base_url}/v1/runs/{run_id}", seconds, GET_CONNECTIONS))
    for _ in range(repeats):
        results["POST /v1/run/tasks"].append(
            measured(stack, f"{stack.base_url}/v1/run/tasks", seconds, POST_CONNECTIONS, body))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per endpoint (default 3)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    figures: dict[str, dict[str, list[WrkResult]]] = {}
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        for database in args.databases.split(","):
            with api_stack(Path(tmp), database) as stack:
                figures[database] = measure(stack, args.seconds, args.repeats)
    print(f"machine: {machine()}")
    print(f"wayfarer serve --workers {SERVE_WORKERS}; Celery dispatcher, no worker; wrk -t 2, "
          f"GET -c {GET_CONNECTIONS}, POST -c {POST_CONNECTIONS}; {args.repeats} x {args.seconds} s each\n")
    rows = []
    for database, endpoints in figures.items():
        floor = Spread.of(r.rps for r in endpoints["GET /healthz"]).median
        for endpoint, runs in endpoints.items():
            rps = Spread.of(r.rps for r in runs)
            p50, p99 = Spread.of(r.p50_ms for r in runs), Spread.of(r.p99_ms for r in runs)
            cpu = Spread.of(r.cpu_ms_per_request for r in runs)
            rows.append((database, endpoint, f"{rps.median:.0f} ({rps.low:.0f}-{rps.high:.0f})",
                         ratio(rps.median, floor), f"{p50.median:.1f}", f"{p99.median:.1f} "
                         f"({p99.low:.1f}-{p99.high:.1f})",
                         f"{cpu.median:.2f} ({cpu.low:.2f}-{cpu.high:.2f})",
                         sum(r.errors for r in runs)))
    print_table(("database", "endpoint", "req/s (range)", "vs /healthz", "p50 ms", "p99 ms (range)",
                 "server CPU ms/req (range)", "errors"), rows)
    if "postgresql" in figures:
        pg = figures["postgresql"]
        post_p99 = Spread.of(r.p99_ms for r in pg["POST /v1/run/tasks"]).median
        get_rps = Spread.of(r.rps for r in pg["GET /v1/runs/{id}"]).median
        print(f"\nPostgreSQL POST p99 {post_p99:.1f} ms — target ≤ {POST_P99_TARGET_MS:.0f}: "
              f"{verdict(post_p99 <= POST_P99_TARGET_MS)}")
        print(f"PostgreSQL GET {get_rps:.0f} req/s — target ≥ {GET_RPS_TARGET:.0f}: "
              f"{verdict(get_rps >= GET_RPS_TARGET)}")


if __name__ == "__main__":
    main()
