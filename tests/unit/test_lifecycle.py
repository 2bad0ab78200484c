"""The run state machine on a real (SQLite) database migrated by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Organization, Run, utcnow
from app.runs import ids, lifecycle
from app.runs.lifecycle import InvalidTransition, RunStatus


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    upgrade(url)
    with session_scope(url) as s:
        s.add(Organization(id="o_1", name="one"))
    yield url


def _new_run(url: str, status: RunStatus = RunStatus.queued) -> str:
    run_id = ids.new_id(ids.TASK)
    with session_scope(url) as s:
        s.add(Run(id=run_id, organization_id="o_1", run_type="task_v1", engine="skyvern-1.0",
                  status=status.value, prompt="p", run_request={}, max_steps=3, errors=[]))
    return run_id


def _status(s: Session, run_id: str) -> str:
    run = s.get(Run, run_id)
    assert run is not None
    s.refresh(run)
    return run.status


def test_only_one_worker_claims_a_run(db: str) -> None:
    run_id = _new_run(db)
    with session_scope(db) as s:
        assert lifecycle.claim(s, run_id, "w1")
        assert not lifecycle.claim(s, run_id, "w2")
        run = s.get(Run, run_id)
        assert run is not None and run.worker_id == "w1" and run.started_at is not None


def test_a_final_status_never_changes(db: str) -> None:
    run_id = _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, run_id, "w1")
        assert lifecycle.finish(s, run_id, RunStatus.completed)
        assert not lifecycle.finish(s, run_id, RunStatus.failed, failure_reason="late")
        with pytest.raises(InvalidTransition, match="from completed to canceled"):
            lifecycle.request_cancel(s, run_id)
        assert _status(s, run_id) == "completed"
    with pytest.raises(ValueError), session_scope(db) as s:
        lifecycle.finish(s, run_id, RunStatus.running)


def test_cancel_ends_a_queued_run_and_flags_a_running_one(db: str) -> None:
    queued, running = _new_run(db), _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, running, "w1")
        assert lifecycle.request_cancel(s, queued) == RunStatus.canceled
        assert lifecycle.request_cancel(s, running) == RunStatus.running
        assert lifecycle.heartbeat(s, running, "w1") == lifecycle.Lease("running", True)
        assert _status(s, queued) == "canceled"
        with pytest.raises(LookupError):
            lifecycle.request_cancel(s, "tsk_missing")


def test_lost_runs_expire_after_the_lease(db: str) -> None:
    fresh, stale = _new_run(db), _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, fresh, "w1")
        lifecycle.claim(s, stale, "w2")
        s.execute(update(Run).where(Run.id == stale).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        assert lifecycle.expire_lost_runs(s, timedelta(seconds=60)) == [stale]
        run = s.get(Run, stale)
        assert run is not None
        s.refresh(run)
        assert run.status == "failed" and "worker" in (run.failure_reason or "")
        assert _status(s, fresh) == "running"


def test_only_the_holding_worker_hands_a_run_back_to_the_queue(db: str) -> None:
    run_id, canceled = _new_run(db), _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, run_id, "w1")
        lifecycle.claim(s, canceled, "w1")
        lifecycle.request_cancel(s, canceled)
        assert not lifecycle.hand_back(s, run_id, "w2")
        assert not lifecycle.hand_back(s, canceled, "w1")  # the runner ends it canceled instead
        assert lifecycle.hand_back(s, run_id, "w1")
        assert _status(s, run_id) == "queued" and _status(s, canceled) == "running"
        assert not lifecycle.hand_back(s, run_id, "w1")  # queued now: nothing to hand back
        # w1's runner sees it is gone
        assert lifecycle.heartbeat(s, run_id, "w1") == lifecycle.Lease("queued", False)
        assert lifecycle.claim(s, run_id, "w2")
        assert lifecycle.finish(s, run_id, RunStatus.completed)
        assert not lifecycle.hand_back(s, run_id, "w2")


def test_ids_are_prefixed_unique_and_time_sortable() -> None:
    made = [ids.new_id(ids.TASK) for _ in range(5000)]
    assert len(set(made)) == len(made)
    numbers = [int(i.split("_", 1)[1]) for i in made]
    assert numbers == sorted(numbers) and all(0 < n < 2**63 for n in numbers)


def test_a_pause_takes_effect_only_when_the_worker_reaches_a_step_boundary(db: str) -> None:
    run_id = _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, run_id, "w1")
        started = s.get(Run, run_id).started_at  # type: ignore[union-attr]
        assert not lifecycle.pause(s, run_id, "w1")  # nobody asked
        lifecycle.request_pause(s, run_id, "key_1", "checking")
        with pytest.raises(lifecycle.ControlHeld):
            lifecycle.request_pause(s, run_id, "key_2", None)  # one holder at a time
        assert _status(s, run_id) == "running"
        assert not lifecycle.pause(s, run_id, "w2")  # only the run's worker pauses it
        assert lifecycle.pause(s, run_id, "w1")
        lease = lifecycle.heartbeat(s, run_id, "w1")
        assert lease == lifecycle.Lease("paused", False, True, "checking", "key_1")
        with pytest.raises(lifecycle.ControlHeld):
            lifecycle.resume(s, run_id, "key_2")
        s.execute(update(Run).where(Run.id == run_id).values(paused_at=utcnow() - timedelta(seconds=30)))
        assert lifecycle.resume(s, run_id, "key_1")
        run = s.get(Run, run_id)
        assert run is not None
        s.refresh(run)
        assert (run.status, run.started_at, run.control_key_id, run.pause_requested) == (
            "running", started, None, False)
        assert run.paused_seconds >= 30
        assert not lifecycle.resume(s, run_id, "key_1")  # nothing left to resume


def test_a_pause_not_reached_yet_can_be_withdrawn_and_a_paused_run_can_still_end(db: str) -> None:
    withdrawn, canceled, lost = _new_run(db), _new_run(db), _new_run(db)
    with session_scope(db) as s:
        for run_id in (withdrawn, canceled, lost):
            lifecycle.claim(s, run_id, "w1")
            lifecycle.request_pause(s, run_id, None, "solve the CAPTCHA")
        assert lifecycle.resume(s, withdrawn)
        assert not lifecycle.pause(s, withdrawn, "w1")  # the boundary finds nothing to do
        assert lifecycle.pause(s, canceled, "w1") and lifecycle.pause(s, lost, "w1")
        assert lifecycle.request_cancel(s, canceled) == RunStatus.running  # flagged for its runner
        assert lifecycle.finish(s, canceled, RunStatus.canceled)
        assert lifecycle.finish(s, withdrawn, RunStatus.completed)
        s.execute(update(Run).where(Run.id == lost).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        assert lifecycle.expire_lost_runs(s, timedelta(minutes=2)) == [lost]
        assert _status(s, canceled) == "canceled" and _status(s, lost) == "failed"
        with pytest.raises(InvalidTransition):
            lifecycle.request_pause(s, canceled, "key_1", None)


@pytest.mark.parametrize("ending", [RunStatus.completed, RunStatus.failed, RunStatus.terminated,
                                    RunStatus.timed_out])
def test_a_cancel_accepted_first_wins_over_the_runs_own_ending(db: str, ending: RunStatus) -> None:
    run_id, untouched = _new_run(db), _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, run_id, "w1")
        lifecycle.claim(s, untouched, "w1")
        assert lifecycle.request_cancel(s, run_id) == RunStatus.running  # the client is told "canceled"
        assert lifecycle.finish(s, run_id, ending, failure_reason=None if ending == "completed" else "why",
                                output={"kept": True})
        assert lifecycle.finish(s, untouched, ending, failure_reason="why")
        run = s.get(Run, run_id)
        assert run is not None
        s.refresh(run)
        assert (run.status, run.output) == ("canceled", {"kept": True})
        assert run.failure_reason is not None and run.failure_reason.startswith(
            f"The run was canceled at the user's request; it was ending {ending.value}")
        assert _status(s, untouched) == ending.value
        assert not lifecycle.finish(s, run_id, RunStatus.completed)  # final: never changes again


def test_a_lost_worker_does_not_turn_an_accepted_cancel_into_a_failure(db: str) -> None:
    run_id = _new_run(db)
    with session_scope(db) as s:
        lifecycle.claim(s, run_id, "w1")
        lifecycle.request_cancel(s, run_id)
        s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        assert lifecycle.expire_lost_runs(s, timedelta(seconds=60)) == [run_id]
        assert _status(s, run_id) == "canceled"
