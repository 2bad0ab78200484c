"""The real stack as separate processes: `wayfarer serve` (and `wayfarer worker` on Celery)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.db.migrate import upgrade
from tests.support.services import free_port

TEST_CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]
FINAL = {"completed", "failed", "terminated", "timed_out", "canceled"}


@dataclass
class Stack:
    base_url: str
    api_key: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"x-api-key": self.api_key}, timeout=30)

    def start_worker(self, name: str = "worker", concurrency: int = 2,
                     extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = _spawn([_wayfarer(), "worker", "--concurrency", str(concurrency)],
                      {**self.env, **(extra_env or {})}, self.log_dir / f"{name}.log")
        self.processes[name] = proc
        return proc

    def start_api(self, serve_workers: int = 1) -> subprocess.Popen[bytes]:
        """Start `wayfarer serve` on the stack's port (again, e.g. after a stop: same data dir and env)."""
        port = self.base_url.rsplit(":", 1)[1]
        proc = _spawn([_wayfarer(), "serve", "--host", "127.0.0.1", "--port", port,
                       "--workers", str(serve_workers)], self.env, self.log_dir / "api.log")
        self.processes["api"] = proc
        _wait_healthy(self)
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def logs(self) -> str:
        """The tail of each process's log, without the access log lines that would crowd it out."""
        return "\n".join(f"--- {p.name} ---\n{_without_access_lines(p.read_text(errors='replace'))[-6000:]}"
                         for p in sorted(self.log_dir.glob("*.log")))

    def create_run(self, **request: Any) -> dict[str, Any]:
        with self.client() as client:
            response = client.post("/v1/run/tasks", json=request)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_final(self, run_id: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                run = dict(client.get(f"/v1/runs/{run_id}").json())
                if run.get("status") in FINAL:
                    return run
                if time.monotonic() > deadline:
                    raise AssertionError(f"run {run_id} still {run.get('status')} after {timeout}s\n"
                                         + self.logs())
                time.sleep(0.2)


def _wayfarer() -> str:
    return str(Path(sys.executable).with_name("wayfarer"))


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


@contextmanager
def running_stack(tmp_path: Path, *, llm_base_url: str | None, database_url: str | None = None,
                  redis_url: str | None = None, workers: int = 0,
                  extra_env: dict[str, str] | None = None, serve_workers: int = 1,
                  public_base_url: bool = True) -> Iterator[Stack]:
    """Start the API server (with `serve_workers` uvicorn processes, and `workers` Celery workers when
    redis_url is set); stop them after. public_base_url=False leaves WAYFARER_PUBLIC_BASE_URL unset."""
    port = free_port()
    data_dir = tmp_path / "wayfarer-data"
    log_dir = tmp_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    api_key = f"wf_test_{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAYFARER_", "OPENAI_"))}
    env.update({
        "WAYFARER_DATA_DIR": str(data_dir),
        "WAYFARER_API_KEY": api_key,
        "WAYFARER_SECRET_KEY": uuid.uuid4().hex,
        "WAYFARER_CHROMIUM_ARGS": json.dumps(TEST_CHROMIUM_ARGS),
        "WAYFARER_LOG_LEVEL": "INFO",
        "WAYFARER_SHUTDOWN_GRACE_SECONDS": "2",  # the stop at the end hands back runs still going
    })
    if public_base_url:
        env["WAYFARER_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    if llm_base_url:
        env.update(WAYFARER_LLM_BASE_URL=llm_base_url, WAYFARER_LLM_API_KEY="test-llm-key",
                   WAYFARER_LLM_MODEL="fake-model")
    if database_url:
        env["WAYFARER_DATABASE_URL"] = database_url
        upgrade(database_url)
    if redis_url:
        env["WAYFARER_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    stack = Stack(f"http://127.0.0.1:{port}", api_key, env, log_dir)
    try:
        stack.start_api(serve_workers)
        for index in range(workers):
            stack.start_worker(f"worker{index}")
        yield stack
    finally:
        for proc in stack.processes.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in stack.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _without_access_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "uvicorn.access" not in line)


def _wait_healthy(stack: Stack, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.processes["api"].poll() is not None:
            raise RuntimeError("the API server exited at start-up\n" + stack.logs())
        try:
            if httpx.get(f"{stack.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API server did not become healthy\n" + stack.logs())
