"""drive() on real Chromium and the served test pages, planning through the fake LLM over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.platform.settings import Settings
from tests.fakes.fake_llm import FakeLLM
from tests.integration.agent.memory_store import MemoryStore
from tests.sites.server import SiteServer
from workers.agent.browser import BrowserPool
from workers.agent.contract import BrowserOptions, RunOutcome, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner


@dataclass
class Agent:
    """Runs one task through drive() with its own script on the shared fake."""

    pool: BrowserPool
    sites: SiteServer
    fake: FakeLLM
    tmp_path: Path
    store_factory: Callable[[], MemoryStore] = MemoryStore

    def settings(self, **overrides: Any) -> Settings:
        env = {"WAYFARER_LLM_BASE_URL": self.fake.base_url, "WAYFARER_LLM_API_KEY": "test-key",
               "llm_model": "fake-model"}
        return Settings(_env_file=None, **{**env, "llm_max_retries": 2, **overrides})  # type: ignore[call-arg]

    async def run(self, script: list[Any], path: str = "/guestbook.html", *, url: str | None = None,
                  max_steps: int = 6, settings: Settings | None = None,
                  **task_fields: Any) -> tuple[RunOutcome, MemoryStore, str]:
        """Run a task on the page at `path` (or `url`) with `script` as the model's answers."""
        token = f"task-{uuid.uuid4().hex[:10]}"
        self.fake.script(token, script)
        task = TaskSpec(f"tsk_{token}", f"Do the thing ({token}).", url or self.sites.url(path), max_steps,
                        **task_fields)
        store = self.store_factory()
        browser = await self.pool.open_run(task.run_id, BrowserOptions(), self.tmp_path / token)
        store.browser = browser
        planner = Planner(settings or self.settings(), task)
        try:
            outcome = await drive(task, browser, planner, store)
        finally:
            await planner.aclose()
            await browser.close()
        return outcome, store, token






@pytest.fixture
def agent(pool: BrowserPool, sites: SiteServer, fake_llm: FakeLLM, tmp_path: Path) -> Agent:
    return Agent(pool, sites, fake_llm, tmp_path)
