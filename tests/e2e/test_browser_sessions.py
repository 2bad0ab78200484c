"""Persistent browser sessions (`pbs_`) through the official SDK on the real embedded stack: runs that
share one browser, one at a time; close, timeout and extend; other organizations; the CDP relay."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from skyvern import Skyvern
from sqlalchemy import select, update

from app.accounts.service import create_api_key, create_organization
from app.db.engine import session_scope
from app.db.models import BrowserSession, utcnow
from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import SiteServer
from tests.support.stack import Stack, running_stack

SESSION_PAGE = "/session.html"
REMEMBER = [[{"name": "click", "args": {"ref": {"role": "button", "name": "Remember me"}}}],
            [{"name": "complete", "args": {"output": {"remembered": True}, "summary": "Remembered."}}]]
DONE = [[{"name": "complete", "args": {"output": {"ok": True}, "summary": "Looked."}}]]


def _waits(seconds: int) -> list[Any]:
    return [[{"name": "wait", "args": {"seconds": 1}}] for _ in range(seconds)] + DONE


def sqlite_url(stack: Stack) -> str:
    return f"sqlite:///{(Path(stack.env['WAYFARER_DATA_DIR']) / 'wayfarer.db').resolve()}"


def chromium_pids(session_id: str) -> list[int]:
    """The processes of the session's own browser (its user data dir is named after the session)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"wayfarer-{session_id}-".encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {value!r})")
        time.sleep(0.2)


def session_json(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/browser_sessions/{session_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_running(client: httpx.Client, session_id: str) -> dict[str, Any]:
    return dict(wait_until(lambda: (s := session_json(client, session_id))["status"] == "running" and s,
                           what=f"{session_id} running"))


def test_session_reused_by_three_runs(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                      token: str) -> None:
    """The second run finds the first run's cookie and local storage; the third starts on the page the
    second left open (it has no url)."""
    for index, script in ((1, REMEMBER), (2, DONE), (3, DONE)):
        fake_llm.script(f"{token}-{index}", script)

    async def scenario() -> str:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        session = await skyvern.create_browser_session()
        session_id = session.browser_session_id
        assert session_id.startswith("pbs_") and session.timeout == 60
        assert session.browser_address == embedded.base_url.replace("http://", "ws://") + \
            f"/v1/browser_sessions/{session_id}/cdp"
        for index, url in ((1, sites.url(SESSION_PAGE)), (2, sites.url(SESSION_PAGE)), (3, None)):
            run = await skyvern.run_task(prompt=f"Visit the page ({token}-{index})", url=url,
                                         browser_session_id=session_id)
            assert run.browser_session_id == session_id
            final = await asyncio.to_thread(embedded.wait_final, run.run_id)  # the SDK polls every 10 s
            assert final["status"] == "completed", final["failure_reason"]
        assert session_id in [s.browser_session_id for s in await skyvern.get_browser_sessions()]
        fetched = await skyvern.get_browser_session(session_id)
        assert fetched.status == "running" and fetched.runnable_id is None and fetched.started_at
        return session_id

    asyncio.run(scenario())
    first = last_user_text(fake_llm.requests_for(f"{token}-1")[0])
    second = last_user_text(fake_llm.requests_for(f"{token}-2")[0])
    third = last_user_text(fake_llm.requests_for(f"{token}-3")[0])
    assert "remembered" not in first and "ada" not in first
    assert "remembered" in second and "ada" in second  # a fresh load of the page read them back
    assert sites.url(SESSION_PAGE) in third and "remembered" in third


def test_concurrent_runs_in_one_session_take_turns(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                   token: str) -> None:
    fake_llm.script(f"{token}-a", _waits(2))
    fake_llm.script(f"{token}-b", _waits(2))
    with embedded.client() as client:
        session_id = client.post("/v1/browser_sessions", json={"url": sites.url(SESSION_PAGE)}).json()[
            "browser_session_id"]
        first = embedded.create_run(prompt=f"Wait ({token}-a)", browser_session_id=session_id)
        second = embedded.create_run(prompt=f"Wait ({token}-b)", browser_session_id=session_id)
        wait_until(lambda: client.get(f"/v1/runs/{first['run_id']}").json()["status"] == "running",
                   what="first run running")
        assert client.get(f"/v1/runs/{second['run_id']}").json()["status"] == "queued"
        assert session_json(client, session_id)["runnable_id"] == first["run_id"]
        done_first = embedded.wait_final(first["run_id"])
        done_second = embedded.wait_final(second["run_id"])
    assert done_first["status"] == done_second["status"] == "completed"
    assert done_second["started_at"] >= done_first["finished_at"]
    order = [body for body in fake_llm.requests if token in str(body)]
    tags = ["a" if f"{token}-a" in str(body) else "b" for body in order]
    assert tags == sorted(tags), tags  # every planner call of the first run came before the second's


def test_close_cancels_its_runs_and_frees_the_browser(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                      token: str) -> None:
    fake_llm.script(f"{token}-busy", _waits(60))
    with embedded.client() as client:
        session_id = client.post("/v1/browser_sessions", content=b"",
                                 headers={"content-type": "application/json"}).json()["browser_session_id"]
        wait_running(client, session_id)
        assert chromium_pids(session_id), "the session has its own Chromium"
        busy = embedded.create_run(prompt=f"Stay busy ({token}-busy)", url=sites.url(SESSION_PAGE),
                                   browser_session_id=session_id)
        waiting = embedded.create_run(prompt=f"Wait ({token}-waiting)", browser_session_id=session_id)
        wait_until(lambda: client.get(f"/v1/runs/{busy['run_id']}").json()["status"] == "running")

        closed = client.post(f"/v1/browser_sessions/{session_id}/close")
        assert closed.status_code == 200 and closed.json() == {"message": "Browser session closed"}
        for run in (busy, waiting):
            final = embedded.wait_final(run["run_id"])
            assert final["status"] == "canceled"
            assert f"browser session {session_id} was closed" in final["failure_reason"]
        wait_until(lambda: not chromium_pids(session_id), timeout=20, what="session Chromium gone")
        ended = wait_until(lambda: (s := session_json(client, session_id))["recordings"] and s,
                           what="session recording stored")
        assert ended["status"] == "completed" and ended["completed_at"] and ended["browser_address"] is None
        assert ended["recordings"][0]["url"].startswith(embedded.base_url)
        assert session_id not in [s["browser_session_id"] for s in client.get("/v1/browser_sessions").json()]

        refused = client.post("/v1/run/tasks", json={"prompt": "x", "browser_session_id": session_id})
        assert refused.status_code == 400 and "has ended (status completed)" in refused.json()["detail"]
        assert client.post(f"/v1/browser_sessions/{session_id}/close").status_code == 200  # idempotent
        late = client.patch(f"/v1/browser_sessions/{session_id}", json={"generate_browser_profile": True})
        assert late.status_code == 409 and "has ended" in late.json()["detail"], late.text


def test_timeout_extend_and_validation(embedded: Stack, fake_llm: FakeLLM, token: str) -> None:
    fake_llm.script(f"{token}-busy", _waits(60))

    async def sdk_calls() -> str:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        session = await skyvern.create_browser_session(timeout=30)
        extended = await skyvern.extend_browser_session(session.browser_session_id, additional_minutes=15)
        assert extended.timeout == 45
        updated = await skyvern.update_browser_session(session.browser_session_id,
                                                       generate_browser_profile=True)
        assert updated.generate_browser_profile is True
        return session.browser_session_id

    session_id = asyncio.run(sdk_calls())
    with embedded.client() as client:
        capped = client.post("/v1/browser_sessions", json={"timeout": 300}).json()
        assert capped["timeout"] == 240 and "240" in capped["warning"]
        client.post(f"/v1/browser_sessions/{capped['browser_session_id']}/close")
        too_short = client.post("/v1/browser_sessions", json={"timeout": 4})
        assert too_short.status_code == 422 and "timeout" in too_short.text
        for field, value in (("browser_type", "netscape"), ("extensions", ["adblock"])):  # outside the enums
            refused = client.post("/v1/browser_sessions", json={field: value})
            assert refused.status_code == 422 and field in refused.json()["detail"][0]["loc"], refused.text
        over = client.post(f"/v1/browser_sessions/{session_id}/extend", json={"additional_minutes": 400})
        assert over.status_code == 400 and "additional_minutes" in over.json()["detail"]

        running = wait_running(client, session_id)
        with session_scope(sqlite_url(embedded)) as s:
            expires = s.scalar(select(BrowserSession.expires_at).where(BrowserSession.id == session_id))
            assert expires is not None and timedelta(minutes=44) < expires - utcnow() <= timedelta(minutes=45)
        busy = embedded.create_run(prompt=f"Stay busy ({token}-busy)", browser_session_id=session_id)
        wait_until(lambda: client.get(f"/v1/runs/{busy['run_id']}").json()["status"] == "running")
        with session_scope(sqlite_url(embedded)) as s:  # as if its 45 minutes had passed
            s.execute(update(BrowserSession).where(BrowserSession.id == session_id)
                      .values(expires_at=utcnow() - timedelta(seconds=1)))
        final = embedded.wait_final(busy["run_id"], timeout=30)
        assert final["status"] == "failed" and "timed out" in final["failure_reason"]
        ended = session_json(client, session_id)
        assert ended["status"] == "timeout" and ended["started_at"] == running["started_at"]
        wait_until(lambda: not chromium_pids(session_id), timeout=20, what="session Chromium gone")


def test_other_organization_and_unknown_sessions_are_not_found(embedded: Stack) -> None:
    with session_scope(sqlite_url(embedded)) as s:
        other_key = create_api_key(s, create_organization(s, "session-outsider").id)
    with embedded.client() as client:
        session_id = client.post("/v1/browser_sessions", json={}).json()["browser_session_id"]
        with httpx.Client(base_url=embedded.base_url, headers={"x-api-key": other_key}) as outsider:
            for method, path, body in (("GET", "", None), ("PATCH", "", {"generate_browser_profile": True}),
                                       ("POST", "/extend", {"additional_minutes": 5}),
                                       ("POST", "/close", None)):
                response = outsider.request(method, f"/v1/browser_sessions/{session_id}{path}", json=body)
                assert response.status_code == 404, (method, path, response.text)
            assert session_id not in outsider.get("/v1/browser_sessions").text
            run = outsider.post("/v1/run/tasks", json={"prompt": "x", "browser_session_id": session_id})
            assert run.status_code == 404 and "browser_session_id" in run.json()["detail"]
        assert client.get("/v1/browser_sessions/pbs_1").status_code == 404
        assert session_json(client, session_id)["status"] in ("created", "running")  # untouched
        client.post(f"/v1/browser_sessions/{session_id}/close")


def test_cdp_connection_like_launch_cloud_browser(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                  token: str) -> None:
    """What the SDK's launch_cloud_browser() does: create a session, then connect_over_cdp to its
    browser_address with the API key header; without it (or with another org's key) the handshake fails."""
    fake_llm.script(token, REMEMBER)
    with session_scope(sqlite_url(embedded)) as s:
        other_key = create_api_key(s, create_organization(s, "cdp-outsider").id)

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        session = await skyvern.create_browser_session(url=sites.url(SESSION_PAGE))
        assert session.browser_address is not None
        async with async_playwright() as playwright:
            browser = await playwright.chromium.connect_over_cdp(session.browser_address,
                                                                 headers={"x-api-key": embedded.api_key})
            cdp = await browser.new_browser_cdp_session()  # as the SDK hands downloads back
            await cdp.send("Browser.setDownloadBehavior", {"behavior": "default", "eventsEnabled": True})
            page = browser.contexts[0].pages[0]
            assert await page.title() == "Session page"
            run = await skyvern.run_task(prompt=f"Remember me ({token})",
                                         browser_session_id=session.browser_session_id)
            final = await asyncio.to_thread(embedded.wait_final, run.run_id)
            assert final["status"] == "completed", final["failure_reason"]
            cookies = await browser.contexts[0].cookies()
            assert {"name": "wayfarer_visitor", "value": "ada"}.items() <= cookies[0].items()
            assert await page.evaluate("localStorage.getItem('wayfarer_note')") == "remembered"
            await browser.close()  # disconnects; the session's browser stays
            for headers in ({}, {"x-api-key": other_key}):
                with pytest.raises(PlaywrightError, match="403"):
                    await playwright.chromium.connect_over_cdp(session.browser_address, headers=headers,
                                                               timeout=10_000)
        assert (await skyvern.get_browser_session(session.browser_session_id)).status == "running"
        await skyvern.close_browser_session(session.browser_session_id)

    asyncio.run(scenario())


def test_profile_saved_when_a_session_ends_and_restored_into_a_new_one(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(f"{token}-save", REMEMBER)
    fake_llm.script(f"{token}-restore", DONE)

    async def scenario() -> None:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        first = await skyvern.create_browser_session(generate_browser_profile=True)
        run = await skyvern.run_task(prompt=f"Remember me ({token}-save)", url=sites.url(SESSION_PAGE),
                                     browser_session_id=first.browser_session_id)
        assert (await asyncio.to_thread(embedded.wait_final, run.run_id))["status"] == "completed"
        await skyvern.close_browser_session(first.browser_session_id)

        async def saved_profile() -> Any:
            for _ in range(100):  # the holder saves the state while it releases the browser
                try:
                    return await skyvern.create_browser_profile(name=f"shop {token}",
                                                                browser_session_id=first.browser_session_id)
                except Exception:
                    await asyncio.sleep(0.2)
            raise AssertionError("no browser profile was saved from the session")

        profile = await saved_profile()
        second = await skyvern.create_browser_session(browser_profile_id=profile.browser_profile_id)
        assert second.browser_profile_id == profile.browser_profile_id
        run = await skyvern.run_task(prompt=f"Look ({token}-restore)", url=sites.url(SESSION_PAGE),
                                     browser_session_id=second.browser_session_id)
        assert (await asyncio.to_thread(embedded.wait_final, run.run_id))["status"] == "completed"
        await skyvern.close_browser_session(second.browser_session_id)

    asyncio.run(scenario())
    restored = last_user_text(fake_llm.requests_for(f"{token}-restore")[0])
    assert "ada" in restored and "remembered" in restored
    with embedded.client() as client:
        missing = client.post("/v1/browser_sessions", json={"browser_profile_id": "bp_1"})
        assert missing.status_code == 404 and "browser_profile_id" in missing.json()["detail"]


@pytest.mark.parametrize("cdp_host", ["127.0.0.2", "auto"])
def test_cdp_relay_reaches_a_worker_advertising_another_address(tmp_path: Path, sites: SiteServer,
                                                                cdp_host: str) -> None:
    """WAYFARER_SESSION_CDP_HOST: the worker forwards a port on that address (`auto`: the one its host
    name resolves to, as in a compose container) to its browser's DevTools (Chromium itself listens on
    127.0.0.1 only), and the API relays to it."""
    advertised = socket.gethostbyname(socket.gethostname()) if cdp_host == "auto" else cdp_host
    with running_stack(tmp_path, llm_base_url=None,
                       extra_env={"WAYFARER_SESSION_CDP_HOST": cdp_host}) as stack:
        with stack.client() as client:
            session_id = client.post("/v1/browser_sessions", json={"url": sites.url(SESSION_PAGE)}).json()[
                "browser_session_id"]
            running = wait_running(client, session_id)
        with session_scope(sqlite_url(stack)) as s:
            cdp_url = s.scalar(select(BrowserSession.cdp_url).where(BrowserSession.id == session_id))
        assert cdp_url is not None and cdp_url.startswith(f"ws://{advertised}:")

        async def title() -> str:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.connect_over_cdp(running["browser_address"],
                                                                     headers={"x-api-key": stack.api_key})
                text = await browser.contexts[0].pages[0].title()
                await browser.close()
                return text

        assert asyncio.run(title()) == "Session page"


def test_runs_reach_the_session_whichever_serve_process_accepted_them(
        tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    """Embedded with `serve --workers 2`: one process holds the session; runs the other process accepted
    are picked up by the holder (within its watchdog's second), not after the sweeper's requeue."""
    with running_stack(tmp_path, llm_base_url=fake_llm.base_url, serve_workers=2) as stack, \
            stack.client() as client:
        session_id = client.post("/v1/browser_sessions", json={"url": sites.url(SESSION_PAGE)}).json()[
            "browser_session_id"]
        wait_running(client, session_id)
        run_ids = []
        for n in range(4):  # fresh connections: spread over both processes
            fake_llm.script(f"{token}-{n}", DONE)
            with stack.client() as fresh:
                run_ids.append(fresh.post("/v1/run/tasks", json={
                    "prompt": f"Look ({token}-{n})", "browser_session_id": session_id}).json()["run_id"])
        finals = [stack.wait_final(run_id, timeout=40) for run_id in run_ids]
        assert [run["status"] for run in finals] == ["completed"] * 4, finals
        client.post(f"/v1/browser_sessions/{session_id}/close")
