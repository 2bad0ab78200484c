"""Webhook delivery against a receiver that is down, then up; and one that refuses with a 4xx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.platform.security import sign_hex as sign
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import free_port
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Received, webhook_receiver

BACKOFF_SECONDS = 0.5  # retries after ~0.5, 1.5, 3.5, 7.5 s
DOWN_FOR_ATTEMPTS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("hooks"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF_SECONDS), "WAYFARER_WEBHOOK_MAX_ATTEMPTS": "6",
            "WAYFARER_WEBHOOK_TIMEOUT_SECONDS": "5"}) as running:
        yield running


def _attempts(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    with stack.client() as client:
        return list(client.get(f"/v1/runs/{run_id}/webhook_attempts").json())


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
    engine = create_engine(f"sqlite:///{Path(stack.env['WAYFARER_DATA_DIR']) / 'wayfarer.db'}")
    with engine.connect() as conn:
        reason = conn.execute(text("SELECT webhook_failure_reason FROM runs WHERE id = :id"),
                              {"id": run_id}).scalar()
    engine.dispose()
    return reason


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
