"""Login runs with a stored credential through the official SDK: 2FA from the stored authenticator secret
and from a pushed code; the secret values appear nowhere we store or answer (artifacts, rows, logs, API)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from skyvern import Skyvern
from skyvern.client.core.api_error import ApiError
from skyvern.client.types import NonEmptyPasswordCredential

from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack

PASSWORD = "Tr0ub4dor-and-3-horses"
# 80 bits written as most sites show it (16 characters in groups), in lower case as a user may type it.
TOTP_KEY = base64.b32encode(secrets.token_bytes(10)).decode()
TOTP_SECRET = " ".join(TOTP_KEY[i:i + 4] for i in range(0, 16, 4)).lower()


class _Totp80(pyotp.TOTP):
    min_secret_length_bits = 80  # the oracle; pyotp >= 2.12 refuses 80-bit secrets by default


def call(name: str, role: str, label: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": {"ref": {"role": role, "name": label}, **args}}


# The password is typed in one step and submitted in the next, so a snapshot (and the planner request
# built from it) is taken while the filled password field is on the page.
LOGIN_SCRIPT = [
    [call("input_text", "textbox", "Username", text="{{credential.username}}"),
     call("input_text", "textbox", "Password", text="{{credential.password}}")],
    [call("click", "button", "Log in")],
    [call("verification_code", "textbox", "Verification code"), call("click", "button", "Verify")],
    [{"name": "complete", "args": {"output": {"logged_in": True}, "summary": "Logged in."}}],
]


def _sdk(stack: Stack) -> Skyvern:
    """A fresh async client per asyncio.run: its connection pool belongs to one event loop."""
    return Skyvern(base_url=stack.base_url, api_key=stack.api_key)


def _login(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str,
           credential: NonEmptyPasswordCredential, push: str | None = None) -> tuple[dict[str, Any], str]:
    """Store the credential, maybe push a code, log in through the SDK; returns the run and credential id."""
    fake_llm.script(token, LOGIN_SCRIPT)

    async def scenario() -> tuple[str, str]:
        skyvern = _sdk(embedded)
        stored = await skyvern.create_credential(name=f"site {token}", credential_type="password",
                                                 credential=credential)
        assert stored.credential_id.startswith("cred_")
        assert (await skyvern.get_credential(stored.credential_id)).name == f"site {token}"
        assert stored.credential_id in [c.credential_id for c in await skyvern.get_credentials(page_size=100)]
        if push:
            await skyvern.send_totp_code(totp_identifier=credential.totp_identifier or "", content=push)
        run = await skyvern.login(credential_type="skyvern", credential_id=stored.credential_id,
                                  url=sites.url("/login.html"), prompt=f"Sign in ({token})")
        assert run.run_id.startswith("wr_")
        return run.run_id, stored.credential_id

    run_id, credential_id = asyncio.run(scenario())
    run = embedded.wait_final(run_id, timeout=120)
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["run_type"] == "workflow_run" and run["output"] == {"logged_in": True}
    return run, credential_id


def _submitted(sites: SiteServer, path_field: str, username: str) -> dict[str, str]:
    return [s for s in sites.submissions if s.get("username") == username and path_field in s][-1]


def test_login_with_the_stored_authenticator_secret(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                    token: str) -> None:
    username = f"ada-{token}"
    run, credential_id = _login(embedded, fake_llm, sites, token, NonEmptyPasswordCredential(
        username=username, password=PASSWORD, totp=TOTP_SECRET))
    assert _submitted(sites, "password", username)["password"] == PASSWORD  # the real value was typed
    code = _submitted(sites, "code", username)["code"]
    assert _Totp80(TOTP_KEY).verify(code, valid_window=1)

    fetched = asyncio.run(_sdk(embedded).get_run(run["run_id"]))
    assert fetched.run_type == "workflow_run" and fetched.status == "completed"
    _assert_secrets_nowhere(embedded, fake_llm, token, run["run_id"], [PASSWORD, TOTP_SECRET, TOTP_KEY])

    asyncio.run(_sdk(embedded).delete_credential(credential_id))
    with embedded.client() as client:
        assert client.get(f"/v1/credentials/{credential_id}").status_code == 404


def test_authenticator_secrets_of_80_bits_are_stored_and_shorter_ones_refused(embedded: Stack) -> None:
    async def create(totp: str) -> str:
        stored = await _sdk(embedded).create_credential(
            name="2fa", credential_type="password",
            credential=NonEmptyPasswordCredential(username="ada", password=PASSWORD, totp=totp))
        return stored.credential_id

    for common in ("JBSWY3DPEHPK3PXP", "jbsw y3dp ehpk 3pxp", "otpauth://totp/Site:ada?secret=JBSWY3DPEHPK3PXP"):
        assert asyncio.run(create(common)).startswith("cred_")
    with pytest.raises(ApiError) as refused:
        asyncio.run(create("JBSWY3DPEHPK"))  # 12 characters: 60 bits
    assert refused.value.status_code == 400
    assert "credential.totp" in str(refused.value.body) and "at least 80" in str(refused.value.body)


def test_login_with_a_pushed_code(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    username = f"grace-{token}"
    run, _ = _login(embedded, fake_llm, sites, token, NonEmptyPasswordCredential(
        username=username, password=PASSWORD, totp_identifier=f"{username}@example.com", totp_type="email"),
        push="Your sign-in code is 246810. It expires in 10 minutes.")
    assert _submitted(sites, "code", username)["code"] == "246810"
    _assert_secrets_nowhere(embedded, fake_llm, token, run["run_id"], [PASSWORD])


def _assert_secrets_nowhere(stack: Stack, fake_llm: FakeLLM, token: str, run_id: str,
                            secrets: list[str]) -> None:
    """Search every stored artifact, every file in the data dir (database included), the server log,
    the API's answers and what the model was sent for each secret value."""
    places: dict[str, str] = {}
    with stack.client() as client:
        for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/timeline", f"/v1/runs/{run_id}/artifacts",
                     "/v1/credentials?page_size=100", f"/api/v1/tasks/{run_id}"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            places[path] = response.text
        artifacts = client.get(f"/v1/runs/{run_id}/artifacts").json()
        kinds = {a["artifact_type"] for a in artifacts}
        assert {"visible_elements_tree", "llm_request", "html_scrape"} <= kinds
        for artifact in artifacts:
            content = httpx.get(artifact["signed_url"], timeout=10).content.decode("latin-1")
            places[f"{artifact['artifact_type']} {artifact['artifact_id']}"] = content
        timeline = client.get(f"/v1/runs/{run_id}/timeline").json()
    typed = [action["text"] for entry in timeline if entry["type"] == "block"
             for action in entry["block"]["actions"] if action["action_type"] == "input_text"]
    assert "{{credential.password}}" in typed  # what is recorded is the placeholder
    data_dir = Path(stack.env["WAYFARER_DATA_DIR"])
    for file in [*data_dir.rglob("*"), *stack.log_dir.glob("*.log")]:
        if file.is_file():
            places[str(file)] = file.read_bytes().decode("latin-1")
    places["llm requests"] = json.dumps(fake_llm.requests_for(token))
    assert fake_llm.requests_for(token), "the model was asked"
    for secret in secrets:
        leaks = [where for where, text in places.items() if secret in text]
        assert not leaks, f"secret found in {leaks}"
