"""`wayfarer run` and `wayfarer keys` against a real `wayfarer serve` (embedded), real Chromium, fake LLM."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.platform.settings import Settings
from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.browser

WAYFARER = str(Path(sys.executable).with_name("wayfarer"))
SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}




@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("cli"), llm_base_url=fake_llm.base_url) as running:
        yield running


def wayfarer(stack: Stack, *args: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "WAYFARER_BASE_URL": stack.base_url, "WAYFARER_API_KEY": api_key or stack.api_key}
    return subprocess.run([WAYFARER, *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=stack.log_dir)


def _token() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def test_run_wait_shows_progress_and_prints_the_output(stack: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                        tmp_path: Path) -> None:
    token = _token()
    signed, report = form_script()
    fake_llm.script(token, [signed, [{"name": "wait", "args": {"seconds": 1}}], report])  # a poll sees it
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    result = wayfarer(stack, "run", f"Sign the guest book as Ada ({token})", "--url", sites.url(FORM_PATH),
                      "--schema", str(schema), "--max-steps", "5", "--wait", "--poll-interval", "0.2")
    assert result.returncode == 0, result.stderr + stack.logs()
    assert json.loads(result.stdout) == GREETING
    progress = result.stderr.splitlines()
    assert progress[0].startswith("run tsk_")
    assert progress[-1].startswith("completed · step ")
    assert any("· click" in line or "· input_text" in line for line in progress), progress

    run_id = progress[0].split()[1]
    with stack.client() as client:
        run = client.get(f"/v1/runs/{run_id}").json()
    assert run["run_request"]["data_extraction_schema"] == SCHEMA
    assert run["run_request"]["max_steps"] == 5


def test_run_that_does_not_complete_exits_non_zero(stack: Stack, fake_llm: FakeLLM,
                                                   sites: SiteServer) -> None:
    token = _token()
    fake_llm.script(token, [[{"name": "terminate", "args": {"reason": "the form is closed"}}]])
    result = wayfarer(stack, "run", f"Sign the guest book ({token})", "--url", sites.url(FORM_PATH), "--wait",
                      "--poll-interval", "0.2")
    assert result.returncode == 1, result.stderr
    assert "terminated" in result.stderr.splitlines()[-1]
    assert "the form is closed" in result.stderr


def test_run_without_wait_prints_the_created_run(stack: Stack, sites: SiteServer) -> None:
    result = wayfarer(stack, "run", f"Look around ({_token()})", "--url", sites.url(FORM_PATH))
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["run_id"].startswith("tsk_")
    assert created["status"] in {"created", "queued", "running"}
    stack.wait_final(created["run_id"])


def test_run_with_a_wrong_key_fails_clearly(stack: Stack, sites: SiteServer) -> None:
    result = wayfarer(stack, "run", "x", "--url", sites.url(FORM_PATH), api_key="wf_not_a_key")
    assert result.returncode == 1
    assert "403" in result.stderr


def test_keys_made_by_the_cli_open_the_api_until_revoked(stack: Stack) -> None:
    created = wayfarer(stack, "keys", "create", "--org", "cli-team")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert httpx.get(f"{stack.base_url}/v1/runs", headers={"x-api-key": key}, timeout=10).status_code == 200

    listing = wayfarer(stack, "keys", "list").stdout.splitlines()
    (key_id,) = [line.split()[0] for line in listing if key[:12] in line]
    assert wayfarer(stack, "keys", "revoke", key_id).returncode == 0
    # the server remembers a verified key for WAYFARER_API_KEY_CACHE_SECONDS; the CLI is another process
    deadline = time.monotonic() + Settings().api_key_cache_seconds + 5
    while (status := httpx.get(f"{stack.base_url}/v1/runs", headers={"x-api-key": key},
                               timeout=10).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 403
