"""A login recorded and replayed under WAYFARER_DEFAULT_RUN_WITH=code: the script keeps the credential's
placeholders, the replay types the real values and the current one-time code with no LLM call, and no
password, authenticator secret or code is in any stored script, file, row, answer or log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from skyvern.client.types import NonEmptyPasswordCredential

from tests.e2e.test_credentials_login import (
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
