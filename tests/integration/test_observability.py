"""GET /metrics on a real app, log lines as operators get them, and artifact retention on LocalStore."""

from __future__ import annotations

import contextvars
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.accounts.service import create_organization
from app.artifacts.retention import delete_expired_artifacts
from app.artifacts.store import LocalStore
from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Artifact, utcnow
from app.main import create_app
from app.platform.observability import bind_run, bind_step, configure_logging, record_webhook_attempt
from app.platform.settings import Settings
from app.runs import ids
from tests.support.services import private_redis
from workers.sweeper import start_sweeper

SECRET_API_KEY = f"wf_test_{uuid.uuid4().hex}"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path, "database_url": f"sqlite:///{tmp_path / 'wayfarer.db'}",
        "secret_key": uuid.uuid4().hex, "llm_base_url": "http://127.0.0.1:9/v1", **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# --- /metrics -------------------------------------------------------------------------------------

@pytest.fixture
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


def test_metrics_count_runs_by_status_and_the_queue(tmp_path: Path, redis_url: str) -> None:
    settings = _settings(tmp_path, redis_url=redis_url, api_key=SECRET_API_KEY)  # no worker consumes
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            created = client.post("/v1/run/tasks", json={"prompt": "Find it", "url": "http://127.0.0.1:9/"},
                                  headers={"x-api-key": SECRET_API_KEY})
            assert created.status_code == 200, created.text
        response = client.get("/metrics")  # no API key: scraped like /healthz

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("wayfarer_runs", (("status", "queued"),))] == 2
    assert samples[("wayfarer_runs", (("status", "completed"),))] == 0
    assert samples[("wayfarer_queue_depth", ())] == 2
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"wayfarer_step_duration_seconds", "wayfarer_llm_tokens", "wayfarer_llm_calls",
            "wayfarer_webhook_attempts", "wayfarer_browser_contexts_open"} <= families


def test_webhook_attempts_are_counted_by_outcome() -> None:
    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("wayfarer_webhook_attempts_total", {"outcome": outcome}) or 0.0

    before = {outcome: count(outcome) for outcome in ("delivered", "retryable", "rejected")}
    for status in (204, None, 503, 429, 404):
        record_webhook_attempt(status)
    assert count("delivered") - before["delivered"] == 1
    assert count("retryable") - before["retryable"] == 3
    assert count("rejected") - before["rejected"] == 1


# --- logs -----------------------------------------------------------------------------------------

@pytest.fixture
def captured_log(request: pytest.FixtureRequest) -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    settings: Settings = request.param
    handler = configure_logging(settings, stream)
    try:
        yield stream, handler
    finally:
        logging.getLogger().removeHandler(handler)


def _log_a_run_step() -> None:
    log = logging.getLogger("wayfarer.test")
    log.info("before any run")
    bind_run("tsk_1", "o_1")
    log.debug("not shown at INFO")
    log.info("opened the page")
    bind_step(3)
    log.warning("clicked with key %s", SECRET_API_KEY)
    try:
        raise ValueError(f"boom {SECRET_API_KEY}")
    except ValueError:
        log.exception("step failed")


JSON = _settings(Path("/nonexistent"), log_format="json", api_key=SECRET_API_KEY)
PRODUCTION = _settings(Path("/nonexistent"), production=True, api_key=SECRET_API_KEY)
TEXT = _settings(Path("/nonexistent"), log_format="text", log_level="DEBUG", api_key=SECRET_API_KEY)


@pytest.mark.parametrize("captured_log", [JSON, PRODUCTION], indirect=True, ids=["json", "production"])
def test_json_lines_carry_the_run_context_and_no_secret(captured_log: tuple[io.StringIO, Any]) -> None:
    stream, _ = captured_log
    contextvars.copy_context().run(_log_a_run_step)  # the runner binds inside each run's own task
    logging.getLogger("wayfarer.test").info("after the run")

    text = stream.getvalue()
    assert SECRET_API_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["message"] for line in lines] == [
        "before any run", "opened the page", "clicked with key ***", "step failed", "after the run"]
    first, opened, clicked, failed, after = lines
    assert "run_id" not in first and "run_id" not in after
    assert opened["run_id"] == "tsk_1" and opened["organization_id"] == "o_1" and "step" not in opened
    assert clicked["step"] == 3 and clicked["level"] == "warning" and clicked["logger"] == "wayfarer.test"
    assert failed["level"] == "error" and "ValueError: boom ***" in failed["exception"]
    assert all(line["ts"].endswith("+00:00") for line in lines)


@pytest.mark.parametrize("captured_log", [TEXT], indirect=True, ids=["text"])
def test_text_lines_for_people_with_the_level_from_settings(captured_log: tuple[io.StringIO, Any]) -> None:
    stream, _ = captured_log
    contextvars.copy_context().run(_log_a_run_step)
    text = stream.getvalue()
    assert SECRET_API_KEY not in text
    assert "not shown at INFO" in text  # WAYFARER_LOG_LEVEL=DEBUG
    assert "wayfarer.test [run_id=tsk_1 step=3 organization_id=o_1]: clicked with key ***" in text


def test_log_format_defaults_to_json_in_production() -> None:
    assert PRODUCTION.resolved_log_format() == "json"
    assert _settings(Path("/nonexistent")).resolved_log_format() == "text"


# --- retention ------------------------------------------------------------------------------------

def _artifact(settings: Settings, store: LocalStore, organization_id: str, age: timedelta,
              as_directory: bool = False, expires_in: timedelta | None = None) -> tuple[str, str]:
    """An artifact row and its stored object; as_directory makes the store fail to delete it;
    expires_in sets its own expiry (an upload's retention_days)."""
    artifact_id = ids.new_id(ids.ARTIFACT)
    key = f"{organization_id}/tsk_1/run/screenshot_final-{artifact_id}.jpg"
    if as_directory:
        (store.root / key).mkdir(parents=True)
    else:
        store.put(key, b"jpeg", "image/jpeg")
    with session_scope(settings.database_url) as s:
        s.add(Artifact(id=artifact_id, organization_id=organization_id, run_id=None,
                       artifact_type="screenshot_final", storage_key=key, content_type="image/jpeg", size=4,
                       checksum=hashlib.sha256(b"jpeg").hexdigest(), created_at=utcnow() - age,
                       expires_at=utcnow() + expires_in if expires_in is not None else None))
    return artifact_id, key


def _artifact_ids(settings: Settings) -> set[str]:
    with session_scope(settings.database_url) as s:
        return set(s.scalars(select(Artifact.id)).all())


@pytest.fixture
def retention(tmp_path: Path) -> tuple[Settings, LocalStore, str]:
    settings = _settings(tmp_path, artifact_retention_days=7, sweep_interval_seconds=0.1)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as s:
        organization_id = create_organization(s, "retention").id
    return settings, LocalStore(tmp_path / "artifacts"), organization_id


def test_retention_deletes_old_artifacts_store_first(retention: tuple[Settings, LocalStore, str]) -> None:
    settings, store, org = retention
    old = [_artifact(settings, store, org, timedelta(days=8 + n)) for n in range(3)]
    stuck_id, stuck_key = _artifact(settings, store, org, timedelta(days=30), as_directory=True)
    fresh_id, fresh_key = _artifact(settings, store, org, timedelta(days=6))

    assert delete_expired_artifacts(settings, store) == 3
    assert _artifact_ids(settings) == {stuck_id, fresh_id}  # the store refused: its row stays
    assert not any((store.root / key).exists() for _, key in old)
    assert (store.root / stuck_key).is_dir() and store.get(fresh_key) == b"jpeg"

    (store.root / stuck_key).rmdir()  # the store recovers; the next sweep finishes the job
    assert delete_expired_artifacts(settings, store) == 1
    assert _artifact_ids(settings) == {fresh_id}


def test_retention_is_off_by_default(retention: tuple[Settings, LocalStore, str]) -> None:
    settings, store, org = retention
    artifact_id, _ = _artifact(settings, store, org, timedelta(days=3650))
    assert delete_expired_artifacts(settings.model_copy(update={"artifact_retention_days": 0}), store) == 0
    assert _artifact_ids(settings) == {artifact_id}


def test_an_upload_past_its_own_retention_days_is_deleted_even_with_retention_off(
        retention: tuple[Settings, LocalStore, str]) -> None:
    settings, store, org = retention
    settings = settings.model_copy(update={"artifact_retention_days": 0})
    expired_id, expired_key = _artifact(settings, store, org, timedelta(days=2),
                                        expires_in=-timedelta(hours=1))
    kept_id, _ = _artifact(settings, store, org, timedelta(days=2), expires_in=timedelta(hours=1))
    assert delete_expired_artifacts(settings, store) == 1
    assert _artifact_ids(settings) == {kept_id} and expired_id not in _artifact_ids(settings)
    assert not (store.root / expired_key).exists()


def test_the_sweeper_runs_retention(retention: tuple[Settings, LocalStore, str]) -> None:
    settings, store, org = retention
    _, key = _artifact(settings, store, org, timedelta(days=8))
    stop = start_sweeper(settings, lambda run_id: None, lambda session_id: None)
    try:
        deadline = time.monotonic() + 20
        while _artifact_ids(settings) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
    assert _artifact_ids(settings) == set()
    assert not (store.root / key).exists()
