"""Uploads through the official SDK used by a run, a download_files task, and the legacy task routes."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
from skyvern import Skyvern

from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import DOWNLOAD_BYTES, SiteServer
from tests.support.stack import Stack

UPLOADED_TEXT = "uploaded through the SDK"


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def test_sdk_upload_is_used_by_a_run_and_deleted(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                 token: str) -> None:
    skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
    uploaded = asyncio.run(skyvern.upload_file(file=UPLOADED_TEXT))  # the SDK sends a text field
    assert uploaded.file_id and uploaded.file_id.startswith("file_")
    fake_llm.script(token, [
        [call("upload_file", ref={"role": "button", "name": "Attach a file"},
              file_url=uploaded.presigned_url)],
        [call("complete", output={"attached": True}, summary="attached")],
    ])
    created = embedded.create_run(prompt=f"Attach the file ({token})", url=sites.url("/upload.html"))
    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    seen = last_user_text(fake_llm.requests_for(token)[1])
    assert f"hidden-file: upload.txt ({len(UPLOADED_TEXT)} bytes) {UPLOADED_TEXT}" in seen

    with embedded.client() as client:
        assert client.delete(f"/v1/files/{uploaded.file_id}").status_code == 204
    assert httpx.get(uploaded.presigned_url, timeout=10).status_code == 404


def test_download_files_task_reports_the_downloaded_file(embedded: Stack, fake_llm: FakeLLM,
                                                         sites: SiteServer, token: str) -> None:
    fake_llm.script(token, [
        [call("download_file", ref={"role": "link", "name": "Download report"})],
        [call("complete", output={"downloaded": "report.csv"}, summary="downloaded")],
    ])

    async def start() -> str:
        skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
        started = await skyvern.download_files(navigation_goal=f"Download the report ({token})",
                                               url=sites.url("/download.html"), max_steps_per_run=4,
                                               download_timeout=20, download_suffix="march")
        return started.run_id

    run_id = asyncio.run(start())
    assert run_id.startswith("wr_")
    run = embedded.wait_final(run_id)
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["run_type"] == "workflow_run" and run["run_request"]["max_steps"] == 4
    (download,) = run["downloaded_files"]
    assert download["filename"] == "report_march.csv"  # download_suffix ends the stored name
    assert download["checksum"] == hashlib.sha256(DOWNLOAD_BYTES).hexdigest()
    assert httpx.get(download["url"], timeout=10).content == DOWNLOAD_BYTES

    fake_llm.script(f"{token}-nothing", [[call("complete", output={"downloaded": None}, summary="nothing")]])
    with embedded.client() as client:
        empty = client.post("/v1/run/tasks/download_files", json={
            "navigation_goal": f"Download it ({token}-nothing)", "url": sites.url("/download.html")}).json()
    failed = embedded.wait_final(empty["run_id"])
    assert failed["status"] == "failed" and "no file was downloaded" in failed["failure_reason"]


def test_download_timeout_bounds_how_long_a_started_download_may_take(
        embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, [
        [call("download_file", ref={"role": "link", "name": "Download slow report"})],
        [call("complete", output=None, summary="tried")],
    ])
    with embedded.client() as client:
        started = client.post("/v1/run/tasks/download_files", json={
            "navigation_goal": f"Download the slow report ({token})", "url": sites.url("/slow-download.html"),
            "download_timeout": 1}).json()
    run = embedded.wait_final(started["run_id"])
    assert run["status"] == "failed" and "no file was downloaded" in run["failure_reason"]
    assert run["downloaded_files"] == []
    history = last_user_text(fake_llm.requests_for(token)[1])
    assert "the download started but did not finish within 1 s (download_timeout)" in history


def test_legacy_task_routes_run_the_same_runs(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                              token: str) -> None:
    fake_llm.script(token, form_script())
    with embedded.client() as client:
        response = client.post("/api/v1/tasks", headers={"x-max-steps-override": "5"}, json={
            "url": sites.url(FORM_PATH), "navigation_goal": f"Sign the guest book ({token})",
            "data_extraction_goal": "the greeting", "navigation_payload": {"name": "Ada"},
            "extracted_information_schema": {"type": "object", "required": ["greeting"]}})
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        run = embedded.wait_final(task_id)
        assert run["status"] == "completed", run.get("failure_reason")
        deadline = time.monotonic() + 10
        while (legacy := client.get(f"/api/v1/tasks/{task_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        listed = client.get("/api/v1/tasks", params={"page_size": 100}).json()
    assert legacy["extracted_information"] == GREETING and legacy["max_steps_per_run"] == 5
    assert legacy["screenshot_url"] and legacy["recording_url"] and legacy["action_screenshot_urls"]
    assert legacy["request"]["url"] == sites.url(FORM_PATH)
    assert task_id in {item["task_id"] for item in listed}
