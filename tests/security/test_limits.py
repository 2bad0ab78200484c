"""Per-organization back-pressure and per-run caps, through the real server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.flows import FORM_PATH, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("limited"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_MAX_CONCURRENT_RUNS": "2", "WAYFARER_ORG_MAX_RUNNING_RUNS": "1",
            "WAYFARER_ORG_MAX_QUEUED_RUNS": "2"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("capped"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_RUN_MAX_TOKENS": "3000"}) as stack:
        yield stack


def _status(stack: Stack, run_id: str) -> str:
    with stack.client() as client:
        return str(client.get(f"/v1/runs/{run_id}").json()["status"])


def _wait_status(stack: Stack, run_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _status(stack, run_id) != status:
        assert time.monotonic() < deadline, f"{run_id} never became {status}\n{stack.logs()}"
        time.sleep(0.2)


def test_running_and_queued_limits_per_organization(limited: Stack, fake_llm: FakeLLM,
                                                    sites: SiteServer) -> None:
    runs: list[str] = []

    def submit() -> None:
        key = f"limit-{len(runs)}-{time.monotonic_ns()}"
        fake_llm.script(key, stall_script(20))
        runs.append(limited.create_run(prompt=f"Wait ({key})", url=sites.url(FORM_PATH))["run_id"])

    submit()
    try:
        _wait_status(limited, runs[0], "running")
        submit()
        submit()
        time.sleep(2)  # a free worker slot is there, but the organization may run only one at a time
        assert [_status(limited, run_id) for run_id in runs] == ["running", "queued", "queued"]
        with limited.client() as client:
            refused = client.post("/v1/run/tasks", json={"prompt": "one too many",
                                                         "url": sites.url(FORM_PATH)})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "WAYFARER_ORG_MAX_QUEUED_RUNS=2" in refused.json()["detail"]
        with limited.client() as client:  # the next one starts once the running one has ended
            client.post(f"/v1/runs/{runs[0]}/cancel")
        deadline = time.monotonic() + 30
        while "running" not in [_status(limited, run_id) for run_id in runs]:
            assert time.monotonic() < deadline, limited.logs()
            time.sleep(0.2)
        time.sleep(1)  # either may go first; the other stays queued
        assert sorted([_status(limited, run_id) for run_id in runs]) == ["canceled", "queued", "running"]
    finally:
        with limited.client() as client:
            client.post("/v1/runs/cancel", json={"run_ids": runs})


def test_a_run_over_its_token_cap_ends_timed_out(capped: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                 token: str) -> None:
    fake_llm.script(token, stall_script(30))
    created = capped.create_run(prompt=f"Keep waiting ({token})", url=sites.url(FORM_PATH))
    run = capped.wait_final(created["run_id"], timeout=60)
    assert run["status"] == "timed_out"
    assert "WAYFARER_RUN_MAX_TOKENS" in run["failure_reason"]
    assert "over its cap of 3000" in run["failure_reason"]
    with capped.client() as client:
        timeline = client.get(f"/v1/runs/{created['run_id']}/timeline").json()
    steps = [child["thought"] for entry in timeline for child in entry["children"]
             if child["thought"]["thought_type"] == "plan"]
    assert 1 <= len(steps) < 30
    assert sum(s["input_token_count"] + s["output_token_count"] for s in steps) > 3000
