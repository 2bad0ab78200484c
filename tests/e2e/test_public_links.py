"""Links a server hands out point where it listens (issue 12.3): `wayfarer serve --port X` without
WAYFARER_PUBLIC_BASE_URL builds them on the address each client used, forwarded headers trusted only from
WAYFARER_FORWARDED_ALLOW_IPS, and links made outside a request (webhooks) on its own host and port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def unset_base(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("links"), llm_base_url=fake_llm.base_url,
                       public_base_url=False) as stack:
        yield stack


def _links(run: dict[str, object]) -> list[str]:
    shots = run["screenshot_urls"]
    assert isinstance(shots, list) and shots and isinstance(run["recording_url"], str)
    return [str(run["app_url"]), run["recording_url"], *map(str, shots)]


def _fetch(link: str) -> int:
    """The status a link ends at (a run's page sends a visitor without a cookie to the sign-in page)."""
    return httpx.get(link, timeout=10, follow_redirects=True).status_code


def test_links_follow_the_address_the_client_used_and_webhooks_the_serve_port(
        unset_base: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str) -> None:
    fake_llm.script(token, form_script())
    created = unset_base.create_run(prompt=f"Sign the guest book ({token})", url=sites.url(FORM_PATH),
                                    webhook_url=receiver.url)
    run = unset_base.wait_final(created["run_id"])
    assert run["status"] == "completed" and run["output"] == GREETING, run["failure_reason"]
    port = unset_base.base_url.rsplit(":", 1)[1]

    (hook,) = receiver.wait_for(1)  # made outside any request: on serve's own host and port
    for link in _links(json.loads(hook.body)):
        assert link.startswith(f"http://127.0.0.1:{port}/"), link
        assert _fetch(link) == 200, link

    headers = {"x-api-key": unset_base.api_key}
    by_name = httpx.get(f"http://localhost:{port}/v1/runs/{run['run_id']}", headers=headers).json()
    for link in _links(by_name):
        assert link.startswith(f"http://localhost:{port}/"), link
        assert _fetch(link) == 200, link

    # A proxy on 127.0.0.1 (trusted by default) that terminated TLS says so
    proxied = httpx.get(f"{unset_base.base_url}/v1/runs/{run['run_id']}",
                        headers={**headers, "x-forwarded-proto": "https", "host": "wayfarer.example"}).json()
    assert all(link.startswith("https://wayfarer.example/") for link in _links(proxied)), proxied


def test_browser_address_is_on_the_port_the_server_listens_on(unset_base: Stack) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=unset_base.base_url,
                                     headers={"x-api-key": unset_base.api_key}) as client:
            session = (await client.post("/v1/browser_sessions", json={})).json()
            address = session["browser_address"]
            assert address == (f"{unset_base.base_url.replace('http://', 'ws://')}"
                               f"/v1/browser_sessions/{session['browser_session_id']}/cdp")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.connect_over_cdp(
                    address, headers={"x-api-key": unset_base.api_key})
                assert browser.contexts
                await browser.close()
            await client.post(f"/v1/browser_sessions/{session['browser_session_id']}/close")

    asyncio.run(scenario())


def test_forwarded_headers_from_an_untrusted_address_are_ignored(tmp_path: Path) -> None:
    with running_stack(tmp_path, llm_base_url=None, public_base_url=False,
                       extra_env={"WAYFARER_FORWARDED_ALLOW_IPS": "192.0.2.1"}) as stack:
        created = httpx.post(f"{stack.base_url}/v1/run/tasks", json={"prompt": "anything"},
                             headers={"x-api-key": stack.api_key, "x-forwarded-proto": "https"}).json()
        assert created["app_url"] == f"{stack.base_url}/runs/{created['run_id']}"


@pytest.mark.parametrize("command", [["serve", "--port", "8791"], ["worker"]])
def test_with_redis_and_no_public_base_url_nothing_starts(command: list[str], tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "WAYFARER_REDIS_URL": "redis://127.0.0.1:6399/0",
           "WAYFARER_SECRET_KEY": "a-secret-key-for-this-test", "WAYFARER_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(Path(sys.executable).with_name("wayfarer")), *command], env=env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert "WAYFARER_PUBLIC_BASE_URL must be set when WAYFARER_REDIS_URL is" in result.stderr
