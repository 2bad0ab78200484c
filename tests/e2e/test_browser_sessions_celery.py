"""Browser sessions on the Celery stack with two workers: runs for a session go to the worker holding
it; when that worker is killed, the session ends failed and its queued run fails saying so."""

from __future__ import annotations

from sqlalchemy import select

from app.db.engine import session_scope
from app.db.models import BrowserSession, Run
from tests.e2e.test_browser_sessions import DONE, SESSION_PAGE, chromium_pids, wait_running, wait_until
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack


def _worker_of(database_url: str, model: type[Run] | type[BrowserSession], row_id: str) -> str | None:
    with session_scope(database_url) as s:
        return s.scalar(select(model.worker_id).where(model.id == row_id))


def test_runs_go_to_the_holder_and_die_with_it(celery_stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                               token: str) -> None:
    database_url = celery_stack.env["WAYFARER_DATABASE_URL"]
    celery_stack.start_worker("worker1")
    for index in range(3):
        fake_llm.script(f"{token}-{index}", DONE)
    with celery_stack.client() as client:
        session_id = client.post("/v1/browser_sessions", json={"url": sites.url(SESSION_PAGE)}).json()[
            "browser_session_id"]
        early = celery_stack.create_run(prompt=f"Look ({token}-0)", browser_session_id=session_id)
        wait_running(client, session_id)
        later = [celery_stack.create_run(prompt=f"Look ({token}-{index})", browser_session_id=session_id)
                 for index in (1, 2)]
        for run in (early, *later):
            final = celery_stack.wait_final(run["run_id"])
            assert final["status"] == "completed", final.get("failure_reason")
        holder = _worker_of(database_url, BrowserSession, session_id)
        assert holder is not None
        assert {_worker_of(database_url, Run, run["run_id"]) for run in (early, *later)} == {holder}

        holder_pid = int(holder.rsplit(":", 1)[1])
        (holder_name,) = [name for name, proc in celery_stack.processes.items() if proc.pid == holder_pid]
        celery_stack.kill(holder_name)
        orphan = celery_stack.create_run(prompt=f"Look ({token}-orphan)", browser_session_id=session_id)
        final = celery_stack.wait_final(orphan["run_id"], timeout=30)
        assert final["status"] == "failed"
        assert f"worker holding browser session {session_id} stopped" in final["failure_reason"]
        ended = client.get(f"/v1/browser_sessions/{session_id}").json()
        assert ended["status"] == "failed" and "worker holding" in ended["failure_reason"]
        wait_until(lambda: not chromium_pids(session_id), timeout=10, what="the holder's Chromium gone")
        refused = client.post("/v1/run/tasks", json={"prompt": "x", "browser_session_id": session_id})
        assert refused.status_code == 400 and "status failed" in refused.json()["detail"]
