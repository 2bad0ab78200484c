"""A worker that cannot launch its browser takes no runs, and a run whose start fails inside Wayfarer goes
back to the queue for a healthy worker, up to WAYFARER_RUN_START_TRIES, then ends `failed` with the reason
(issue 13). Real Redis, PostgreSQL, Chromium and `wayfarer worker` processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.browser

# Launches Chromium the first time (the worker's start-up check), then fails: a browser that breaks
# while the worker runs.
FAILS_AFTER_FIRST_LAUNCH = """#!/bin/sh
count=$(cat "$LAUNCH_COUNT_FILE" 2>/dev/null || echo 0)
echo $((count + 1)) > "$LAUNCH_COUNT_FILE"
if [ "$count" -ge 1 ]; then echo "chromium: cannot start (test)" >&2; exit 1; fi
exec {chromium} "$@"
"""


def _status(stack: Stack, run_id: str) -> str:
    with stack.client() as client:
        return str(client.get(f"/v1/runs/{run_id}").json()["status"])


def _wait_exit(stack: Stack, name: str, timeout: float = 90.0) -> int:
    proc = stack.processes[name]
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} still running after {timeout}s\n{stack.logs()}") from None


def _flaky_chromium(tmp_path: Path, name: str) -> dict[str, str]:
    script = tmp_path / f"{name}-chromium"
    script.write_text(FAILS_AFTER_FIRST_LAUNCH.format(chromium=shutil.which("chromium")))
    script.chmod(0o755)
    return {"WAYFARER_CHROMIUM_PATH": str(script), "LAUNCH_COUNT_FILE": str(tmp_path / f"{name}.count")}


def _health(stack: Stack, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("wayfarer")), "health", "--browser"],
                          env={**stack.env, **extra_env}, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(420)  # six worker starts, each launching Chromium first
def test_broken_browsers_take_no_runs_and_failed_starts_are_retried_then_failed(
        tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, form_script())
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
            tmp_path, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url,
            extra_env={"WAYFARER_RUN_START_TRIES": "2"}) as stack:
        run_id = stack.create_run(prompt=f"Sign the guest book ({token})", url=sites.url(FORM_PATH))["run_id"]

        # No browser at all: the worker says why and exits before consuming anything
        no_browser = {"WAYFARER_CHROMIUM_PATH": "/bin/false"}
        stack.start_worker("broken", extra_env=no_browser)
        assert _wait_exit(stack, "broken") == 1
        log = (stack.log_dir / "broken.log").read_text()
        assert "Chromium could not be launched" in log and "This worker takes no runs" in log
        assert _status(stack, run_id) == "queued"
        assert redis.Redis.from_url(redis_url).llen("wayfarer.runs") == 1  # the message is still there
        checked = _health(stack, no_browser)
        assert checked.returncode == 1 and "Chromium could not be launched" in checked.stderr
        assert _health(stack, {}).returncode == 0

        # A browser that breaks after the start-up check: the run goes back to the queue (try 1 of 2) and
        # the worker stops taking runs; a healthy worker then runs it
        stack.start_worker("flaky", extra_env=_flaky_chromium(tmp_path, "flaky"))
        _wait_exit(stack, "flaky")
        log = (stack.log_dir / "flaky.log").read_text()
        assert "goes back to the queue: its start failed (try 1 of 2)" in log, stack.logs()
        assert "this worker stops taking runs" in log
        assert _status(stack, run_id) == "queued"
        stack.start_worker("healthy")
        run = stack.wait_final(run_id)
        assert run["status"] == "completed" and run["output"] == GREETING, run["failure_reason"]
        stack.kill("healthy", 15)

        # Two failed starts (WAYFARER_RUN_START_TRIES=2): failed, with the reason
        second = stack.create_run(prompt=f"Sign the guest book ({token}) again", url=sites.url(FORM_PATH))
        stack.start_worker("flaky2", extra_env=_flaky_chromium(tmp_path, "flaky2"))
        _wait_exit(stack, "flaky2")
        stack.start_worker("flaky3", extra_env=_flaky_chromium(tmp_path, "flaky3"))
        failed = stack.wait_final(second["run_id"])
        assert failed["status"] == "failed"
        assert failed["failure_reason"].startswith("The run could not be started (2 tries"), failed
        assert "Chromium could not be launched" in failed["failure_reason"]
        assert "chromium: cannot start (test)" in failed["failure_reason"]  # what the browser said


def test_readiness_covers_the_database_and_the_queue(tmp_path: Path) -> None:
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
            tmp_path, llm_base_url=None, database_url=pg_url, redis_url=redis_url) as stack:
        ready = httpx.get(f"{stack.base_url}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "queue": "ok"}
        stack.kill("api", 15)
        stack.env["WAYFARER_REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
        stack.start_api()
        deadline = time.monotonic() + 30
        while (answer := httpx.get(f"{stack.base_url}/readyz", timeout=10)).status_code != 503:
            assert time.monotonic() < deadline, answer.text
        assert answer.json()["database"] == "ok"
        assert answer.json()["queue"].startswith("the queue (Redis at 127.0.0.1) does not answer")
        assert httpx.get(f"{stack.base_url}/healthz", timeout=10).status_code == 200  # alive all the same
