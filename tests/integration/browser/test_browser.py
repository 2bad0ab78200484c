"""BrowserPool/BrowserRun: recording, downloads, console, per-run options, isolation, crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.integration.browser.conftest import CodeOnlyStore, Driver
from tests.sites.server import DOWNLOAD_BYTES, SiteServer
from workers.agent.browser import BrowserPool
from workers.agent.contract import BrowserOptions, ToolCall
from workers.agent.page_state import capture
from workers.agent.tools import ToolContext, apply

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_recording_download_and_console_come_back_from_close(driver: Driver) -> None:
    await driver.open("/download.html")
    await driver.run.active_page.evaluate("console.log('hello from the page')")
    result = await driver.act("download_file", ref=driver.ref("link", "Download report"))
    assert result.succeeded, result.outcome
    assert result.outcome == (f"download_file link 'Download report' -> downloaded 'report.csv' "
                              f"({len(DOWNLOAD_BYTES)} bytes)")
    media = await driver.run.close()
    assert [path.name for path in media.downloads] == ["report.csv"]
    assert media.downloads[0].read_bytes() == DOWNLOAD_BYTES
    assert media.downloads[0].parent == driver.run.workdir / "downloads"
    assert media.recording is not None and media.recording.suffix == ".webm"
    assert media.recording.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a real WebM
    assert "[log] hello from the page" in media.console_log
    assert (await driver.run.close()).recording is None  # closing twice is harmless


async def test_clicking_something_that_downloads_nothing_is_a_clear_failure(driver: Driver) -> None:
    await driver.open("/guestbook.html")
    result = await driver.act("download_file", ref=driver.ref("textbox", "Name"))
    assert not result.succeeded and "started no download" in result.outcome


async def test_run_options_reach_the_page(pool: BrowserPool, sites: SiteServer, tmp_path: Path) -> None:
    options = BrowserOptions(viewport_width=800, viewport_height=600, locale="de-DE",
                             timezone_id="Asia/Tokyo", user_agent="WayfarerTest/1.0",
                             extra_http_headers={"X-Run": "abc"})
    run = await pool.open_run("tsk_options", options, tmp_path)
    try:
        page = run.active_page
        await page.goto(sites.url("/headers"))
        headers = json.loads(await page.locator("body").inner_text())
        assert headers["User-Agent"] == "WayfarerTest/1.0" and headers["X-Run"] == "abc"
        assert headers["Accept-Language"].startswith("de-DE")
        seen = await page.evaluate("[innerWidth, innerHeight, navigator.language, "
                                   "Intl.DateTimeFormat().resolvedOptions().timeZone]")
        assert seen == [800, 600, "de-DE", "Asia/Tokyo"]
    finally:
        await run.close()


async def test_contexts_are_isolated_between_runs(
    pool: BrowserPool, sites: SiteServer, tmp_path: Path
) -> None:
    first = await pool.open_run("tsk_a", BrowserOptions(), tmp_path / "a")
    await first.active_page.goto(sites.url("/guestbook.html"))
    await first.active_page.evaluate("document.cookie = 'session=first; path=/'; localStorage.x = '1'")
    assert await first.context.cookies()
    await first.close()
    second = await pool.open_run("tsk_b", BrowserOptions(), tmp_path / "b")
    try:
        await second.active_page.goto(sites.url("/guestbook.html"))
        assert await second.active_page.evaluate("[document.cookie, localStorage.x ?? null]") == ["", None]
        assert await second.context.cookies() == []
    finally:
        await second.close()


async def test_killed_browser_marks_the_run_crashed_and_the_next_run_relaunches(
    pool: BrowserPool, sites: SiteServer, tmp_path: Path
) -> None:
    run = await pool.open_run("tsk_crash", BrowserOptions(), tmp_path / "crash")
    await run.active_page.goto(sites.url("/guestbook.html"))
    browsers = chromium_browser_pids()
    assert browsers, "no Chromium browser process found among this process's descendants"
    for pid in browsers:
        os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(15):
        while not run.crashed:
            await asyncio.sleep(0.05)
    assert run.crash_reason
    failed = await apply(ToolContext(run, CodeOnlyStore()), ToolCall("goto_url", {"url": sites.url("/")}))
    assert not failed.succeeded and "browser is gone" in failed.outcome
    state = await capture(run, screenshot=True)  # what the planner would see: no exception
    assert state.screenshot is None and "could not be read" in state.snapshot
    media = await run.close()  # must not raise
    assert media.downloads == []

    again = await pool.open_run("tsk_after", BrowserOptions(), tmp_path / "after")
    try:
        await again.active_page.goto(sites.url("/guestbook.html"))
        assert await again.active_page.title() == "Guest book" and not again.crashed
    finally:
        await again.close()


def chromium_browser_pids() -> list[int]:
    """Chromium browser processes (not its helpers) started under this test process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine = {os.getpid()}
    changed = True
    while changed:
        before = len(mine)
        mine |= {pid for pid, parent in parents.items() if parent in mine}
        changed = len(mine) != before
    pids = []
    for pid in mine - {os.getpid()}:
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"chromium" in argv[0] and not any(arg.startswith(b"--type=") for arg in argv):
            pids.append(pid)
    return pids
