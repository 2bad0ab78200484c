"""Fixtures shared across the suite: the served test sites, the fake LLM, a browser pool per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.fake_llm import FakeLLM, start_fake_llm
from tests.sites.server import SiteServer, serve_sites
from tests.support.browser import browser_settings
from workers.agent.browser import BrowserPool


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sites() -> Iterator[SiteServer]:
    with serve_sites() as server:
        yield server


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    with start_fake_llm() as fake:
        yield fake


@pytest.fixture(scope="module")
async def pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserPool]:
    browser_pool = BrowserPool(browser_settings(tmp_path_factory.mktemp("data")))
    await browser_pool.start()
    yield browser_pool
    await browser_pool.stop()
