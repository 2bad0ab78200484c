"""Pause and resume through HTTP: the agent stops at a step boundary and starts no action while a key
holds control, the lease is renewed and the deadline does not run meanwhile, cancel still works, an idle
holder gives control back by itself, one holder at a time, another organization's run is a 404."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.accounts.service import active_api_key, create_api_key, create_organization
from app.db.engine import session_scope
from app.db.models import Run, RunEvent
from tests.e2e.flows import FORM_PATH
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack, running_stack

DEADLINE_S, IDLE_S = 10, 12


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("control"), llm_base_url=fake_llm.base_url, extra_env={
            "WAYFARER_RUN_DEADLINE_SECONDS": str(DEADLINE_S), "WAYFARER_TAKEOVER_IDLE_SECONDS": str(IDLE_S),
            "WAYFARER_RUN_LEASE_SECONDS": "3", "WAYFARER_SWEEP_INTERVAL_SECONDS": "1"}) as running:
        yield running


def _database(stack: Stack) -> str:
    return f"sqlite:///{(Path(stack.env['WAYFARER_DATA_DIR']) / 'wayfarer.db').resolve()}"


def _script(waits: int, output: Any) -> list[Any]:
    return [*[[{"name": "wait", "args": {"seconds": 1}}] for _ in range(waits)],
            [{"name": "complete", "args": {"output": output, "summary": "done"}}]]


def _wait_status(stack: Stack, run_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while (run := client.get(f"/v1/runs/{run_id}").json())["status"] != status:
            assert time.monotonic() < deadline, f"{run['status']} != {status}\n{stack.logs()}"
            time.sleep(0.1)
    return dict(run)


def _events(stack: Stack, run_id: str) -> list[tuple[str, str | None, str | None]]:
    with session_scope(_database(stack)) as s:
        rows = s.scalars(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.created_at))
        return [(row.kind, row.key_id, row.detail) for row in rows]


def _key_id(stack: Stack) -> str:
    with session_scope(_database(stack)) as s:
        row = active_api_key(s, stack.api_key)
        assert row is not None
        return row.id


def test_a_paused_run_waits_for_its_holder_and_goes_on_when_given_back(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, _script(2, {"went_on": True}))
    run_id = stack.create_run(prompt=f"Wait, then finish ({token})", url=sites.url(FORM_PATH))["run_id"]
    _wait_status(stack, run_id, "running")
    with stack.client() as client:
        paused = client.post(f"/v1/runs/{run_id}/pause", json={"reason": "checking the form"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["pause_requested"] is True
        assert paused.json()["held_by_key_id"] == _key_id(stack)
        _wait_status(stack, run_id, "paused")
        asked = len(fake_llm.requests_for(token))
        # longer than the lease (3 s, swept every second) and, with the run's time before, the deadline
        time.sleep(DEADLINE_S + 1)
        assert len(fake_llm.requests_for(token)) == asked, "the agent asked the model while paused"
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "paused"

        with session_scope(_database(stack)) as s:
            same_org_key = create_api_key(s, s.get(Run, run_id).organization_id)
            other_org_key = create_api_key(s, create_organization(s, "elsewhere").id)
        refused = client.post(f"/v1/runs/{run_id}/resume", headers={"x-api-key": same_org_key})
        assert refused.status_code == 409 and "another API key" in refused.json()["detail"]
        assert client.post(f"/v1/runs/{run_id}/pause", headers={"x-api-key": same_org_key}).status_code == 409
        for path in ("pause", "resume"):
            foreign = client.post(f"/v1/runs/{run_id}/{path}", headers={"x-api-key": other_org_key})
            assert foreign.status_code == 404 and foreign.json() == {"detail": f"Run not found {run_id}"}

        resumed = client.post(f"/v1/runs/{run_id}/resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["status"] == "running" and resumed.json()["held_by_key_id"] is None
    final = stack.wait_final(run_id)
    assert final["status"] == "completed", final["failure_reason"]
    assert final["output"] == {"went_on": True}
    after = fake_llm.requests_for(token)[asked]
    assert "a person had control of the browser" in str(after["messages"])
    key = _key_id(stack)
    assert [(kind, holder) for kind, holder, _ in _events(stack, run_id)] == [
        ("control_taken", key), ("control_given_back", key)]
    with stack.client() as client:  # the timeline shows the hand-over between the steps, in Skyvern's shape
        timeline = client.get(f"/v1/runs/{run_id}/timeline").json()
    assert_matches_spec("WorkflowRunTimeline", timeline)
    thoughts = [child["thought"] for child in timeline[0]["children"]]
    assert [(t["output"] or {}).get("event") for t in thoughts if t["thought_type"] == "metadata"] == [
        "control_taken", "control_given_back"]
    assert thoughts[-1]["thought_type"] == "plan"  # the steps after control was given back come after it
    assert [t["created_at"] for t in thoughts] == sorted(t["created_at"] for t in thoughts)


def test_cancel_still_works_while_paused(stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                         token: str) -> None:
    fake_llm.script(token, _script(30, None))
    run_id = stack.create_run(prompt=f"Keep waiting ({token})", url=sites.url(FORM_PATH))["run_id"]
    _wait_status(stack, run_id, "running")
    with stack.client() as client:
        assert client.post(f"/v1/runs/{run_id}/pause").status_code == 200
        _wait_status(stack, run_id, "paused")
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
        assert stack.wait_final(run_id, timeout=15)["status"] == "canceled"
        ended = client.post(f"/v1/runs/{run_id}/pause")
        assert ended.status_code == 409 and "canceled" in ended.json()["detail"]
        assert client.post(f"/v1/runs/{run_id}/resume").status_code == 409


def test_an_idle_holder_gives_control_back_by_itself(stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                     token: str) -> None:
    fake_llm.script(token, _script(1, {"done": True}))
    run_id = stack.create_run(prompt=f"Wait once ({token})", url=sites.url(FORM_PATH))["run_id"]
    _wait_status(stack, run_id, "running")
    with stack.client() as client:
        assert client.post(f"/v1/runs/{run_id}/pause").status_code == 200
    _wait_status(stack, run_id, "paused")
    final = stack.wait_final(run_id, timeout=IDLE_S + 30)
    assert final["status"] == "completed", final["failure_reason"]
    kinds = _events(stack, run_id)
    assert kinds[-1][0] == "control_given_back" and kinds[-1][1] == _key_id(stack)
    assert f"no input for {IDLE_S} s" in (kinds[-1][2] or "")
