"""What a run costs the worker: Playwright's disabled features kept, no omnibox WebUI renderer per run,
no recorder when WAYFARER_RECORD_VIDEO is off."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from tests.sites.server import SiteServer
from tests.support.browser import browser_settings
from workers.agent.browser import BrowserPool
from workers.agent.contract import BrowserOptions
from workers.chromium_args import OMNIBOX_WEBUI_FEATURES, PLAYWRIGHT_DISABLED_FEATURES

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


def _browser_processes() -> dict[int, list[str]]:
    """Chromium browser processes (not their helpers) started under this test process."""
    found = {}
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        cmdline = _cmdline(proc)
        if cmdline and "chrom" in Path(cmdline[0]).name and not any(a.startswith("--type=") for a in cmdline):
            found[proc.pid] = cmdline
    return found


def _cmdline(proc: psutil.Process) -> list[str]:
    """[] for a process that exited (or is an unreaped zombie) since it was listed."""
    try:
        return proc.cmdline()
    except psutil.NoSuchProcess:  # ZombieProcess included
        return []


def _recorders() -> list[psutil.Process]:
    """Live ffmpeg recorders: an earlier test's exited recorder may linger as a zombie until reaped."""
    found = []
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "ffmpeg" in proc.name() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return found


def _disabled_features(cmdline: list[str]) -> set[str]:
    (last,) = [a for a in cmdline if a.startswith("--disable-features=")][-1:]
    return set(last.split("=", 1)[1].split(","))


async def test_the_worker_still_disables_every_feature_playwright_does(pool: BrowserPool) -> None:
    before = set(_browser_processes())
    plain = await (await pool.playwright()).chromium.launch(executable_path="/usr/bin/chromium")
    try:
        (cmdline,) = [c for pid, c in _browser_processes().items() if pid not in before]
        playwright_disables = _disabled_features(cmdline)
    finally:
        await plain.close()
    assert playwright_disables, "Playwright passed no --disable-features"
    missing = playwright_disables - set(PLAYWRIGHT_DISABLED_FEATURES)
    assert not missing, f"Playwright now also disables {missing}: add them to workers/chromium_args.py"


async def test_runs_get_no_omnibox_webui_renderer(pool: BrowserPool, sites: SiteServer,
                                                  tmp_path: Path) -> None:
    runs = [await pool.open_run(f"tsk_{i}", BrowserOptions(), tmp_path / str(i)) for i in range(2)]
    try:
        for run in runs:
            await run.active_page.goto(sites.url("/guestbook.html"))
        (browser_pid,) = [pid for pid, cmdline in _browser_processes().items()
                          if set(OMNIBOX_WEBUI_FEATURES) <= _disabled_features(cmdline)]
        renderers = [cmdline for p in psutil.Process(browser_pid).children(recursive=True)
                     if "--type=renderer" in (cmdline := _cmdline(p))]
        assert len(renderers) >= 2  # a page renderer per run
        assert not [c for c in renderers if "--top-chrome-webui" in c]
        assert _recorders() == []  # runs record through the screencast, in-process: no ffmpeg per run
    finally:
        for run in runs:
            await run.close()


async def test_without_video_recording_a_run_has_no_recorder_and_no_recording(
        sites: SiteServer, tmp_path: Path) -> None:
    settings = browser_settings(tmp_path / "data").model_copy(update={"record_video": False})
    pool = BrowserPool(settings)
    await pool.start()
    try:
        run = await pool.open_run("tsk_novideo", BrowserOptions(), tmp_path / "run")
        await run.active_page.goto(sites.url("/guestbook.html"))
        recorders = _recorders()
        media = await run.close()
    finally:
        await pool.stop()
    assert recorders == [] and media.recording is None
