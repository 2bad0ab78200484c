"""The production path under faults: Redis dies during a burst of submissions; a worker is killed with
runs in flight. Real processes: PostgreSQL, a private redis-server, `wayfarer serve`, `wayfarer worker`."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
import redis

from app.db.engine import session_scope
from app.db.models import BrowserSession, utcnow
from app.runs.ids import BROWSER_SESSION, new_id
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import free_port, throwaway_postgres
from tests.support.stack import FINAL, Stack, running_stack

LEASE_SECONDS = 4
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def crash(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def private_redis_server() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.crash()


@dataclass
class Production:
    stack: Stack
    redis: RedisServer
    database_url: str


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Production]:
    with throwaway_postgres() as pg_url, private_redis_server() as redis_server, running_stack(
        tmp_path_factory.mktemp("faults"), llm_base_url=fake_llm.base_url, database_url=pg_url,
        redis_url=redis_server.url, extra_env={
            "WAYFARER_RUN_LEASE_SECONDS": str(LEASE_SECONDS), "WAYFARER_SWEEP_INTERVAL_SECONDS": "1",
            "WAYFARER_REQUEUE_AFTER_SECONDS": "5"},
    ) as stack:
        stack.start_worker("worker", concurrency=4)
        yield Production(stack, redis_server, pg_url)


def _submit(stack: Stack, fake_llm: FakeLLM, sites: SiteServer, key: str,
            steps: list[object]) -> tuple[int, str]:
    fake_llm.script(key, steps)
    with stack.client() as client:
        response = client.post("/v1/run/tasks", json={"prompt": f"Sign the guest book ({key})",
                                                      "url": sites.url(FORM_PATH)})
    return response.status_code, response.json().get("run_id") or response.json()["detail"]


def _wait_all_final(stack: Stack, run_ids: list[str], timeout: float) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, object]] = {}
    with stack.client() as client:
        while len(final) < len(run_ids) and time.monotonic() < deadline:
            for run_id in run_ids:
                if run_id not in final:
                    run = client.get(f"/v1/runs/{run_id}").json()
                    if run["status"] in FINAL:
                        final[run_id] = run
            time.sleep(0.3)
    return final


def _actions_per_run(database_url: str, run_ids: list[str]) -> Counter[str]:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT run_id, count(*) FROM actions WHERE run_id = ANY(%s) GROUP BY run_id",
                            (run_ids,)).fetchall()
    return Counter({run_id: count for run_id, count in rows})


def test_redis_crash_during_a_burst_loses_no_accepted_run(
    production: Production, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    stack, redis_server = production.stack, production.redis
    answers: dict[str, list[tuple[int, str]]] = {"before": [], "during": [], "after": []}
    for n in range(20):
        answers["before"].append(_submit(stack, fake_llm, sites, f"{token}-b{n}", form_script()))
    redis_server.crash()
    for n in range(10):
        answers["during"].append(_submit(stack, fake_llm, sites, f"{token}-d{n}", form_script()))
    redis_server.start()  # empty: what was queued in it is gone; the sweeper dispatches those again
    for n in range(20):
        answers["after"].append(_submit(stack, fake_llm, sites, f"{token}-a{n}", form_script()))

    accepted = [run_id for phase in answers.values() for status, run_id in phase if status == 200]
    refused = [detail for status, detail in answers["during"] if status == 503]
    final = _wait_all_final(stack, accepted, timeout=90)
    lost = [run_id for run_id in accepted if run_id not in final]
    print(f"redis outage: {len(accepted)} accepted, {len(refused)} refused with 503 during the outage, "
          f"{len(lost)} lost; final statuses {Counter(str(r['status']) for r in final.values())}")
    assert [status for status, _ in answers["before"] + answers["after"]] == [200] * 40
    assert len(refused) == 10 and all("queue is unavailable" in detail for detail in refused)
    assert not lost, f"never finished: {lost}\n{stack.logs()}"
    not_completed = {run_id: (run["status"], run["failure_reason"]) for run_id, run in final.items()
                     if run["status"] != "completed"}
    assert not not_completed, f"{not_completed}\n{stack.logs()}"
    with psycopg.connect(production.database_url.replace("+psycopg", "")) as conn:
        left = conn.execute("SELECT count(*) FROM runs WHERE prompt LIKE %s", (f"%{token}-d%",)).fetchone()
    assert left == (0,)  # a refused submission left no run behind
    actions = _actions_per_run(production.database_url, accepted)
    assert all(actions[run_id] == 3 for run_id in accepted), actions  # fill, click, complete: once each


def test_a_killed_worker_leaves_every_run_terminal_and_none_run_twice(
    production: Production, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    stack = production.stack
    slow = [[{"name": "wait", "args": {"seconds": 1}}]] * 3 + form_script()
    run_ids = [_submit(stack, fake_llm, sites, f"{token}-k{n}", slow)[1] for n in range(20)]
    with stack.client() as client:
        deadline = time.monotonic() + 60
        while len(in_flight := [r for r in run_ids
                                if client.get(f"/v1/runs/{r}").json()["status"] == "running"]) < 3:
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.2)
    stack.kill("worker")  # SIGKILL to the worker's process group, its Chromium included
    stack.start_worker("replacement", concurrency=4)
    # the sweeper ends each orphan within the lease plus a sweep (and a little scheduling slack)
    orphans = _wait_all_final(stack, in_flight, timeout=LEASE_SECONDS + 6)
    assert set(orphans) == set(in_flight), f"still running past the lease\n{stack.logs()}"

    final = _wait_all_final(stack, run_ids, timeout=90)
    lost = [run_id for run_id in run_ids if run_id not in final]
    statuses = Counter(str(run["status"]) for run in final.values())
    print(f"worker kill -9: {len(run_ids)} submitted, {len(lost)} lost, final statuses {dict(statuses)}")
    assert not lost, f"never finished: {lost}\n{stack.logs()}"
    actions = _actions_per_run(production.database_url, run_ids)
    for run_id, run in final.items():
        if run["status"] == "completed":
            assert actions[run_id] == 6, (run_id, actions[run_id])  # 3 waits, fill, click, complete: once
        else:
            assert run["status"] == "failed" and "lost" in str(run["failure_reason"]), run
            assert actions[run_id] < 6
    assert statuses["failed"] >= len(in_flight)  # the runs in flight on the killed worker
    assert statuses["completed"] >= 1  # the rest ran on the replacement


def test_a_session_whose_open_message_was_lost_is_opened_by_the_sweeper(production: Production) -> None:
    stack = production.stack
    with stack.client() as client:
        organization_id = client.post("/v1/browser_sessions", json={}).json()["organization_id"]
    # A session stored as created whose open_session message never reached a worker (Redis lost it).
    session_id = new_id(BROWSER_SESSION)
    created = utcnow() - timedelta(seconds=30)
    with session_scope(production.database_url) as s:
        s.add(BrowserSession(id=session_id, organization_id=organization_id, status="created",
                             timeout_minutes=5, generate_browser_profile=False, created_at=created,
                             modified_at=created))
    with stack.client() as client:
        deadline = time.monotonic() + 30
        while (session := client.get(f"/v1/browser_sessions/{session_id}").json())["status"] == "created":
            assert time.monotonic() < deadline, f"never opened\n{stack.logs()}"
            time.sleep(0.3)
        assert session["status"] == "running" and session["browser_address"], session
        for active in client.get("/v1/browser_sessions").json():
            client.post(f"/v1/browser_sessions/{active['browser_session_id']}/close")
