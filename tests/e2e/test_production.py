"""The production path end to end: PostgreSQL, Redis, SeaweedFS (S3) and separate worker processes.

Two `wayfarer worker` processes share 20 runs (each executed exactly once, both doing work, artifacts
in S3 behind presigned URLs, metrics and JSON logs from each worker); then a worker started after the
runs were queued picks them up.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.db.engine import session_scope
from app.db.models import Action, Run, Step
from tests.e2e.flows import FORM_PATH, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.seaweedfs import SECRET_KEY as S3_SECRET_KEY
from tests.support.seaweedfs import SeaweedFS, running_seaweedfs
from tests.support.services import free_port, private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver

WEBM_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass
class Production:
    stack: Stack
    database_url: str
    s3: SeaweedFS
    metrics_ports: dict[str, int]

    def start_worker(self, name: str) -> None:
        """A worker serving its own metrics on a port of its own."""
        port = free_port()
        self.stack.env["WAYFARER_WORKER_METRICS_PORT"] = str(port)
        self.stack.start_worker(name, concurrency=2)
        self.metrics_ports[name] = port

    def worker_metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5).text
                return _samples(text)
            except httpx.HTTPError:
                assert time.monotonic() < deadline, self.stack.logs()
                time.sleep(0.2)

    def submit(self, sites: SiteServer, fake_llm: FakeLLM, token: str, webhook_url: str | None = None) -> str:
        fake_llm.script(token, form_script())
        request = {"prompt": f"Sign the guest book as Ada ({token})", "url": sites.url(FORM_PATH)}
        if webhook_url:
            request["webhook_url"] = webhook_url
        return str(self.stack.create_run(**request)["run_id"])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Production]:
    tmp: Path = tmp_path_factory.mktemp("production")
    with throwaway_postgres() as pg_url, private_redis() as redis_url, \
            running_seaweedfs(tmp / "s3") as s3, running_stack(
                tmp, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url,
                extra_env={**s3.env(), "WAYFARER_PRODUCTION": "true",  # JSON logs by default
                           "WAYFARER_WORKER_METRICS_HOST": "127.0.0.1"}) as stack:
        yield Production(stack, pg_url, s3, {})


def _worker_ids(database_url: str, run_ids: list[str]) -> dict[str, str | None]:
    with session_scope(database_url) as s:
        return dict(s.execute(select(Run.id, Run.worker_id).where(Run.id.in_(run_ids))).all())


def test_two_workers_share_twenty_runs_each_executed_once(
    production: Production, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    for name in ("worker-a", "worker-b"):
        production.start_worker(name)
    for name in ("worker-a", "worker-b"):
        production.worker_metrics(name)  # both are up before the work arrives
    run_ids = [production.submit(sites, fake_llm, f"{token}-{n:02d}", receiver.url) for n in range(20)]
    runs = [production.stack.wait_final(run_id, timeout=120) for run_id in run_ids]

    assert [run["status"] for run in runs] == ["completed"] * 20, [r.get("failure_reason") for r in runs]
    with session_scope(production.database_url) as s:  # a second execution would add steps and actions
        steps = dict(s.execute(select(Step.run_id, func.count()).where(Step.run_id.in_(run_ids))
                               .group_by(Step.run_id)).all())
        actions = dict(s.execute(select(Action.run_id, func.count()).where(Action.run_id.in_(run_ids))
                                 .group_by(Action.run_id)).all())
    assert steps == dict.fromkeys(run_ids, 2)
    assert actions == dict.fromkeys(run_ids, 3)
    pids = {name: production.stack.processes[name].pid for name in ("worker-a", "worker-b")}
    by_worker = {name: [run_id for run_id, worker in _worker_ids(production.database_url, run_ids).items()
                        if worker and worker.endswith(f":{pid}")] for name, pid in pids.items()}
    assert all(by_worker.values()), by_worker  # both workers did work
    assert sum(len(done) for done in by_worker.values()) == 20

    for run in runs:  # artifacts live in S3: presigned URLs any HTTP client can fetch
        assert run["recording_url"].startswith(production.s3.endpoint_url + "/")
        assert "X-Amz-Signature=" in run["recording_url"]
    for run in runs[:3]:
        recording = httpx.get(run["recording_url"], timeout=10)
        assert recording.status_code == 200 and recording.content.startswith(WEBM_MAGIC)
        screenshot = httpx.get(run["screenshot_urls"][0], timeout=10)
        assert screenshot.status_code == 200 and screenshot.content.startswith(b"\xff\xd8")
    assert len(receiver.wait_for(20)) == 20

    _assert_metrics(production, by_worker)
    _assert_json_logs(production, set(run_ids))


def _assert_metrics(production: Production, by_worker: dict[str, list[str]]) -> None:
    for name, done in by_worker.items():
        samples = production.worker_metrics(name)
        assert samples[("wayfarer_step_duration_seconds_count", (("part", "harness"),))] == 2 * len(done)
        assert samples[("wayfarer_step_duration_seconds_count", (("part", "llm"),))] == 2 * len(done)
        assert samples[("wayfarer_llm_calls_total", ())] == 2 * len(done)
        assert samples[("wayfarer_llm_tokens_total", (("kind", "prompt"),))] > 0
        assert samples[("wayfarer_browser_contexts_open", ())] == 0
    delivered = sum(production.worker_metrics(name).get(
        ("wayfarer_webhook_attempts_total", (("outcome", "delivered"),)), 0) for name in by_worker)
    assert delivered == 20
    api = _samples(httpx.get(f"{production.stack.base_url}/metrics", timeout=10).text)
    assert api[("wayfarer_runs", (("status", "completed"),))] == 20
    assert api[("wayfarer_queue_depth", ())] == 0


def _assert_json_logs(production: Production, run_ids: set[str]) -> None:
    text = "".join(path.read_text(errors="replace") for path in production.stack.log_dir.glob("*.log"))
    for secret in (production.stack.api_key, production.stack.env["WAYFARER_SECRET_KEY"], S3_SECRET_KEY):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, text[-3000:]
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    tagged = [line for line in lines if line.get("run_id") in run_ids]
    assert tagged, "no log line carried a run_id"
    assert all(line.get("organization_id") for line in tagged)


def test_a_worker_started_late_picks_up_queued_work(
    production: Production, fake_llm: FakeLLM, sites: SiteServer, token: str
) -> None:
    for name in [name for name in production.stack.processes if name.startswith("worker")]:
        production.stack.kill(name, signal.SIGTERM)
    run_ids = [production.submit(sites, fake_llm, f"{token}-late-{n}") for n in range(3)]
    with production.stack.client() as client:
        assert {client.get(f"/v1/runs/{run_id}").json()["status"] for run_id in run_ids} == {"queued"}

    production.start_worker("late")
    runs = [production.stack.wait_final(run_id, timeout=90) for run_id in run_ids]
    assert [run["status"] for run in runs] == ["completed"] * 3
    late_pid = production.stack.processes["late"].pid
    assert all(worker and worker.endswith(f":{late_pid}")
               for worker in _worker_ids(production.database_url, run_ids).values())
