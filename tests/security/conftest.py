"""An embedded server with the fake LLM for the security tests (its own, so limits can be set)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_llm import FakeLLM
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("security"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_MAX_CONCURRENT_RUNS": "2"}) as stack:
        yield stack


@pytest.fixture
def token() -> str:
    import uuid
    return f"task-{uuid.uuid4().hex[:10]}"
