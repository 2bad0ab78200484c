"""The real `wayfarer` command in a subprocess: version, and API keys on a fresh embedded SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

WAYFARER = str(Path(sys.executable).with_name("wayfarer"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WAYFARER_", "OPENAI_"))}
    # the embedded default: SQLite in a data dir that does not exist yet
    return {**clean, "WAYFARER_DATA_DIR": str(tmp_path / "data")}


def wayfarer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # run outside the repo so a developer's .env cannot leak into the test
    return subprocess.run([WAYFARER, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=Path(env["WAYFARER_DATA_DIR"]).parent)


def _listing(env: dict[str, str]) -> dict[str, list[str]]:
    result = wayfarer(env, "keys", "list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "ORGANIZATION", "KEY", "CREATED", "STATE"]
    return {row.split()[0]: row.split() for row in rows}


def test_version(env: dict[str, str]) -> None:
    result = wayfarer(env, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wayfarer {version('wayfarer')}"


def test_keys_create_list_revoke(env: dict[str, str]) -> None:
    assert _listing(env) == {}

    created = wayfarer(env, "keys", "create", "--org", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert len(key) >= 32 and "\n" not in key  # stdout holds the key alone, for scripts
    assert "acme" in created.stderr and "not shown again" in created.stderr

    second = wayfarer(env, "keys", "create", "--org", "acme").stdout.strip()
    other = wayfarer(env, "keys", "create").stdout.strip()
    assert len({key, second, other}) == 3

    keys = _listing(env)
    assert len(keys) == 3
    assert key not in wayfarer(env, "keys", "list").stdout  # a listing never shows a whole key
    assert [row[-1] for row in keys.values()] == ["active"] * 3
    organizations = {row[1] for row in keys.values()}
    assert len(organizations) == 2  # both acme keys in one organization, the default one apart

    key_id = next(iter(keys))
    revoked = wayfarer(env, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    states = {kid: row[-1] for kid, row in _listing(env).items()}
    assert states[key_id] == "revoked"
    assert sorted(states.values()) == ["active", "active", "revoked"]


def test_revoking_an_unknown_key_fails_clearly(env: dict[str, str]) -> None:
    result = wayfarer(env, "keys", "revoke", "key_does_not_exist")
    assert result.returncode != 0
    assert "key_does_not_exist" in result.stderr


def test_worker_without_redis_explains_what_is_missing(env: dict[str, str]) -> None:
    result = wayfarer(env, "worker")
    assert result.returncode != 0
    assert "WAYFARER_REDIS_URL" in result.stderr


def test_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert wayfarer(env).returncode == 2
    assert wayfarer(env, "run", "a prompt").returncode == 2  # --url is required


@pytest.mark.parametrize(("command", "variable", "value", "allowed"), [
    (["serve"], "WAYFARER_HEADLESS", "maybe", "true or false"),
    (["worker"], "WAYFARER_MAX_CONCURRENT_RUNS", "four", "whole number"),
    (["migrate"], "WAYFARER_ARTIFACT_STORE", "gcs", "'local' or 's3'"),
    (["keys", "list"], "WAYFARER_CHROMIUM_ARGS", "--lang=de", "JSON list"),
    (["serve"], "WAYFARER_URL_POLICY", "nowhere", "allow:<CIDR>"),
])
def test_a_bad_setting_is_one_line_naming_variable_value_and_what_is_allowed(
        env: dict[str, str], command: list[str], variable: str, value: str, allowed: str) -> None:
    result = wayfarer({**env, variable: value}, *command)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert variable in result.stderr and repr(value) in result.stderr and allowed in result.stderr
    assert not Path(env["WAYFARER_DATA_DIR"]).exists()  # stopped before touching anything


def test_a_bad_secret_setting_does_not_print_its_value(env: dict[str, str]) -> None:
    result = wayfarer({**env, "WAYFARER_API_KEY_CACHE_SECONDS": "-5", "WAYFARER_SECRET_KEY": "s3cr3t-value"},
                      "serve")
    assert result.returncode != 0 and "WAYFARER_API_KEY_CACHE_SECONDS='-5'" in result.stderr
    assert "s3cr3t-value" not in result.stderr
