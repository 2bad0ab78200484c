"""proxy_location is honoured or refused, through the official SDK against a real server.

A real local proxy (tests/support/recording_proxy.py) records what passes through it and forwards every
host to the test sites, so a page at http://shop.test/… loads only through it (the test Chromium resolves
no other name): a run or browser session whose location the operator mapped goes out through that proxy,
with the place's locale and time zone; nothing set means a direct connection; a location without a proxy
is a 400 naming WAYFARER_PROXY_LOCATIONS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from skyvern import Skyvern
from skyvern.client.core.api_error import ApiError

from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import SiteServer
from tests.support.recording_proxy import RecordingProxy, recording_proxy
from tests.support.stack import Stack, running_stack

PROXY_USER, PROXY_PASSWORD = "alice", "proxy-pass-7f3a"
WHERE = "http://shop.test/where.html"
DONE = [[{"name": "complete", "args": {"output": None, "summary": "Looked."}}]]


@pytest.fixture(scope="module")
def proxy(sites: SiteServer) -> Iterator[RecordingProxy]:
    with recording_proxy(sites.url("").removeprefix("http://"), (PROXY_USER, PROXY_PASSWORD)) as running:
        yield running


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM,
            proxy: RecordingProxy) -> Iterator[Stack]:
    entry = {"server": proxy.url, "username": PROXY_USER, "password": PROXY_PASSWORD}
    locations = {"RESIDENTIAL_GB": entry, "US-CA": entry}
    with running_stack(tmp_path_factory.mktemp("proxied"), llm_base_url=fake_llm.base_url,
                       extra_env={"WAYFARER_PROXY_LOCATIONS": json.dumps(locations)}) as stack:
        yield stack


def sdk(stack: Stack) -> Skyvern:
    return Skyvern(base_url=stack.base_url, api_key=stack.api_key)


def test_a_run_goes_out_through_the_proxy_mapped_to_its_location(proxied: Stack, proxy: RecordingProxy,
                                                                  fake_llm: FakeLLM, token: str) -> None:
    fake_llm.script(token, DONE)
    fake_llm.script(f"{token}-geo", DONE)

    async def scenario() -> None:
        for prompt, location in ((token, "RESIDENTIAL_GB"), (f"{token}-geo", {"country": "GB"})):
            done = await sdk(proxied).run_task(
                prompt=f"Say where you are ({prompt})", url=f"{WHERE}?{prompt}",
                proxy_location=location,  # type: ignore[arg-type]
                wait_for_completion=True, timeout=120)
            assert done.status == "completed", done.failure_reason

    asyncio.run(scenario())
    for prompt in (token, f"{token}-geo"):
        request = proxy.wait_for(f"{WHERE}?{prompt}")
        assert request.headers["accept-language"].startswith("en-GB")
        page = last_user_text(fake_llm.requests_for(prompt)[0])  # what the browser showed the planner
        assert "Language: en-GB" in page and "Time zone: Europe/London" in page
    assert proxy.refused > 0, "the proxy asked for its credentials and the browser gave them"
    assert PROXY_PASSWORD not in proxied.logs()


def test_nothing_set_is_direct_and_a_location_without_a_proxy_is_refused(
        proxied: Stack, proxy: RecordingProxy, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, DONE)

    async def scenario() -> list[ApiError]:
        skyvern = sdk(proxied)
        direct = await skyvern.run_task(prompt=f"Say where you are ({token})",
                                        url=sites.url(f"/where.html?{token}"),
                                        wait_for_completion=True, timeout=120)  # sends proxy_location: null
        assert direct.status == "completed", direct.failure_reason
        refusals: list[Any] = [
            skyvern.run_task(prompt="x", url=WHERE, proxy_location="RESIDENTIAL_JP"),
            skyvern.run_task(prompt="x", url=WHERE,
                             proxy_location={"url": "http://u:p@elsewhere:3128"}),  # type: ignore[arg-type]
            skyvern.create_browser_session(proxy_location="RESIDENTIAL_JP"),
        ]
        errors = []
        for call in refusals:
            with pytest.raises(ApiError) as refused:
                await call
            errors.append(refused.value)
        return errors

    errors = asyncio.run(scenario())
    assert not [url for url in proxy.urls() if token in url], "a run without proxy_location went direct"
    assert [error.status_code for error in errors] == [400, 400, 400]
    details = [str((error.body or {}).get("detail")) for error in errors]  # type: ignore[union-attr]
    assert all("WAYFARER_PROXY_LOCATIONS" in detail for detail in details), details
    assert "'RESIDENTIAL_JP'" in details[0] and details[1].startswith("proxy_location.url:")


def test_a_browser_session_goes_out_through_its_proxy(proxied: Stack, proxy: RecordingProxy,
                                                      token: str) -> None:
    async def scenario() -> None:
        skyvern = sdk(proxied)
        session = await skyvern.create_browser_session(proxy_location="RESIDENTIAL_GB",
                                                       url=f"{WHERE}?session-{token}")
        try:
            await asyncio.to_thread(proxy.wait_for, f"session-{token}")
            with pytest.raises(ApiError) as refused:  # a run in the session uses the session's browser
                await skyvern.run_task(prompt="x", url=WHERE, browser_session_id=session.browser_session_id,
                                       proxy_location="US-CA")
            assert refused.value.status_code == 400
            assert "RESIDENTIAL_GB" in str(refused.value.body)
        finally:
            await skyvern.close_browser_session(session.browser_session_id)

    asyncio.run(scenario())
