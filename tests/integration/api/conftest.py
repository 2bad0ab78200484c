"""An API app per test module on SQLite and on PostgreSQL, dispatching to a private Redis db that no
worker consumes (execution is covered by the e2e tests); steps and artifacts are inserted as rows."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.accounts.service import create_api_key, create_organization, organization_for_key
from app.artifacts.store import LocalStore
from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.db.models import Artifact, Run
from app.main import create_app
from app.platform.settings import Settings
from app.runs import ids
from tests.support.services import private_redis, throwaway_postgres


@dataclass
class Api:
    client: TestClient
    settings: Settings
    api_key: str
    organization_id: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"x-api-key": key or self.api_key}

    def submit(self, request: dict[str, Any]) -> Any:  # the TestClient's response (httpx or httpx2)
        return self.client.post("/v1/run/tasks", json=request, headers=self.headers())

    def create(self, **request: Any) -> dict[str, Any]:
        request.setdefault("prompt", "Find the greeting")
        request.setdefault("url", "http://127.0.0.1:9/")
        response = self.submit(request)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def new_key(self, org_name: str = "other") -> str:
        with session_scope(self.settings.database_url) as s:
            return create_api_key(s, create_organization(s, org_name).id)

    def add_artifact(self, run_id: str, artifact_type: str, data: bytes, content_type: str,
                     filename: str | None = None) -> str:
        artifact_id = ids.new_id(ids.ARTIFACT)
        key = f"{self.organization_id}/{run_id}/run/{artifact_type}-{artifact_id}.bin"
        LocalStore(self.settings.data_dir / "artifacts").put(key, data, content_type)
        with session_scope(self.settings.database_url) as s:
            s.add(Artifact(id=artifact_id, organization_id=self.organization_id, run_id=run_id,
                           artifact_type=artifact_type, storage_key=key, content_type=content_type,
                           size=len(data), checksum=hashlib.sha256(data).hexdigest(), filename=filename))
        return artifact_id

    def set_run(self, run_id: str, **fields: Any) -> None:
        """Put a run where execution would have left it (tests only; the runner uses lifecycle)."""
        with session_scope(self.settings.database_url) as s:
            run = s.get(Run, run_id)
            assert run is not None
            for name, value in fields.items():
                setattr(run, name, value)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'wayfarer.db'}"
        return
    with throwaway_postgres() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


def make_settings(data_dir: Path, database_url: str, redis_url: str, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, redis_url=redis_url,
                    secret_key=uuid.uuid4().hex, public_base_url="http://testserver",
                    llm_base_url="http://127.0.0.1:9/v1", webhook_backoff_seconds=0.01,
                    webhook_timeout_seconds=5, **overrides)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str) -> Iterator[Api]:
    key = f"wf_test_{uuid.uuid4().hex}"
    settings = make_settings(tmp_path_factory.mktemp("data"), database_url, redis_url, api_key=key,
                             app_url="http://ui.example")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        with session_scope(database_url) as s:
            organization = organization_for_key(s, key)
            assert organization is not None, "the lifespan seeds WAYFARER_API_KEY"
        yield Api(client, settings, key, organization.id)
