"""One real BrowserPool per test module on the served test pages, a fresh BrowserRun per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.sites.refs import ref_for
from tests.sites.server import SiteServer
from workers.agent.browser import BrowserPool, BrowserRun
from workers.agent.contract import ActionResult, BrowserOptions, StepUsage, ToolCall
from workers.agent.page_state import PageState, capture
from workers.agent.tools import ToolContext, apply

VERIFICATION_CODE = "424242"


class CodeOnlyStore:
    """A RunStore for action tests: only verification_code is ever called by actions."""

    async def verification_code(self) -> str | None:
        return VERIFICATION_CODE

    def reveal(self, text: str) -> str:
        return text

    async def start_step(self, index: int, url: str) -> str:
        raise NotImplementedError

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        raise NotImplementedError

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str:
        raise NotImplementedError

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str) -> None:
        raise NotImplementedError

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None:
        raise NotImplementedError


class Driver:
    """Drives one BrowserRun like the agent loop does: capture, find a ref, apply a tool call."""

    def __init__(self, run: BrowserRun, sites: SiteServer) -> None:
        self.run = run
        self.sites = sites
        self.state: PageState | None = None

    async def open(self, path: str) -> PageState:
        await self.run.active_page.goto(self.sites.url(path))
        return await self.capture()

    async def capture(self, screenshot: bool = False) -> PageState:
        self.state = await capture(self.run, screenshot=screenshot)
        return self.state

    def ref(self, role: str, name: str) -> str:
        assert self.state is not None, "capture first"
        return ref_for(self.state.snapshot, role, name)

    async def act(self, tool: str, **args: Any) -> ActionResult:
        labels = self.state.labels if self.state is not None else {}
        return await apply(ToolContext(self.run, CodeOnlyStore(), labels), ToolCall(tool, args))

    async def text(self, selector: str = "#result") -> str:
        return (await self.run.active_page.locator(selector).inner_text()).strip()






@pytest.fixture
async def driver(pool: BrowserPool, sites: SiteServer, tmp_path: Path) -> AsyncIterator[Driver]:
    run = await pool.open_run("tsk_test", BrowserOptions(), tmp_path)
    yield Driver(run, sites)
    await run.close()
