"""A login recorded and replayed under WAYFARER_DEFAULT_RUN_WITH=code (a login run, and a workflow's
login block): the script keeps the credential's placeholders, the replay types the real values and the
current one-time code with no LLM call, and no password, authenticator secret or code is in any stored
script, file, row, answer or log."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from skyvern import Skyvern
from skyvern.client.types import NonEmptyPasswordCredential

from tests.e2e.test_credentials_login import (
    LOGIN_SCRIPT,
    PASSWORD,
    TOTP_KEY,
    TOTP_SECRET,
    _assert_secrets_nowhere,
    _login,
    _submitted,
)
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("coded"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_DEFAULT_RUN_WITH": "code"}) as stack:
        yield stack


def test_a_replayed_login_types_secrets_it_never_stored(coded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                        token: str) -> None:
    username = f"ada-{token}"
    credential = NonEmptyPasswordCredential(username=username, password=PASSWORD, totp=TOTP_SECRET)
    first, _ = _login(coded, fake_llm, sites, token, credential)
    calls = len(fake_llm.requests_for(token))
    second, _ = _login(coded, fake_llm, sites, token, credential)  # the same key: replayed
    assert len(fake_llm.requests_for(token)) == calls
    assert second["script_run"]["steps_replayed"] == 5 and second["script_run"]["llm_calls"] == 0
    assert second["script_run"]["script_id"] == first["script_run"]["script_id"]
    assert _submitted(sites, "password", username)["password"] == PASSWORD  # the replay typed it

    database = next(Path(coded.env["WAYFARER_DATA_DIR"]).rglob("*.db"))
    with sqlite3.connect(database) as db:
        files = dict(db.execute("SELECT path, content FROM script_files").fetchall())
    assert "{{credential.password}}" in files["script.json"]
    assert "credential_password: str" in files["main.py"] and "verification_code: str" in files["main.py"]
    code = _submitted(sites, "code", username)["code"]
    for stored in files.values():
        assert PASSWORD not in stored and code not in stored
    # every file of the data dir (the database included) after both runs, the log, the model's requests
    _assert_secrets_nowhere(coded, fake_llm, token, first["run_id"], [PASSWORD, TOTP_SECRET, TOTP_KEY])


def test_a_workflow_login_block_replays_under_the_server_default(coded: Stack, fake_llm: FakeLLM,
                                                                 sites: SiteServer, token: str) -> None:
    """WAYFARER_DEFAULT_RUN_WITH applies to workflows: the login block records, then replays with no LLM
    call; its script keeps the placeholders and names neither the password nor a code."""
    username = f"grace-{token}"
    fake_llm.script(token, LOGIN_SCRIPT)
    definition = {"title": f"Sign in {token}", "workflow_definition": {
        "parameters": [{"key": "account", "workflow_parameter_type": "credential_id"}],
        "blocks": [{"block_type": "login", "label": "sign_in", "url": sites.url("/login.html"),
                    "navigation_goal": f"Sign in ({token})", "parameter_keys": ["account"]}]}}

    async def scenario() -> tuple[Any, Any]:
        skyvern = Skyvern(base_url=coded.base_url, api_key=coded.api_key)
        stored = await skyvern.create_credential(name=f"site {token}", credential_type="password",
                                                 credential=NonEmptyPasswordCredential(
                                                     username=username, password=PASSWORD, totp=TOTP_SECRET))
        workflow = await skyvern.create_workflow(json_definition=definition)  # type: ignore[arg-type]
        runs = []
        for _ in range(2):
            done = await skyvern.run_workflow(workflow.workflow_permanent_id,
                                              parameters={"account": stored.credential_id},
                                              wait_for_completion=True, timeout=180)
            assert done.status == "completed", done.failure_reason
            runs.append(done)
        return runs[0], runs[1]

    calls_before = len(fake_llm.requests_for(token))
    first, second = asyncio.run(scenario())
    assert len(fake_llm.requests_for(token)) == calls_before + len(LOGIN_SCRIPT)  # the second asked nothing
    assert first.script_run is not None and second.script_run is not None
    assert second.script_run.script_id == first.script_run.script_id and first.script_run.script_id
    assert _submitted(sites, "password", username)["password"] == PASSWORD  # the replay typed it
    code = _submitted(sites, "code", username)["code"]

    database = next(Path(coded.env["WAYFARER_DATA_DIR"]).rglob("*.db"))
    with sqlite3.connect(database) as db:
        scripts = db.execute("SELECT id FROM scripts WHERE cache_key LIKE '%/sign_in'").fetchall()
        files = db.execute("SELECT content FROM script_files").fetchall()
    assert scripts
    assert any("{{credential.password}}" in content for (content,) in files)
    for (content,) in files:
        assert PASSWORD not in content and code not in content and TOTP_KEY not in content
