"""One secret key per deployment: processes with another key (or a worker with none) refuse to start,
the first serve of an existing database records the key only if it opens what is stored, and
`wayfarer secret rotate` moves every stored secret to a new key (then used by a real login run)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from skyvern.client.types import NonEmptyPasswordCredential
from sqlalchemy import select, text

from app.db.engine import session_scope
from app.db.migrate import upgrade
from app.platform.secret_key import encrypted_columns
from app.platform.security import decrypt, encrypt
from tests.e2e.flows import FORM_PATH
from tests.e2e.test_credentials_login import LOGIN_SCRIPT, _sdk
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.services import private_redis, throwaway_postgres
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver
from tests.unit.test_cli import WAYFARER

TOTP = "JBSWY3DPEHPK3PXP"


def _wayfarer(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WAYFARER, *args], env=env, capture_output=True, text=True, timeout=120,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          cwd=tempfile.gettempdir())  # no developer's .env


def _refused(result: subprocess.CompletedProcess[str], *keys: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for key in keys:
        assert key not in result.stdout + result.stderr
    return result.stderr


def test_processes_with_another_key_or_a_worker_without_one_refuse_to_start(
        tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    with throwaway_postgres() as pg_url, private_redis() as redis_url, running_stack(
            tmp_path, llm_base_url=fake_llm.base_url, database_url=pg_url, redis_url=redis_url,
            workers=1) as stack:
        fake_llm.script(token, [[{"name": "complete", "args": {"output": {}, "summary": "Looked."}}]])
        run = stack.create_run(prompt=f"Look ({token})", url=sites.url(FORM_PATH))
        assert stack.wait_final(run["run_id"])["status"] == "completed"  # a worker with the same key

        key = stack.env["WAYFARER_SECRET_KEY"]
        other = {**stack.env, "WAYFARER_SECRET_KEY": uuid.uuid4().hex}
        for command in (["worker"], ["serve", "--port", "9"]):
            message = _refused(_wayfarer(other, *command), key, other["WAYFARER_SECRET_KEY"])
            assert "WAYFARER_SECRET_KEY is not this database's secret key" in message, message
            assert "wayfarer secret rotate" in message

        keyless = {k: v for k, v in stack.env.items() if k != "WAYFARER_SECRET_KEY"}
        message = _refused(_wayfarer(keyless, "worker"), key)
        assert "needs WAYFARER_SECRET_KEY" in message


def test_an_existing_database_records_the_key_that_opens_its_secrets(tmp_path: Path) -> None:
    """A database from before fingerprints (revision 0001) that holds a credential."""
    key = uuid.uuid4().hex
    with throwaway_postgres() as url:
        upgrade(url, "0001")
        with session_scope(url) as s:  # as that revision's schema has it (later ones may add columns)
            s.execute(text("INSERT INTO organizations (id, name, created_at, modified_at) "
                           "VALUES ('o_old', 'default', now(), now())"))
            s.execute(text("INSERT INTO credentials (id, organization_id, name, credential_type, public, "
                           "secret_encrypted, created_at, modified_at) VALUES ('cred_old', 'o_old', 'old', "
                           "'secret', '{}', :token, now(), now())"),
                      {"token": encrypt(key, '{"secret_value": "b"}')})
        env = {"PATH": "/usr/bin:/bin", "WAYFARER_DATABASE_URL": url, "WAYFARER_DATA_DIR": str(tmp_path)}
        upgraded = _wayfarer({**env, "WAYFARER_SECRET_KEY": "another-key-" + key}, "migrate")
        assert upgraded.returncode == 0, upgraded.stderr  # the schema is upgraded; the key is not recorded
        assert "cannot open the secrets this database holds (credentials.secret_encrypted)" in upgraded.stderr
        message = _refused(_wayfarer({**env, "WAYFARER_SECRET_KEY": "another-key-" + key}, "serve",
                                     "--port", "9"), key)
        assert "cannot open the secrets" in message

        with running_stack(tmp_path / "stack", llm_base_url=None, database_url=url,
                           extra_env={"WAYFARER_SECRET_KEY": key}) as stack:
            assert httpx.get(f"{stack.base_url}/healthz", timeout=10).status_code == 200
        _refused(_wayfarer({**env, "WAYFARER_SECRET_KEY": "another-key-" + key}, "serve", "--port", "9"), key)


def _plaintexts(database_url: str, key: str) -> dict[tuple[str, str, Any], str]:
    """Every stored secret, decrypted: {(table, column, primary key): plaintext}."""
    found: dict[tuple[str, str, Any], str] = {}
    with session_scope(database_url) as s:
        for table, column in encrypted_columns():
            keys = list(table.primary_key.columns)
            for *row_id, token in s.execute(select(*keys, column).where(column.is_not(None))).all():
                found[(table.name, column.name, tuple(row_id))] = decrypt(key, token)
    return found


def _login(stack: Stack, fake_llm: FakeLLM, sites: SiteServer, credential_id: str) -> dict[str, Any]:
    token = f"rotate-{uuid.uuid4().hex[:8]}"
    fake_llm.script(token, LOGIN_SCRIPT)

    async def login() -> str:
        run = await _sdk(stack).login(credential_type="skyvern", credential_id=credential_id,
                                      url=sites.url("/login.html"), prompt=f"Sign in ({token})")
        return run.run_id

    return stack.wait_final(asyncio.run(login()), timeout=120)


def test_rotate_moves_every_stored_secret_to_the_new_key(tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer,
                                                         receiver: Receiver) -> None:
    old_key, new_key = uuid.uuid4().hex, uuid.uuid4().hex
    with running_stack(tmp_path, llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_SECRET_KEY": old_key}) as stack:
        async def store() -> str:
            stored = await _sdk(stack).create_credential(
                name="site", credential_type="password",
                credential=NonEmptyPasswordCredential(username="ada-rotate", password="pw-rotate", totp=TOTP))
            return stored.credential_id

        credential_id = asyncio.run(store())
        login = _login(stack, fake_llm, sites, credential_id)
        assert login["status"] == "completed", login.get("failure_reason")
        with stack.client() as client:
            profile = client.post("/v1/browser_profiles", json={"name": "after login",
                                                                "workflow_run_id": login["run_id"]})
            assert profile.status_code == 200, profile.text
        hooked = stack.create_run(prompt="Unscripted", url=sites.url(FORM_PATH), webhook_url=receiver.url)
        stack.wait_final(hooked["run_id"])  # it ends terminated and keeps its (encrypted) webhook key
        database_url = f"sqlite:///{Path(stack.env['WAYFARER_DATA_DIR']).resolve() / 'wayfarer.db'}"
        before = _plaintexts(database_url, old_key)
        kinds = {(table, column) for table, column, _ in before}
        assert kinds >= {("credentials", "secret_encrypted"), ("browser_profiles", "storage_state_encrypted"),
                         ("runs", "webhook_key_encrypted"), ("runs", "storage_state_encrypted")}, kinds

        stack.kill("api", signal.SIGTERM)
        wrong = _wayfarer({**stack.env, "WAYFARER_SECRET_KEY": uuid.uuid4().hex}, "secret", "rotate",
                          stdin=new_key)
        assert "not this database's secret key" in _refused(wrong, old_key, new_key)
        rotated = _wayfarer(stack.env, "secret", "rotate", stdin=new_key + "\n")
        assert rotated.returncode == 0, rotated.stderr
        assert "credentials.secret_encrypted: 1 re-encrypted" in rotated.stdout
        assert old_key not in rotated.stdout + rotated.stderr
        assert new_key not in rotated.stdout + rotated.stderr
        assert _plaintexts(database_url, new_key) == before

        _refused(_wayfarer(stack.env, "serve", "--port", "9"), old_key)  # the old key is refused now
        stack.env["WAYFARER_SECRET_KEY"] = new_key
        stack.start_api()
        again = _login(stack, fake_llm, sites, credential_id)  # the worker opens the rotated credential
        assert again["status"] == "completed", again.get("failure_reason")
