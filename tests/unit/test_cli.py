"""The real `wayfarer` command in a subprocess: version, API keys, bad settings, missing or old databases."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from alembic import command as alembic_command
from alembic.script import ScriptDirectory

from app.db.migrate import alembic_config
from tests.support.services import throwaway_postgres

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
    assert wayfarer(env, "migrate").returncode == 0
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
    assert wayfarer(env, "migrate").returncode == 0
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
    (["migrate"], "WAYFARER_LLM_PRICES", "gpt-4o: 0.15", "JSON object of model -> US dollars"),
    (["serve"], "WAYFARER_LLM_PRICES", '{"gpt-4o": {"prompt": -1, "completion": 1}}', "per million"),
    (["serve"], "WAYFARER_MAX_PROMPT_CHARS", "0", "greater than or equal to 1"),
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


def test_a_bad_proxy_map_names_the_setting_without_its_passwords(env: dict[str, str]) -> None:
    result = wayfarer({**env, "WAYFARER_PROXY_LOCATIONS": '{"MOON": "http://bob:hunter2-pw@h:1"}'}, "serve")
    assert result.returncode != 0
    assert "WAYFARER_PROXY_LOCATIONS=*** is not valid; 'MOON' is not a proxy location" in result.stderr
    assert "hunter2-pw" not in result.stderr


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "create"], ["keys", "revoke", "key_x"]])
def test_commands_on_data_never_create_a_database(env: dict[str, str], command: list[str]) -> None:
    result = wayfarer(env, *command)
    assert result.returncode != 0
    data_dir = Path(env["WAYFARER_DATA_DIR"])
    assert f"no database at {data_dir / 'wayfarer.db'}" in result.stderr
    assert "WAYFARER_DATA_DIR" in result.stderr and "wayfarer migrate" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not data_dir.exists()


def test_commands_on_data_say_which_database_they_use(env: dict[str, str]) -> None:
    migrated = wayfarer(env, "migrate")
    database = Path(env["WAYFARER_DATA_DIR"]) / "wayfarer.db"
    assert migrated.returncode == 0 and str(database) in migrated.stdout
    for command in (["keys", "create"], ["keys", "list"]):
        result = wayfarer(env, *command)
        assert result.returncode == 0, result.stderr
        assert f"using the database sqlite:///{database}" in result.stderr


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@pytest.mark.postgres
def test_a_database_never_migrated_is_explained_not_a_traceback(env: dict[str, str]) -> None:
    with throwaway_postgres() as url:
        with_password = url.replace("postgres@", "postgres:hunter2@")  # trust auth: accepted, not checked
        name = url.rsplit("/", 1)[1]
        settings = {**env, "WAYFARER_DATABASE_URL": with_password, "WAYFARER_SECRET_KEY": "k" * 32,
                    "WAYFARER_REDIS_URL": "redis://127.0.0.1:9/0", "WAYFARER_PUBLIC_BASE_URL": "http://127.0.0.1:9"}
        for command in (["serve", "--port", "9"], ["worker"], ["keys", "list"]):
            result = wayfarer(settings, *command)
            assert result.returncode != 0, command
            assert "Traceback" not in result.stderr, result.stderr
            message = result.stderr
            assert name in message and "hunter2" not in message and "***" in message
            assert "found: none" in message and f"expected: {_head()}" in message
            assert "wayfarer migrate" in message

        assert wayfarer(settings, "migrate").returncode == 0
        assert wayfarer(settings, "keys", "list").returncode == 0

        scripts = ScriptDirectory.from_config(alembic_config(url))
        older = scripts.get_revision(_head()).down_revision
        alembic_command.downgrade(alembic_config(url), "-1")
        result = wayfarer(settings, "serve", "--port", "9")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"at schema revision {older}; this version of Wayfarer needs {_head()}" in result.stderr
