"""Fixtures for end-to-end tests: the fake LLM, the test sites, a webhook receiver, the real stack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_llm import FakeLLM
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rec:
        yield rec


@pytest.fixture
def token() -> str:
    """A unique marker put in a task's prompt so the fake LLM serves that run its own script."""
    return f"task-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("embedded")
    with running_stack(tmp, llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_MAX_CONCURRENT_RUNS": "2"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("celery")
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
        tmp, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url, workers=1,
        extra_env={"WAYFARER_RUN_LEASE_SECONDS": "4", "WAYFARER_SWEEP_INTERVAL_SECONDS": "1"},
    ) as stack:
        yield stack
