"""The worker's run host on its own: a migrated SQLite database, real Chromium, a Celery-like thread."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from app.db.migrate import upgrade
from app.platform.settings import Settings
from app.runs import ids
from workers.host import RunHost

pytestmark = pytest.mark.browser

PAUSE_S = 0.2


def _descheduled_inside_submit(frame: FrameType, event: str, _arg: Any) -> Any:
    """A trace function that pauses the thread after each line of RunHost.submit, as a busy machine's
    scheduler may: the host's loop meanwhile answers the run."""
    if frame.f_code is not RunHost.submit.__code__:
        return None
    if event == "line":
        time.sleep(PAUSE_S)
    return _descheduled_inside_submit


def test_a_message_answered_before_its_sender_resumes_still_returns(tmp_path: Path) -> None:
    """A message for a run it cannot claim returns at once, even when the host answers before the
    sending thread gets to add its callback. The host once held a lock there that the callback, run at
    once on an answered future, took again: the thread hung, then every run of the worker with it."""
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="s")  # type: ignore[call-arg]
    upgrade(settings.database_url)
    host = RunHost(settings, on_final=lambda _run_id: None)
    assert host.run_blocking(ids.new_id(ids.TASK)) is False  # the browser is up: answers come fast now
    answers: list[bool] = []

    def celery_thread() -> None:
        sys.settrace(_descheduled_inside_submit)
        answers.append(host.run_blocking(ids.new_id(ids.TASK)))

    sender = threading.Thread(target=celery_thread, daemon=True)
    sender.start()
    sender.join(timeout=30)
    assert not sender.is_alive(), "the thread that sent the run never got its answer"
    assert answers == [False]
    assert host.run_blocking(ids.new_id(ids.TASK)) is False  # and the host still takes runs
    host.stop(grace_seconds=0)


def test_a_message_that_comes_after_the_host_stopped_goes_back_at_once(tmp_path: Path) -> None:
    """A Celery worker in its warm shutdown still receives a message or two: once the host has stopped
    (its loop is gone), such a run goes back to the queue as it came instead of waiting for ever, which
    kept the worker from ever exiting."""
    settings = Settings(_env_file=None, data_dir=tmp_path, secret_key="s")  # type: ignore[call-arg]
    upgrade(settings.database_url)
    sent_back: list[tuple[str, int]] = []
    host = RunHost(settings, on_final=lambda _run_id: None,
                   retry_start=lambda run_id, failed_starts: sent_back.append((run_id, failed_starts)))
    host.stop(grace_seconds=0)
    run_id = ids.new_id(ids.TASK)
    answers: list[bool] = []
    late = threading.Thread(target=lambda: answers.append(host.run_blocking(run_id, 1)), daemon=True)
    late.start()
    late.join(timeout=30)
    assert not late.is_alive(), "a message received after the stop was never answered"
    assert answers == [False] and sent_back == [(run_id, 1)]
