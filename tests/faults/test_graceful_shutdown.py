"""SIGTERM, as a process manager sends it to the main process: the API finishes the requests in flight;
a worker (or the embedded server) takes no new runs, lets its runs go on for the grace period
(WAYFARER_SHUTDOWN_GRACE_SECONDS, 2 s in tests) and hands back the ones still going; it exits 0."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import session_scope
from app.db.models import Action, Run, Step
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver

GRACE_SECONDS = 2
EXIT_TIMEOUT = GRACE_SECONDS + 30  # a bound against hanging, not a timing claim


def _slow_script(waits: int) -> list[Any]:
    """Longer than the grace period: `waits` steps of a 1 s wait, then sign the guest book."""
    return [[{"name": "wait", "args": {"seconds": 1}}]] * waits + form_script()


def _sigterm(stack: Stack, name: str) -> tuple[int, float]:
    """SIGTERM to the main process only (as `docker stop` does); returns (exit code, seconds to exit)."""
    proc = stack.processes.pop(name)
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=EXIT_TIMEOUT)
    return code, time.monotonic() - started


def _attempts_and_completions(database_url: str, run_ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    """Per run: how many times it was started (steps with index 0) and how many complete actions."""
    with session_scope(database_url) as s:
        attempts = s.execute(select(Step.run_id, func.count())
                             .where(Step.run_id.in_(run_ids), Step.index == 0).group_by(Step.run_id)).all()
        completes = s.execute(select(Action.run_id, func.count())
                              .where(Action.run_id.in_(run_ids), Action.action_type == "complete")
                              .group_by(Action.run_id)).all()
    return Counter(dict(attempts)), Counter(dict(completes))


def _wait_for(condition: Any, stack: Stack, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("shutdown-embedded"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}) as stack:
        yield stack


def test_the_api_finishes_a_request_in_flight_and_exits_0(embedded_server: Stack) -> None:
    stack = embedded_server
    content = os.urandom(1 << 20)
    boundary = "wayfarer-shutdown-test"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n")
    body = part.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /v1/upload_file HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {stack.api_key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    api_log = stack.log_dir / "api.log"
    shutdowns_before = api_log.read_text().count("Shutting down")
    host, port = stack.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + body[:len(body) // 2])  # the upload is half sent ...
        proc = stack.processes["api"]
        os.kill(proc.pid, signal.SIGTERM)
        _wait_for(lambda: api_log.read_text().count("Shutting down") > shutdowns_before, stack)
        sock.sendall(body[len(body) // 2:])  # ... and finished after the server began shutting down
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    code = proc.wait(timeout=EXIT_TIMEOUT)
    stack.processes.pop("api")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 200"), answer[:500]
    uploaded = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert code == 0, stack.logs()

    stack.start_api()  # the same data dir: the upload was stored whole
    stored = httpx.get(uploaded["presigned_url"], timeout=30)
    assert stored.status_code == 200
    assert hashlib.sha256(stored.content).digest() == hashlib.sha256(content).digest()


def test_the_embedded_server_hands_back_a_run_and_the_next_start_completes_it(
    embedded_server: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    stack = embedded_server
    fake_llm.script(token, _slow_script(waits=6))
    run_id = stack.create_run(prompt=f"Sign the guest book ({token})", url=sites.url(FORM_PATH))["run_id"]
    with stack.client() as client:
        _wait_for(lambda: client.get(f"/v1/runs/{run_id}").json()["step_count"] >= 1, stack)
    code, seconds = _sigterm(stack, "api")
    database_url = f"sqlite:///{stack.env['WAYFARER_DATA_DIR']}/wayfarer.db"
    with session_scope(database_url) as s:
        left = s.get(Run, run_id)
        assert left is not None and left.status == "queued", stack.logs()
    print(f"embedded SIGTERM mid-run: exit {code} after {seconds:.1f} s (grace {GRACE_SECONDS} s), "
          "run handed back as queued")
    assert code == 0, stack.logs()

    stack.start_api()
    run = stack.wait_final(run_id, timeout=60)
    assert run["status"] == "completed", run
    assert run["output"] == {"greeting": "Thanks, Ada!"}
    attempts, completes = _attempts_and_completions(database_url, [run_id])
    assert attempts[run_id] == 2  # the first attempt's steps are kept
    assert completes[run_id] == 1


@pytest.fixture
def celery_stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[tuple[Stack, str]]:
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
        tmp_path_factory.mktemp("shutdown-celery"), llm_base_url=fake_llm.base_url, database_url=pg_url,
        redis_url=redis_url, extra_env={"WAYFARER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)},
    ) as stack:
        yield stack, pg_url


def test_a_worker_stopped_with_sigterm_hands_its_runs_to_another(
    celery_stack: tuple[Stack, str], fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    stack, pg_url = celery_stack
    worker_a = stack.start_worker("a", concurrency=2)
    stack.start_worker("b", concurrency=2)
    run_ids = []
    for n in range(6):
        fake_llm.script(f"{token}-{n}", _slow_script(waits=5))
        run_ids.append(stack.create_run(prompt=f"Sign the guest book ({token}-{n})", url=sites.url(FORM_PATH),
                                        webhook_url=receiver.url)["run_id"])

    def held_by_a() -> list[str]:
        with session_scope(pg_url) as s:
            return list(s.scalars(select(Run.id).where(Run.id.in_(run_ids), Run.status == "running",
                                                       Run.worker_id.endswith(f":{worker_a.pid}"))))

    _wait_for(lambda: len(held_by_a()) == 2, stack)
    held = held_by_a()
    code, seconds = _sigterm(stack, "a")
    assert code == 0, stack.logs()

    finals = {run_id: stack.wait_final(run_id, timeout=120) for run_id in run_ids}
    assert {run_id: run["status"] for run_id, run in finals.items()} == dict.fromkeys(run_ids, "completed")
    _, completes = _attempts_and_completions(pg_url, run_ids)
    assert completes == Counter(dict.fromkeys(run_ids, 1)), completes  # none completed twice
    with session_scope(pg_url) as s:  # A's runs went back to the queue and B finished them
        finished_by = dict(s.execute(select(Run.id, Run.worker_id).where(Run.id.in_(held))).all())
    assert not any(str(worker).endswith(f":{worker_a.pid}") for worker in finished_by.values())
    hooks = Counter(json.loads(hook.body)["run_id"] for hook in receiver.wait_for(len(run_ids)))
    assert hooks == Counter(dict.fromkeys(run_ids, 1))  # a handed-back run sent no webhook

    idle_code, idle_seconds = _sigterm(stack, "b")
    print(f"worker SIGTERM with 2 runs in flight: exit {code} after {seconds:.1f} s "
          f"(grace {GRACE_SECONDS} s), {len(held)} handed back; {len(run_ids)} submitted, "
          f"{len(finals)} completed, "
          f"complete actions per run {set(completes.values())}, webhooks {sum(hooks.values())}; "
          f"idle worker: exit {idle_code} after {idle_seconds:.1f} s")
    assert idle_code == 0, stack.logs()
