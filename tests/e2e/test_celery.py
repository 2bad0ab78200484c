"""The spine on the production path: PostgreSQL, Redis, separate `wayfarer worker` processes."""

from __future__ import annotations

import time

import httpx

from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack
from tests.support.webhook_receiver import Receiver


def test_run_completes_through_redis_and_a_worker_process(
    celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    fake_llm.script(token, form_script())
    created = celery_stack.create_run(prompt=f"Sign the guest book as Ada ({token})",
                                      url=sites.url(FORM_PATH), webhook_url=receiver.url)
    run = celery_stack.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["output"] == GREETING
    assert httpx.get(run["recording_url"], timeout=10).status_code == 200
    (hook,) = receiver.wait_for(1)
    assert b'"status":"completed"' in hook.body


def test_killed_worker_never_leaves_a_run_running(
    celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    fake_llm.script(token, stall_script())
    created = celery_stack.create_run(prompt=f"Wait forever ({token})", url=sites.url(FORM_PATH))
    run_id = created["run_id"]
    with celery_stack.client() as client:
        deadline = time.monotonic() + 60
        while client.get(f"/v1/runs/{run_id}").json()["status"] != "running":
            assert time.monotonic() < deadline, celery_stack.logs()
            time.sleep(0.2)
    worker = next(name for name in celery_stack.processes if name.startswith("worker"))
    celery_stack.kill(worker)  # SIGKILL the whole worker process group, browser included
    celery_stack.start_worker("replacement")  # its sweeper ends the orphan once the lease expires

    run = celery_stack.wait_final(run_id, timeout=60)
    assert run["status"] == "failed"
    assert "worker" in run["failure_reason"] and "lost" in run["failure_reason"]
