"""Which wall-clock limit a run is held to: a workflow's max_elapsed_time_minutes only ever shortens the
server's deadline."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.db.models import Run
from app.platform.settings import Settings
from workers.deadline import finally_deadline, run_deadline

SETTINGS = Settings(_env_file=None, run_deadline_seconds=600)  # type: ignore[call-arg]


def test_a_shorter_workflow_limit_is_the_run_s_deadline() -> None:
    limit = run_deadline(SETTINGS, Run(run_request={"max_elapsed_time_minutes": 5}))
    assert limit.seconds == 300
    assert "max elapsed runtime limit of 5 minutes (max_elapsed_time_minutes)" in limit.limit


def test_the_server_deadline_is_the_ceiling() -> None:
    for request in ({"max_elapsed_time_minutes": 20}, {"max_elapsed_time_minutes": 10}, {}):
        limit = run_deadline(SETTINGS, Run(run_request=request))
        assert limit.seconds == 600
        assert "WAYFARER_RUN_DEADLINE_SECONDS" in limit.limit


def test_a_finally_block_after_the_deadline_has_its_own_short_limit_or_none() -> None:
    limit = finally_deadline(SETTINGS)
    assert limit is not None and limit.seconds == 120
    assert "WAYFARER_FINALLY_AFTER_TIMEOUT_SECONDS" in limit.limit
    assert finally_deadline(Settings(_env_file=None, finally_after_timeout_seconds=0)) is None  # type: ignore[call-arg]
    with pytest.raises(ValidationError):  # it must end well inside the queue's visibility timeout
        Settings(_env_file=None, finally_after_timeout_seconds=301)  # type: ignore[call-arg]
