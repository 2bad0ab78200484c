"""drive() on real Chromium and the served test pages, planning through the fake LLM over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.fakes.fake_llm import FakeLLM, start_fake_llm
from tests.integration.browser.conftest import browser_settings
from tests.sites.server import SiteServer, serve_sites
from workers.agent import BrowserOptions, RunOutcome, StepUsage, TaskSpec, drive
from workers.browser import BrowserPool, BrowserRun
from workers.planner import Planner


@dataclass
class Artifact:
    step_id: str | None
    artifact_type: str
    data: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class MemoryStore:
    """A RunStore that keeps everything in lists, for assertions."""

    steps: list[tuple[str, int, str]] = field(default_factory=list)  # (step_id, index, url)
    artifacts: list[Artifact] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[str, tuple[StepUsage, int]] = field(default_factory=dict)
    browser: BrowserRun | None = None  # the run's browser, for tests that break it

    async def start_step(self, index: int, url: str) -> str:
        step_id = f"stp_{index}"
        self.steps.append((step_id, index, url))
        return step_id

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        self.artifacts.append(Artifact(step_id, artifact_type, data, content_type))
        return f"a_{len(self.artifacts)}"

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str:
        return await self.save_artifact(step_id, artifact_type, path.read_bytes(), content_type, filename)

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str) -> None:
        self.actions.append({"step_id": step_id, "index": index, "action_type": action_type,
                             "arguments": arguments, "succeeded": succeeded, "outcome": outcome})

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None:
        self.finished[step_id] = (usage, harness_ms)

    async def verification_code(self) -> str | None:
        return None

    def of_type(self, artifact_type: str) -> list[Artifact]:
        return [artifact for artifact in self.artifacts if artifact.artifact_type == artifact_type]


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


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sites() -> Iterator[SiteServer]:
    with serve_sites() as server:
        yield server


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    with start_fake_llm() as fake:
        yield fake


@pytest.fixture(scope="module")
async def pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    browser_pool = BrowserPool(browser_settings(tmp_path_factory.mktemp("data")))
    await browser_pool.start()
    yield browser_pool
    await browser_pool.stop()


@pytest.fixture
def agent(pool: BrowserPool, sites: SiteServer, fake_llm: FakeLLM, tmp_path: Path) -> Agent:
    return Agent(pool, sites, fake_llm, tmp_path)
