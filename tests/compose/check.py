"""The compose end-to-end check (scripts/compose-check): the shipped docker-compose.yml with the check's
override (tests/compose/docker-compose.check.yml), driven from the host through the published API only.

Builds the image, brings the stack up, then: creates a key; runs a task to `completed` with its output;
fetches its recording and a screenshot through the returned (presigned S3) links; sees the signed webhook
arrive; drives a browser session over `browser_address` with Playwright from the host; scales `worker` to
2 and sees both take runs; stops one gracefully mid-run (the run is handed back and completes on the
other); SIGKILLs one mid-run (the run ends `failed` once its lease expires); `docker compose down -v`.
Prints how long each part took. Needs `docker` (with Compose v2) in $DOCKER, default `docker`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from app.platform.security import sign_hex
from tests.e2e.flows import FORM_PATH, form_script

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "wayfarer-check"
FINAL = {"completed", "failed", "terminated", "timed_out", "canceled"}
SITES = "http://sites:8081"
HOOK_URL = "http://hooks:8082/hook"
TIMINGS: list[tuple[str, float]] = []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


API_PORT, S3_PORT = _free_port(), _free_port()
ENV = {**os.environ, "API_HOST_PORT": str(API_PORT), "S3_HOST_PORT": str(S3_PORT)}
DOCKER = os.environ.get("DOCKER", "docker")
BASE = f"http://127.0.0.1:{API_PORT}"


@contextmanager
def timed(part: str) -> Iterator[None]:
    print(f"compose-check: {part} ...", flush=True)
    started = time.monotonic()
    yield
    TIMINGS.append((part, time.monotonic() - started))
    print(f"compose-check: {part}: {TIMINGS[-1][1]:.1f} s", flush=True)


def docker(*args: str, check: bool = True, timeout: float = 900) -> str:
    result = subprocess.run([DOCKER, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                           f"\n{result.stderr[-3000:]}")
    return result.stdout


def compose(*args: str, check: bool = True, timeout: float = 900) -> str:
    return docker("compose", "-p", PROJECT, "-f", "docker-compose.yml", "-f",
                  "tests/compose/docker-compose.check.yml", *args, check=check, timeout=timeout)


def published(service: str, port: int) -> str:
    return "http://" + compose("port", service, str(port)).strip()


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


class Api:
    def __init__(self, key: str) -> None:
        self.key = key
        self.http = httpx.Client(base_url=BASE, headers={"x-api-key": key}, timeout=30)

    def run(self, token: str, steps: list[Any], llm: str, **request: Any) -> str:
        httpx.post(f"{llm}/fake/scripts", json={"key": token, "steps": steps}, timeout=10).raise_for_status()
        response = self.http.post("/v1/run/tasks", json={
            "prompt": f"Sign the guest book ({token})", "url": f"{SITES}{FORM_PATH}", **request})
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])

    def get(self, run_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/runs/{run_id}").json())

    def final(self, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        return dict(wait_for(f"run {run_id} to end", lambda: (run := self.get(run_id))["status"] in FINAL
                             and run, timeout))

    def running(self, run_id: str) -> None:
        """Until the run has taken a step (mid-run, not just claimed)."""
        def under_way() -> bool:
            run = self.get(run_id)
            return bool(run["status"] == "running" and (run["step_count"] or 0) >= 1)

        wait_for(f"run {run_id} to be under way", under_way)


def stall(steps: int) -> list[Any]:
    """`steps` one-second waits, then complete: a run that is mid-way for a while, and can finish."""
    return [*[[{"name": "wait", "args": {"seconds": 1}}] for _ in range(steps)],
            [{"name": "complete", "args": {"output": {"waited": True}, "summary": "Waited."}}]]


def holders(run_ids: set[str]) -> dict[str, list[str]]:
    """run id -> the worker containers that started it (their `run started` log lines), in no order."""
    found: dict[str, list[str]] = {}
    for container in compose("ps", "-a", "-q", "worker").split():
        name = docker("inspect", "-f", "{{.Name}}", container).strip().lstrip("/")
        logs = subprocess.run([DOCKER, "logs", container], capture_output=True, text=True, env=ENV)
        for line in (logs.stdout + logs.stderr).splitlines():
            match = re.search(r'"run_id": "([^"]+)"', line)
            if "run started on" in line and match and match.group(1) in run_ids:
                found.setdefault(match.group(1), []).append(name)
    return found


def consuming() -> int:
    """How many running worker containers said Celery is ready (since they last started)."""
    ready = 0
    for container in compose("ps", "-q", "worker").split():
        since = docker("inspect", "-f", "{{.State.StartedAt}}", container).strip()
        logs = subprocess.run([DOCKER, "logs", "--since", since, container], capture_output=True, text=True,
                              env=ENV)
        ready += any('"celery.apps.worker"' in line and ' ready."' in line
                     for line in (logs.stdout + logs.stderr).splitlines())
    return ready


def check_artifacts(run: dict[str, Any]) -> None:
    recording = httpx.get(run["recording_url"], timeout=30)
    assert run["recording_url"].startswith(f"http://127.0.0.1:{S3_PORT}/"), run["recording_url"]
    assert recording.status_code == 200, recording.status_code
    assert recording.content[:4] == b"\x1a\x45\xdf\xa3", "the recording is not a WebM"
    shot = httpx.get(run["screenshot_urls"][0], timeout=30)
    assert shot.status_code == 200 and shot.content[:2] == b"\xff\xd8", shot.status_code


def check_webhook(hooks: str, run_id: str, key: str) -> None:
    def arrived() -> dict[str, Any] | None:
        received = httpx.get(f"{hooks}/received", timeout=10).json()
        return next((hook for hook in received if json.loads(hook["body"])["run_id"] == run_id), None)

    hook = wait_for("the webhook", arrived, timeout=60)
    assert hook["headers"]["x-skyvern-signature"] == sign_hex(key, hook["body"].encode()), "bad signature"
    assert json.loads(hook["body"])["status"] == "completed"


async def drive_session(api: Api) -> None:
    session = api.http.post("/v1/browser_sessions", json={}).json()
    address = session["browser_address"]
    assert address.startswith(f"ws://127.0.0.1:{API_PORT}/"), address
    async with async_playwright() as playwright:
        browser = await playwright.chromium.connect_over_cdp(address, headers={"x-api-key": api.key},
                                                             timeout=120_000)
        page = browser.contexts[0].pages[0]
        await page.goto(f"{SITES}{FORM_PATH}")
        assert await page.get_by_role("button", name="Sign").count() == 1
        await browser.close()
    assert api.http.post(f"/v1/browser_sessions/{session['browser_session_id']}/close").status_code == 200


def main() -> int:
    started = time.monotonic()
    try:
        with timed("build the image (docker build --network host)"):
            docker("build", "--network", "host", "-t", "wayfarer:latest", ".", timeout=1800)
        size = int(docker("image", "inspect", "-f", "{{.Size}}", "wayfarer:latest").strip())
        print(f"compose-check: image wayfarer:latest is {size / 1e6:.0f} MB", flush=True)
        with timed("docker compose up (healthy)"):
            compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "300")
        llm, hooks = published("llm", 8080), published("hooks", 8082)
        with timed("a key, a task to completed, its artifacts and signed webhook"):
            key = compose("exec", "-T", "api", "wayfarer", "keys", "create").strip().splitlines()[-1]
            api = Api(key)
            run_id = api.run("check-form", form_script(), llm, webhook_url=HOOK_URL)
            run = api.final(run_id)
            assert run["status"] == "completed" and run["output"] == {"greeting": "Thanks, Ada!"}, run
            check_artifacts(run)
            check_webhook(hooks, run_id, key)
        with timed("a browser session driven over browser_address from the host"):
            asyncio.run(drive_session(api))
        with timed("worker scaled to 2, both take runs"):
            compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker=2")
            wait_for("two workers consuming", lambda: consuming() == 2, 300)
            runs = {api.run(f"check-scale-{n}", stall(3), llm) for n in range(4)}
            for run_id in runs:
                assert api.final(run_id)["status"] == "completed"
            taken = holders(runs)
            assert len({name for names in taken.values() for name in names}) == 2, f"runs by worker: {taken}"
        with timed("a worker stopped gracefully mid-run: the run is handed back and completes"):
            run_id = api.run("check-handback", stall(8), llm)
            api.running(run_id)
            (holder,) = holders({run_id})[run_id]
            docker("stop", "-t", "30", holder)
            run = api.final(run_id)
            assert run["status"] == "completed", run
            started_on = set(holders({run_id})[run_id])
            assert started_on - {holder}, f"the run was not handed to the other worker: {started_on}"
            docker("start", holder)
        with timed("a worker SIGKILLed mid-run: the run ends failed once its lease expires"):
            wait_for("two workers consuming", lambda: consuming() == 2, 300)
            run_id = api.run("check-kill", stall(120), llm)
            api.running(run_id)
            (holder,) = holders({run_id})[run_id]
            docker("kill", "-s", "KILL", holder)
            run = api.final(run_id, timeout=120)
            assert run["status"] == "failed" and "worker" in (run["failure_reason"] or ""), run
        return 0
    except Exception as exc:
        print(f"compose-check: FAILED: {exc}", file=sys.stderr, flush=True)
        print(compose("logs", "--tail", "80", check=False)[-20000:], file=sys.stderr)
        return 1
    finally:
        with timed("docker compose down -v"):
            compose("down", "-v", "--remove-orphans", check=False)
        TIMINGS.append(("total", time.monotonic() - started))
        print("compose-check timings:")
        for part, seconds in TIMINGS:
            print(f"  {seconds:7.1f} s  {part}")


if __name__ == "__main__":
    sys.exit(main())
