"""Verified API keys are remembered per process for WAYFARER_API_KEY_CACHE_SECONDS: revocation by another
process applies within that time, unknown keys are never remembered; pooled connections the database
closed are replaced without failing a request."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.accounts.service import add_api_key, create_api_key, create_organization, list_api_keys
from app.db.engine import session_scope
from app.main import create_app
from tests.integration.api.conftest import make_settings

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def cached_client(tmp_path_factory: pytest.TempPathFactory, database_url: str,
                  redis_url: str) -> Iterator[tuple[TestClient, str]]:
    settings = make_settings(tmp_path_factory.mktemp("data"), database_url, redis_url,
                             api_key_cache_seconds=CACHE_SECONDS)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, database_url


def _status(client: TestClient, key: str) -> int:
    return client.get("/v1/runs", headers={"x-api-key": key}).status_code


def test_key_revoked_by_another_process_stops_working_within_the_cache_time(
        cached_client: tuple[TestClient, str]) -> None:
    client, database_url = cached_client
    with session_scope(database_url) as s:
        key = create_api_key(s, create_organization(s, "revoked elsewhere").id)
        (key_id,) = [k.id for k in list_api_keys(s, None) if key.startswith(k.key_prefix)]
    assert _status(client, key) == 200  # verified, and now remembered
    env = {**os.environ, "WAYFARER_DATABASE_URL": database_url}
    subprocess.run([str(Path(sys.executable).with_name("wayfarer")), "keys", "revoke", key_id], env=env,
                   check=True, capture_output=True)
    deadline = time.monotonic() + CACHE_SECONDS + 5
    while _status(client, key) == 200:
        assert time.monotonic() < deadline, "the revoked key still works after the cache time"
        time.sleep(0.1)
    assert _status(client, key) == 403


def test_an_unknown_key_is_not_remembered(cached_client: tuple[TestClient, str]) -> None:
    client, database_url = cached_client
    key = "wf_test_created_after_a_403"
    assert _status(client, key) == 403
    with session_scope(database_url) as s:
        add_api_key(s, create_organization(s, "after a 403").id, key)
    assert _status(client, key) == 200


def test_pooled_connections_the_server_closed_are_replaced(cached_client: tuple[TestClient, str]) -> None:
    client, database_url = cached_client
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL closes connections; SQLite has none to close")
    with session_scope(database_url) as s:
        key = create_api_key(s, create_organization(s, "backends killed").id)
    for _ in range(3):  # fill the pool with connections that were used
        assert _status(client, key) == 200
    database = database_url.rsplit("/", 1)[1]
    admin = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()
    assert killed and killed[0] >= 1
    time.sleep(0.2)  # the FATAL message reaches the pooled sockets
    for path in ("/v1/runs", "/healthz"):
        response = client.get(path, headers={"x-api-key": key})
        assert response.status_code == 200, response.text
