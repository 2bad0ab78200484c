"""Runs that start from what the user has: a browser profile saved from an earlier run, their own
Chromium (browser_address over CDP), files uploaded with POST /v1/upload_file (file_ids)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from skyvern import Skyvern

from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM, last_user_text, message_text
from tests.sites.server import SiteServer
from tests.support.stack import TEST_CHROMIUM_ARGS, Stack

PROFILE_PATH = "/profile.html"
T = TypeVar("T")


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def with_sdk(stack: Stack, work: Callable[[Skyvern], Awaitable[T]]) -> T:
    """One SDK call on a fresh client (its async HTTP client belongs to one event loop)."""
    return asyncio.run(work(Skyvern(base_url=stack.base_url, api_key=stack.api_key)))


def test_a_profile_saved_from_a_run_restores_its_cookie_and_local_storage(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    remembered = f"remembered-{token}"
    fake_llm.script(token, [
        [call("input_text", ref={"role": "textbox", "name": "Remember"}, text=remembered),
         call("click", ref={"role": "button", "name": "Remember me"})],
        [call("download_file", ref={"role": "link", "name": "Download report"})],
        [call("complete", output=None, summary="remembered")],
    ])
    with embedded.client() as client:
        started = client.post("/v1/run/tasks/download_files", json={
            "navigation_goal": f"Remember me ({token})", "url": sites.url(PROFILE_PATH)}).json()
    first = embedded.wait_final(started["run_id"])
    assert first["status"] == "completed", first.get("failure_reason")

    profile = with_sdk(embedded, lambda sdk: sdk.create_browser_profile(name=f"shop {token}",
                                                                        workflow_run_id=first["run_id"]))
    profile_id = profile.browser_profile_id
    assert profile_id.startswith("bp_")
    assert with_sdk(embedded, lambda sdk: sdk.get_browser_profile(profile_id)).name == f"shop {token}"
    updated = with_sdk(embedded, lambda sdk: sdk.update_browser_profile(profile_id, description="logged in"))
    assert updated.description == "logged in" and updated.name == f"shop {token}"
    listed = with_sdk(embedded, lambda sdk: sdk.list_browser_profiles(search_key=token))
    assert [p.browser_profile_id for p in listed] == [profile_id]

    restored_key = f"{token}-restored"
    fake_llm.script(restored_key, [[call("complete", output=None, summary="seen")]])
    restored = embedded.create_run(prompt=f"Read the profile ({restored_key})", url=sites.url(PROFILE_PATH),
                                   browser_profile_id=profile_id)
    run = embedded.wait_final(restored["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["browser_profile_id"] == profile_id
    page = last_user_text(fake_llm.requests_for(restored_key)[0])
    assert f"cookie: {remembered}" in page and f"storage: {remembered}" in page

    database = Path(embedded.env["WAYFARER_DATA_DIR"]) / "wayfarer.db"
    with sqlite3.connect(database) as db:
        blobs = [row[0] for row in db.execute("SELECT storage_state_encrypted FROM browser_profiles "
                                              "UNION ALL SELECT storage_state_encrypted FROM runs")]
    assert any(blobs) and not any(remembered in (blob or "") for blob in blobs)

    with_sdk(embedded, lambda sdk: sdk.delete_browser_profile(profile_id))
    with embedded.client() as client:
        gone = client.post("/v1/run/tasks", json={"prompt": "x",
                                                  "browser_profile_id": profile_id})
    assert gone.status_code == 404 and "browser_profile_id" in gone.json()["detail"]


@pytest.fixture
def own_chromium(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Chromium the test runs itself, as a user would, with DevTools on a free port."""
    user_data = tmp_path / "own-chromium"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    proc = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--no-first-run",
                             "--remote-debugging-port=0", f"--user-data-dir={user_data}", *TEST_CHROMIUM_ARGS,
                             "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    port_file = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + 20
    while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, "Chromium did not open DevTools"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port_file.read_text().splitlines()[0]}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_run_drives_the_users_own_browser_and_leaves_it_running(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str,
        own_chromium: tuple[str, subprocess.Popen[bytes]]) -> None:
    address, proc = own_chromium
    secret = f"cdp-secret-{token}"
    fake_llm.script(token, form_script())
    created = embedded.create_run(prompt=f"Sign the guest book as Ada ({token})", url=sites.url(FORM_PATH),
                                  browser_address=address, cdp_connect_headers={"x-cdp-token": secret})
    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["output"] == GREETING
    assert run["run_request"]["cdp_connect_headers"] == {"x-cdp-token": "********"}
    assert secret not in embedded.logs()

    assert proc.poll() is None  # the user's browser still runs, with the run's page open in it
    tabs = httpx.get(f"{address}/json/list", timeout=5).json()
    assert any(tab["url"].startswith(sites.url("/submit")) for tab in tabs), tabs


def test_files_named_by_file_ids_are_offered_to_the_model_and_attached(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    text = f"file for {token}"
    uploaded = with_sdk(embedded, lambda sdk: sdk.upload_file(file=text))
    assert uploaded.file_id
    fake_llm.script(token, [
        [call("upload_file", ref={"role": "button", "name": "Attach a file"}, file_url=uploaded.file_id)],
        [call("complete", output=None, summary="attached")],
    ])
    created = embedded.create_run(prompt=f"Attach the file ({token})", url=sites.url("/upload.html"),
                                  file_ids=[uploaded.file_id])
    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    first, second = fake_llm.requests_for(token)[:2]
    assert f"- {uploaded.file_id}: upload.txt" in message_text(first)
    assert f"hidden-file: upload.txt ({len(text)} bytes) {text}" in last_user_text(second)
