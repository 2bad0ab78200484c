"""The runner on its own: a migrated SQLite database, the local store, real Chromium, the fake LLM."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from app.artifacts.store import LocalStore
from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Artifact, Organization, Run
from app.platform.settings import Settings
from app.runs import ids, lifecycle
from tests.e2e.flows import FORM_PATH, GREETING, form_script, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from workers.agent.browser import BrowserPool
from workers.runner import WorkerContext, execute_run

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


def _context(tmp_path: Path, pool: BrowserPool, fake_llm: FakeLLM, finals: list[str],
             **overrides: object) -> WorkerContext:
    values: dict[str, object] = {"llm_base_url": fake_llm.base_url, "llm_api_key": "k", **overrides}
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="s", **values)  # type: ignore[call-arg, arg-type]
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        s.add(Organization(id="o_1", name="one"))
    return WorkerContext(settings, pool, LocalStore(tmp_path / "artifacts"), "test-worker", finals.append)


def _queue(ctx: WorkerContext, prompt: str, url: str) -> str:
    run_id = ids.new_id(ids.TASK)
    with session_scope(ctx.settings.database_url) as s:
        s.add(Run(id=run_id, organization_id="o_1", run_type="task_v1", engine="skyvern-1.0",
                  status="queued", prompt=prompt, url=url, run_request={}, max_steps=30, errors=[]))
    return run_id


def _load(ctx: WorkerContext, run_id: str) -> tuple[Run, set[str]]:
    with session_scope(ctx.settings.database_url) as s:
        run = s.get(Run, run_id)
        kinds = set(s.scalars(select(Artifact.artifact_type).where(Artifact.run_id == run_id)).all())
    assert run is not None
    return run, kinds


async def test_completes_and_a_second_claim_is_refused(tmp_path: Path, pool: BrowserPool, fake_llm: FakeLLM,
                                                      sites: SiteServer) -> None:
    finals: list[str] = []
    ctx = _context(tmp_path, pool, fake_llm, finals)
    fake_llm.script("runner-ok", form_script())
    run_id = _queue(ctx, "Sign (runner-ok)", sites.url(FORM_PATH))
    assert await execute_run(ctx, run_id)
    assert not await execute_run(ctx, run_id)  # a redelivered message does not run it twice
    run, kinds = _load(ctx, run_id)
    assert (run.status, run.output, finals) == ("completed", GREETING, [run_id])
    assert run.prompt_tokens > 0 and run.llm_calls == 2
    assert {"recording", "screenshot_final", "html_scrape", "llm_request"} <= kinds


async def test_wall_clock_deadline_ends_timed_out(tmp_path: Path, pool: BrowserPool, fake_llm: FakeLLM,
                                                 sites: SiteServer) -> None:
    ctx = _context(tmp_path, pool, fake_llm, [], run_deadline_seconds=2)
    fake_llm.script("runner-deadline", stall_script())
    run_id = _queue(ctx, "Stall (runner-deadline)", sites.url(FORM_PATH))
    await execute_run(ctx, run_id)
    run, kinds = _load(ctx, run_id)
    assert run.status == "timed_out"
    assert "wall-clock deadline of 2 s" in (run.failure_reason or "")
    assert "recording" in kinds


async def test_cancel_request_stops_the_agent(tmp_path: Path, pool: BrowserPool, fake_llm: FakeLLM,
                                             sites: SiteServer) -> None:
    finals: list[str] = []
    ctx = _context(tmp_path, pool, fake_llm, finals)
    fake_llm.script("runner-cancel", stall_script())
    run_id = _queue(ctx, "Stall (runner-cancel)", sites.url(FORM_PATH))
    running = asyncio.ensure_future(execute_run(ctx, run_id))
    while _load(ctx, run_id)[0].step_count < 1:
        await asyncio.sleep(0.1)
    with session_scope(ctx.settings.database_url) as s:
        assert lifecycle.request_cancel(s, run_id) == lifecycle.RunStatus.running
    async with asyncio.timeout(10):
        await running
    run, _ = _load(ctx, run_id)
    assert run.status == "canceled" and finals == [run_id]


async def test_no_llm_configured_fails_at_once(tmp_path: Path, pool: BrowserPool,
                                              fake_llm: FakeLLM, sites: SiteServer) -> None:
    ctx = _context(tmp_path, pool, fake_llm, [], llm_base_url=None, llm_api_key=None)
    run_id = _queue(ctx, "Anything", sites.url(FORM_PATH))
    await execute_run(ctx, run_id)
    run, _ = _load(ctx, run_id)
    assert run.status == "failed" and "WAYFARER_LLM_BASE_URL" in (run.failure_reason or "")
    assert run.step_count == 0
