"""Chromium killed mid-run: that run fails saying the browser crashed; the next run on the same host —
the embedded server, or a Celery worker — completes in a fresh browser, launched on demand."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module", params=["embedded", "celery"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          fake_llm: FakeLLM) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"crash-{request.param}")
    if request.param == "embedded":
        with running_stack(tmp, llm_base_url=fake_llm.base_url) as running:
            yield running
        return
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
            tmp, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url,
            workers=1) as running:
        yield running


def _browser_processes(stack: Stack) -> list[psutil.Process]:
    """The Chromium browser processes (not their renderers or helpers) of the process hosting runs:
    the embedded server, or the Celery worker."""
    host = stack.processes.get("worker0") or stack.processes["api"]
    found = []
    for proc in psutil.Process(host.pid).children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmdline and "chrom" in cmdline[0].rsplit("/", 1)[-1] and not any(
                arg.startswith("--type=") for arg in cmdline):
            found.append(proc)
    return found


def _wait_for_steps(stack: Stack, run_id: str, steps: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while (client.get(f"/v1/runs/{run_id}").json().get("step_count") or 0) < steps:
            assert time.monotonic() < deadline, f"run {run_id} did not reach step {steps}\n{stack.logs()}"
            time.sleep(0.1)


def test_a_killed_browser_fails_its_run_with_the_reason_and_the_next_run_succeeds(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, stall_script(30))
    doomed = stack.create_run(prompt=f"Keep waiting ({token})", url=sites.url(FORM_PATH))
    _wait_for_steps(stack, doomed["run_id"], 2)
    [browser] = _browser_processes(stack)
    browser.send_signal(signal.SIGKILL)

    run = stack.wait_final(doomed["run_id"], timeout=60)
    assert run["status"] == "failed", run
    assert "browser crashed" in run["failure_reason"] and "exited" in run["failure_reason"], run
    assert (run.get("step_count") or 0) < 30  # it stopped at the crash, not at the step limit

    fake_llm.script(f"{token}-after", form_script())
    after = stack.create_run(prompt=f"Sign the guest book ({token}-after)", url=sites.url(FORM_PATH))
    run = stack.wait_final(after["run_id"], timeout=60)
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["output"] == GREETING
    [relaunched] = _browser_processes(stack)
    assert relaunched.pid != browser.pid
