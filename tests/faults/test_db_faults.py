"""PostgreSQL drops every connection mid-run (pg_terminate_backend, twice): the worker and the API
reconnect, the runs end completed with every step recorded once, and the API answers whole afterwards."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack

WAITS = 5  # one 1 s wait per step before the form: the run is long enough to be cut twice
DROPS_PER_BURST = 15


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[tuple[Stack, str]]:
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
        tmp_path_factory.mktemp("db-faults"), llm_base_url=fake_llm.base_url, database_url=pg_url,
        redis_url=redis_url,
    ) as stack:
        stack.start_worker("worker", concurrency=3)
        yield stack, pg_url.replace("postgresql+psycopg://", "postgresql://")


def _drop_connections(pg_url: str) -> int:
    """Terminate every other session on the run database; returns how many there were."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def _drop_burst(pg_url: str) -> int:
    """Drop every connection DROPS_PER_BURST times over about a second; returns the sessions ended."""
    ended = 0
    for _ in range(DROPS_PER_BURST):
        ended += _drop_connections(pg_url)
        time.sleep(0.05)
    return ended


def _poll(stack: Stack, run_id: str, stop: threading.Event, answers: list[int]) -> None:
    """GET the run over and over while connections are being dropped."""
    with stack.client() as client:
        while not stop.is_set():
            answers.append(client.get(f"/v1/runs/{run_id}").status_code)


def _recorded(pg_url: str, run_ids: list[str], table: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f"SELECT run_id, count(*) FROM {table} WHERE run_id = ANY(%s) GROUP BY run_id",
                            (run_ids,)).fetchall()
    return {run_id: count for run_id, count in rows}


def test_runs_survive_postgres_dropping_every_connection_mid_run(
    pg_stack: tuple[Stack, str], fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    stack, pg_url = pg_stack
    script = [[{"name": "wait", "args": {"seconds": 1}}]] * WAITS + form_script()
    run_ids = []
    for n in range(3):
        fake_llm.script(f"{token}-{n}", list(script))
        run_ids.append(stack.create_run(prompt=f"Sign the guest book ({token}-{n})",
                                        url=sites.url(FORM_PATH))["run_id"])
    with stack.client() as client:
        deadline = time.monotonic() + 30
        while any(client.get(f"/v1/runs/{r}").json()["status"] != "running" for r in run_ids):
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.2)
    dropped = []
    answers: list[int] = []
    polling = threading.Event()
    poller = threading.Thread(target=_poll, args=(stack, run_ids[0], polling, answers))
    poller.start()
    try:
        for _ in range(2):  # two outages, each a burst of drops that also hits statements in flight
            time.sleep(1.0)
            dropped.append(_drop_burst(pg_url))
    finally:
        polling.set()
        poller.join()
    finals = [stack.wait_final(run_id, timeout=60) for run_id in run_ids]
    print(f"postgres connection drops: {dropped} sessions terminated in 2 bursts of {DROPS_PER_BURST}, "
          f"runs {[r['status'] for r in finals]}, API answers meanwhile {Counter(answers)}")
    assert answers and set(answers) <= {200, 503}, Counter(answers)  # a lost connection is a 503, never 500
    assert all(count > 0 for count in dropped)
    assert [run["status"] for run in finals] == ["completed"] * 3, (finals, stack.logs())
    assert all(run["output"] == {"greeting": "Thanks, Ada!"} for run in finals)
    assert _recorded(pg_url, run_ids, "steps") == dict.fromkeys(run_ids, WAITS + 2)
    assert _recorded(pg_url, run_ids, "actions") == dict.fromkeys(run_ids, WAITS + 3)  # each once
    with stack.client() as client:  # the API lost its connections too: it answers whole again
        for path in ["/v1/runs", f"/v1/runs/{run_ids[0]}", f"/v1/runs/{run_ids[0]}/timeline",
                     f"/v1/runs/{run_ids[0]}/artifacts"]:
            assert client.get(path).status_code == 200, path
