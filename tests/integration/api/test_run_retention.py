"""Run retention (issue 17.4): WAYFARER_RUN_RETENTION_DAYS removes a run that ended long enough ago with
everything it holds (artifacts' bytes and rows, steps, actions, webhook delivery and attempts, events);
newer runs, unfinished runs, and everything when the setting is 0, stay. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.artifacts.store import LocalStore
from app.db.engine import session_scope
from app.db.models import Action, Artifact, Base, RunEvent, Step, WebhookAttempt, utcnow
from app.runs import ids, lifecycle
from app.runs.lifecycle import RunStatus
from app.runs.retention import delete_expired_runs
from tests.integration.api.conftest import Api


def _ended_run(api: Api, days_ago: float) -> str:
    """A run as its runner leaves it: a step, an action, stored LLM request, an event, its webhook owed
    and attempted once; ended `days_ago` days ago."""
    run_id = api.create(webhook_url="http://127.0.0.1:9/hook")["run_id"]
    with session_scope(api.settings.database_url) as s:
        assert lifecycle.claim(s, run_id, "test-worker")
        step_id = ids.new_id(ids.STEP)
        s.add(Step(id=step_id, run_id=run_id, index=0, url="http://127.0.0.1:9/"))
        s.flush()
        s.add(Action(id=ids.new_id(ids.ACTION), run_id=run_id, step_id=step_id, index=0, action_type="click",
                     arguments={}, succeeded=True, outcome="clicked"))
        s.add(RunEvent(id=ids.new_id(ids.RUN_EVENT), run_id=run_id, kind="control_taken"))
        assert lifecycle.finish(s, run_id, RunStatus.completed)
        s.add(WebhookAttempt(id=ids.new_id(ids.WEBHOOK_ATTEMPT), run_id=run_id, attempt=1,
                             url="http://127.0.0.1:9/hook", latency_ms=1, error="ConnectError"))
    api.add_artifact(run_id, "llm_request", b'{"messages": ["personal data"]}', "application/json")
    api.set_run(run_id, finished_at=utcnow() - timedelta(days=days_ago))
    return run_id


def _rows_of(api: Api, run_id: str) -> dict[str, int]:
    """How many rows each table that points at runs holds for the run (and the run itself)."""
    counts = {}
    with session_scope(api.settings.database_url) as s:
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_keys:
                if fk.column.table.name == "runs":
                    counts[table.name] = s.scalar(select(func.count()).select_from(table)
                                                  .where(fk.parent == run_id)) or 0
        counts["runs"] = s.scalar(select(func.count()).select_from(Base.metadata.tables["runs"])
                                  .where(Base.metadata.tables["runs"].c.id == run_id)) or 0
    return counts


def test_runs_past_the_retention_are_removed_with_everything_they_hold(api: Api) -> None:
    store = LocalStore(api.settings.data_dir / "artifacts")
    old, recent = _ended_run(api, days_ago=10), _ended_run(api, days_ago=1)
    unfinished = api.create()["run_id"]
    with session_scope(api.settings.database_url) as s:
        old_key = s.scalar(select(Artifact.storage_key).where(Artifact.run_id == old))
    assert old_key and store.get(old_key)
    before = _rows_of(api, old)
    assert {name for name, count in before.items() if count} >= {
        "runs", "steps", "actions", "artifacts", "run_events", "webhook_deliveries", "webhook_attempts"}

    assert delete_expired_runs(api.settings, store) == 0  # off by default: nothing goes
    settings = api.settings.model_copy(update={"run_retention_days": 7})
    assert delete_expired_runs(settings, store) >= 1

    assert set(_rows_of(api, old).values()) == {0}
    assert not (store.root / old_key).exists()
    assert api.client.get(f"/v1/runs/{old}", headers=api.headers()).status_code == 404
    for kept in (recent, unfinished):
        assert api.client.get(f"/v1/runs/{kept}", headers=api.headers()).status_code == 200
    assert _rows_of(api, recent) == before
