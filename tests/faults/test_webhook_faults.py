"""Webhook delivery under faults: a receiver down, then up; one that refuses with a 4xx; the process
killed -9 while runs are held and while a delivery is on the wire (embedded and Celery), then started
again. Every run that ended with a webhook_url is delivered at least once, duplicates carry one
delivery id, and every signature is valid. Attempts are read from the database, where the outbox lives."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.platform.security import sign_hex as sign
from tests.e2e.flows import FORM_PATH, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import free_port, private_redis, throwaway_postgres
from tests.support.stack import FINAL, Stack, running_stack
from tests.support.webhook_receiver import Received, Receiver, webhook_receiver

BACKOFF_SECONDS = 0.5  # retries after ~0.5, 1.5, 3.5, 7.5 s
DOWN_FOR_ATTEMPTS = 3
DELIVERY_ID = "x-wayfarer-delivery-id"
# the kill tests: runs held by a killed process are ended after this lease (the sweeper runs every second)
RUN_LEASE_SECONDS = 10  # the heartbeat is every second; under load it can lag a few
KILL_ENV = {"WAYFARER_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF_SECONDS), "WAYFARER_WEBHOOK_MAX_ATTEMPTS": "8",
            # a send's lease is 3 x this + 10 s: how long a delivery cut off mid-send waits to be re-sent
            "WAYFARER_WEBHOOK_TIMEOUT_SECONDS": "5",
            "WAYFARER_RUN_LEASE_SECONDS": str(RUN_LEASE_SECONDS), "WAYFARER_SWEEP_INTERVAL_SECONDS": "1"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("hooks"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF_SECONDS), "WAYFARER_WEBHOOK_MAX_ATTEMPTS": "6",
            "WAYFARER_WEBHOOK_TIMEOUT_SECONDS": "5"}) as running:
        yield running


def _database_url(stack: Stack) -> str:
    return stack.env.get("WAYFARER_DATABASE_URL") or \
        f"sqlite:///{Path(stack.env['WAYFARER_DATA_DIR']) / 'wayfarer.db'}"


def _query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(_database_url(stack), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _attempts(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    rows = _query(stack, "SELECT attempt, status_code, error, delivery_id FROM webhook_attempts "
                         "WHERE run_id = :run_id AND replay = :replay ORDER BY attempt, created_at",
                  run_id=run_id, replay=False)
    return [dict(row._mapping) for row in rows]


def _wait_attempts(stack: Stack, run_id: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(attempts := _attempts(stack, run_id)) < count:
        assert time.monotonic() < deadline, f"{len(attempts)} of {count} webhook attempts\n{stack.logs()}"
        time.sleep(0.1)
    return attempts


def _listen(port: int, received: list[Received]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _webhook_failure_reason(stack: Stack, run_id: str) -> str | None:
    (row,) = _query(stack, "SELECT webhook_failure_reason FROM runs WHERE id = :id", id=run_id)
    return row[0]


def test_a_receiver_down_for_three_attempts_gets_the_webhook_once_after_it_recovers(
    stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    port = free_port()  # nothing listens here yet: attempts are refused connections
    fake_llm.script(token, form_script())
    created = stack.create_run(prompt=f"Sign as Ada ({token})", url=sites.url(FORM_PATH),
                               webhook_url=f"http://127.0.0.1:{port}/hook")
    run_id = created["run_id"]
    assert stack.wait_final(run_id)["status"] == "completed"
    failed = _wait_attempts(stack, run_id, DOWN_FOR_ATTEMPTS)
    received: list[Received] = []
    server = _listen(port, received)
    try:
        attempts = _wait_attempts(stack, run_id, DOWN_FOR_ATTEMPTS + 1)
        time.sleep(BACKOFF_SECONDS * 4)  # long enough for a (wrong) further retry to show
        attempts = _attempts(stack, run_id)
    finally:
        server.shutdown()
        server.server_close()
    print(f"webhook outage: {len(received)} delivered of 1 expected, {len(attempts)} attempts logged")
    assert all(a["status_code"] is None and "Connect" in a["error"] for a in failed[:DOWN_FOR_ATTEMPTS])
    assert len(attempts) == DOWN_FOR_ATTEMPTS + 1
    assert [a["attempt"] for a in attempts] == list(range(1, DOWN_FOR_ATTEMPTS + 2))
    assert attempts[-1]["status_code"] == 200 and attempts[-1]["error"] is None
    assert len(received) == 1
    (hook,) = received
    assert hook.headers["x-skyvern-signature"] == sign(stack.api_key, hook.body)
    assert run_id.encode() in hook.body
    assert {a["delivery_id"] for a in attempts} == {hook.headers[DELIVERY_ID]}  # one id on every retry
    assert _webhook_failure_reason(stack, run_id) is None


def test_a_4xx_answer_stops_the_retries_and_says_why(
    stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    with webhook_receiver() as receiver:
        receiver.statuses = [410, 200, 200]
        fake_llm.script(token, form_script())
        created = stack.create_run(prompt=f"Sign as Ada ({token})", url=sites.url(FORM_PATH),
                                   webhook_url=receiver.url)
        run_id = created["run_id"]
        assert stack.wait_final(run_id)["status"] == "completed"
        _wait_attempts(stack, run_id, 1)
        time.sleep(BACKOFF_SECONDS * 4)
        attempts = _attempts(stack, run_id)
        assert len(receiver.received) == 1
    assert len(attempts) == 1 and attempts[0]["status_code"] == 410 and attempts[0]["error"] == "HTTP 410"
    reason = _webhook_failure_reason(stack, run_id)
    assert reason is not None and "HTTP 410" in reason


def _wait_running(stack: Stack, run_ids: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while any(client.get(f"/v1/runs/{run_id}").json()["status"] != "running" for run_id in run_ids):
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.2)


def _wait_delivered(stack: Stack, receiver: Receiver, run_ids: list[str],
                    timeout: float = 90) -> dict[str, list[Received]]:
    """Every run's webhook received at least once (by run id) and its delivery settled as delivered."""
    deadline = time.monotonic() + timeout
    while True:
        by_run: dict[str, list[Received]] = defaultdict(list)
        for hook in list(receiver.received):
            by_run[_run_id_of(hook)].append(hook)
        settled = {row[0] for row in _query(stack, "SELECT run_id FROM webhook_deliveries WHERE status = "
                                                   "'delivered'")}
        if all(by_run.get(run_id) and run_id in settled for run_id in run_ids):
            return by_run
        assert time.monotonic() < deadline, (
            f"not delivered: {[r for r in run_ids if not by_run.get(r) or r not in settled]}\n{stack.logs()}")
        time.sleep(0.2)


def _run_id_of(hook: Received) -> str:
    return str(json.loads(hook.body)["run_id"])


def _assert_at_least_once(stack: Stack, by_run: dict[str, list[Received]], run_ids: list[str]) -> int:
    """Each run's hooks: valid signatures, one delivery id (the outbox's), the run final. Returns the
    number of duplicates."""
    duplicates = 0
    for run_id in run_ids:
        hooks = by_run[run_id]
        assert all(h.headers["x-skyvern-signature"] == sign(stack.api_key, h.body) for h in hooks)
        ids = {h.headers[DELIVERY_ID] for h in hooks}
        (stored,) = _query(stack, "SELECT id, status FROM webhook_deliveries WHERE run_id = :r", r=run_id)
        assert ids == {stored[0]} and stored[1] == "delivered", (run_id, ids, stored)
        assert _run_id_of(hooks[0]) == run_id and b'"status":"' in hooks[0].body
        duplicates += len(hooks) - 1
    return duplicates


def test_an_embedded_server_killed_holding_runs_and_a_send_delivers_them_all_after_a_restart(
    tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    with webhook_receiver() as receiver, running_stack(tmp_path, llm_base_url=fake_llm.base_url,
                                                       extra_env=KILL_ENV) as stack:
        held = []  # three runs held by the server at the kill
        for n in range(3):
            fake_llm.script(f"{token}-h{n}", stall_script())
            held.append(stack.create_run(prompt=f"Wait ({token}-h{n})", url=sites.url(FORM_PATH),
                                         webhook_url=receiver.url)["run_id"])
        _wait_running(stack, held)
        # and one run that ended: its webhook is on the wire (the receiver holds the request) at the kill
        receiver.answering.clear()
        fake_llm.script(token, form_script())
        sent = stack.create_run(prompt=f"Sign as Ada ({token})", url=sites.url(FORM_PATH),
                                webhook_url=receiver.url)["run_id"]
        assert len(receiver.wait_for(1, timeout=90)) == 1, stack.logs()
        stack.kill("api")  # (under load an attempt may have timed out and been retried before: still held)
        before_kill = len(receiver.received)
        receiver.answering.set()
        stack.start_api()
        by_run = _wait_delivered(stack, receiver, [sent, *held])
        duplicates = _assert_at_least_once(stack, by_run, [sent, *held])
        with stack.client() as client:
            statuses = [client.get(f"/v1/runs/{run_id}").json()["status"] for run_id in [sent, *held]]
    print(f"embedded kill -9: 4 webhooks owed, all delivered, {duplicates} duplicate(s)")
    assert statuses == ["completed"] + ["failed"] * 3
    assert len(by_run[sent]) > before_kill  # cut off mid-send, sent again with the same delivery id


def test_a_celery_worker_killed_holding_ten_runs_leaves_no_webhook_undelivered(
    tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    with webhook_receiver() as receiver, throwaway_postgres() as pg_url, private_redis() as redis_url, \
            running_stack(tmp_path, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url,
                          extra_env={**KILL_ENV, "WAYFARER_MAX_CONCURRENT_RUNS": "10"}) as stack:
        stack.start_worker("worker", concurrency=10)
        held = []
        for n in range(10):
            fake_llm.script(f"{token}-c{n}", stall_script(300))
            held.append(stack.create_run(prompt=f"Wait ({token}-c{n})", url=sites.url(FORM_PATH),
                                         webhook_url=receiver.url, max_steps=300)["run_id"])
        _wait_running(stack, held, timeout=180)
        stack.kill("worker")  # SIGKILL to the worker's process group, its Chromium included
        assert receiver.received == []
        stack.start_worker("replacement", concurrency=2)
        by_run = _wait_delivered(stack, receiver, held)
        duplicates = _assert_at_least_once(stack, by_run, held)
        with stack.client() as client:
            statuses = {client.get(f"/v1/runs/{run_id}").json()["status"] for run_id in held}
    print(f"celery worker kill -9: 10 webhooks owed, all delivered, {duplicates} duplicate(s)")
    assert statuses <= FINAL and statuses == {"failed"}
