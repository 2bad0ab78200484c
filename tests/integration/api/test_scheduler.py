"""The scheduler with an injected clock (no waiting for real minutes): each slot starts one run, also
with two processes firing the same schedules at the same instants on PostgreSQL; missed slots fire the
latest one once; a disabled schedule fires nothing; a slot whose run is refused records why and moves on.
Runs go to a private Redis queue no worker consumes (the end-to-end test runs one)."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts.service import organization_for_key
from app.db.engine import session_scope
from app.db.models import Run, ScheduleFiring, WorkflowSchedule, utcnow
from app.dispatch import CeleryDispatcher
from app.main import create_app
from app.platform.settings import Settings
from app.workflows.scheduler import Fired, Scheduler, fire_due
from tests.integration.api.conftest import Api, make_settings
from tests.integration.api.test_workflows import create, definition
from tests.support.spec import assert_matches_spec


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str) -> Iterator[Api]:
    """The API with no scheduler thread of its own: only the test's injected clocks fire."""
    key = f"wf_test_{uuid.uuid4().hex}"
    settings = make_settings(tmp_path_factory.mktemp("data"), database_url, redis_url, api_key=key,
                             scheduler_poll_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        with session_scope(database_url) as s:
            organization = organization_for_key(s, key)
            assert organization is not None
        yield Api(client, settings, key, organization.id)


def scheduled(api: Api, cron_expression: str, **parameters: Any) -> tuple[str, str]:
    """(wpid, schedule id) of a new workflow with one schedule."""
    wpid = str(create(api, {"json_definition": definition(f"scheduled {uuid.uuid4().hex[:6]}")})[
        "workflow_permanent_id"])
    response = api.client.post(f"/v1/agents/{wpid}/schedules", headers=api.headers(), json={
        "cron_expression": cron_expression, "timezone": "UTC",
        "parameters": parameters or {"start_url": "https://example.com/"}})
    assert response.status_code == 200, response.text
    return wpid, response.json()["schedule"]["workflow_schedule_id"]


def next_fire_at(api: Api, schedule_id: str) -> datetime:
    with session_scope(api.settings.database_url) as s:
        row = s.get(WorkflowSchedule, schedule_id)
        assert row is not None
        return row.next_fire_at


def firings(api: Api, schedule_id: str) -> list[ScheduleFiring]:
    with session_scope(api.settings.database_url) as s:
        return list(s.scalars(select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule_id)
                              .order_by(ScheduleFiring.slot_at)))


def runs_of(api: Api, wpid: str) -> list[Run]:
    with session_scope(api.settings.database_url) as s:
        return list(s.scalars(select(Run).where(Run.workflow_permanent_id == wpid)))


def fire(api: Api, at: datetime, schedule_id: str) -> list[Fired]:
    """What firing at `at` did to this schedule (schedules of the module's other tests may be due too)."""
    fired = fire_due(api.settings, CeleryDispatcher(api.settings), at)
    return [f for f in fired if f.schedule_id == schedule_id]


def test_a_due_slot_starts_one_run_with_the_schedules_parameters(api: Api) -> None:
    wpid, sid = scheduled(api, "0 6 * * *", start_url="https://scheduled.example/")
    slot = next_fire_at(api, sid)
    assert (slot.hour, slot.minute, slot.second) == (6, 0, 0) and slot > utcnow()
    assert fire(api, slot - timedelta(seconds=1), sid) == []
    fired = fire(api, slot + timedelta(seconds=2), sid)
    assert len(fired) == 1 and fired[0].slot_at == slot and fired[0].run_id is not None
    assert fire(api, slot + timedelta(seconds=3), sid) == []  # fired already
    assert next_fire_at(api, sid) == slot + timedelta(days=1)

    run = api.client.get(f"/v1/runs/{fired[0].run_id}", headers=api.headers()).json()
    assert run["run_type"] == "workflow_run" and run["status"] == "queued"
    assert run["run_request"]["parameters"]["start_url"] == "https://scheduled.example/"
    assert run["run_request"]["webhook_url"] == "https://hooks.example/wf"  # the workflow's own webhook
    [stored] = runs_of(api, wpid)
    assert stored.id == fired[0].run_id and stored.webhook_key_encrypted  # signed with the saver's key
    [item] = api.client.get(f"/v1/agents/{wpid}/runs", headers=api.headers()).json()
    assert_matches_spec("WorkflowRun", item)
    assert (item["trigger_type"], item["workflow_schedule_id"]) == ("scheduled", sid)
    listed = api.client.get("/v1/runs", params={"page_size": 100}, headers=api.headers()).json()
    assert [r["trigger_type"] for r in listed if r["run_id"] == stored.id] == ["scheduled"]


def test_missed_slots_fire_the_latest_once(api: Api) -> None:
    wpid, sid = scheduled(api, "*/10 * * * *")
    first = next_fire_at(api, sid)
    back = first + timedelta(hours=5, minutes=3)  # every process was down for five hours: 30 slots passed
    fired = fire(api, back, sid)
    assert [f.slot_at for f in fired] == [first + timedelta(hours=5)]
    assert len(runs_of(api, wpid)) == 1
    assert next_fire_at(api, sid) == first + timedelta(hours=5, minutes=10)


def test_a_disabled_schedule_fires_nothing_and_enabling_skips_what_it_missed(api: Api) -> None:
    wpid, sid = scheduled(api, "*/10 * * * *")
    path = f"/v1/agents/{wpid}/schedules/{sid}"
    assert api.client.post(f"{path}/disable", headers=api.headers()).status_code == 200
    assert fire(api, utcnow() + timedelta(hours=1), sid) == []
    assert api.client.post(f"{path}/enable", headers=api.headers()).status_code == 200
    assert utcnow() < next_fire_at(api, sid) <= utcnow() + timedelta(minutes=10)
    assert runs_of(api, wpid) == []


def test_a_refused_run_is_recorded_and_the_schedule_moves_on(api: Api) -> None:
    wpid, sid = scheduled(api, "0 * * * *")
    stricter = definition("now needs a region")
    stricter["workflow_definition"]["parameters"].append(
        {"parameter_type": "workflow", "key": "region", "workflow_parameter_type": "string"})
    assert api.client.post(f"/v1/agents/{wpid}", json={"json_definition": stricter},
                           headers=api.headers()).status_code == 200
    slot = next_fire_at(api, sid)
    fired = fire(api, slot, sid)
    assert len(fired) == 1 and fired[0].run_id is None
    assert fired[0].error is not None and "'region' is required" in fired[0].error
    [firing] = firings(api, sid)
    assert (firing.slot_at, firing.run_id, firing.error) == (slot, None, fired[0].error)
    assert next_fire_at(api, sid) == slot + timedelta(hours=1) and runs_of(api, wpid) == []


def test_a_deleted_workflows_schedule_never_fires(api: Api) -> None:
    wpid, sid = scheduled(api, "0 * * * *")
    assert api.client.post(f"/v1/agents/{wpid}/delete", headers=api.headers()).status_code == 200
    slot = next_fire_at(api, sid)
    assert fire(api, slot, sid) == [] and fire(api, slot + timedelta(hours=3), sid) == []
    assert firings(api, sid) == [] and runs_of(api, wpid) == []


def test_the_scheduler_thread_fires_on_its_clock(api: Api) -> None:
    wpid, sid = scheduled(api, "30 4 * * *")
    slot = next_fire_at(api, sid)
    settings = api.settings.model_copy(update={"scheduler_poll_seconds": 0.05})
    scheduler = Scheduler(settings, CeleryDispatcher(settings), clock=lambda: slot).start()
    try:
        deadline = time.monotonic() + 30
        while not firings(api, sid) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert [f.slot_at for f in firings(api, sid)] == [slot] and len(runs_of(api, wpid)) == 1


def _fire_at_each(settings: Settings, instants: list[datetime], barrier: Any, results: Any) -> None:
    """One process: at each instant, wait for the other, then fire what is due."""
    dispatcher = CeleryDispatcher(settings)
    started = []
    for instant in instants:
        barrier.wait(timeout=60)
        started += [(fired.schedule_id, fired.run_id) for fired in fire_due(settings, dispatcher, instant)]
    results.put(started)


def test_two_processes_fire_each_slot_exactly_once(api: Api, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the two-process race is checked on PostgreSQL (SQLite serialises every writer)")
    schedules = [scheduled(api, cron) for cron in ("* * * * *", "*/2 * * * *", "*/5 * * * *")]
    start = max(next_fire_at(api, sid) for _, sid in schedules)
    instants = [start + timedelta(minutes=minute, seconds=1) for minute in range(20)]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_fire_at_each, args=(api.settings, instants, barrier, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0
    started = [run for _ in processes for schedule_id, run in results.get(timeout=5)
               if schedule_id in {sid for _, sid in schedules}]

    expected = []
    for (wpid, sid), every in zip(schedules, (1, 2, 5), strict=True):
        slots = [f.slot_at for f in firings(api, sid)]
        assert len(slots) == len(set(slots))
        # every slot the instants passed: the first (missed) one, then each that came due
        assert all(f.run_id for f in firings(api, sid))
        assert sorted(run.id for run in runs_of(api, wpid)) == sorted(f.run_id for f in firings(api, sid))
        assert all(slot.minute % every == 0 for slot in slots)
        expected += [f.run_id for f in firings(api, sid)]
    assert len(firings(api, schedules[0][1])) == 20
    assert sorted(started) == sorted(expected)  # each run was started by exactly one of the two processes
