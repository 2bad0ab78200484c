"""The whole spine on the embedded default: one `wayfarer serve` process, real Chromium, fake LLM."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

from tests.e2e.flows import FORM_PATH, GREETING, form_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.stack import Stack
from tests.support.webhook_receiver import Receiver

SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}


def test_run_completes_with_output_artifacts_and_signed_webhook(
    embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver, token: str
) -> None:
    fake_llm.script(token, form_script())
    created = embedded.create_run(prompt=f"Sign the guest book as Ada ({token})", url=sites.url(FORM_PATH),
                                  data_extraction_schema=SCHEMA, webhook_url=receiver.url)
    assert created["run_id"].startswith("tsk_")
    assert created["status"] in {"created", "queued"}

    run = embedded.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    assert run["output"] == GREETING
    assert run["step_count"] >= 2
    assert run["run_type"] == "task_v1"

    # every URL handed out is fetchable by a plain client, without the API key
    assert run["screenshot_urls"], run
    for url in run["screenshot_urls"]:
        shot = httpx.get(url, timeout=10)
        assert shot.status_code == 200 and shot.content[:2] == b"\xff\xd8"  # JPEG
    video = httpx.get(run["recording_url"], timeout=10)
    assert video.status_code == 200 and video.content[:4] == b"\x1a\x45\xdf\xa3"  # WebM/EBML
    tampered = run["recording_url"].replace("signature=", "signature=0")
    assert httpx.get(tampered, timeout=10).status_code == 403

    (hook,) = receiver.wait_for(1)
    expected = hmac.new(embedded.api_key.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-skyvern-signature"] == expected
    assert hook.headers["x-skyvern-timestamp"].isdigit()
    payload = json.loads(hook.body)
    assert payload["run_id"] == payload["task_id"] == created["run_id"]
    assert payload["status"] == "completed"
    assert payload["output"] == GREETING

    with embedded.client() as client:
        kinds = {a["artifact_type"] for a in client.get(f"/v1/runs/{created['run_id']}/artifacts").json()}
        timeline = client.get(f"/v1/runs/{created['run_id']}/timeline").json()
    assert {"screenshot_llm", "screenshot_action", "visible_elements_tree", "llm_request", "llm_response",
            "recording", "screenshot_final", "html_scrape"} <= kinds
    assert timeline and all({"type", "created_at", "modified_at"} <= item.keys() for item in timeline)
    _report_timing(run, timeline)


def _report_timing(run: dict[str, Any], timeline: list[dict[str, Any]]) -> None:
    """Print (never assert) where the run's wall time went: queueing, LLM, our harness."""
    def at(field: str) -> datetime:
        return datetime.fromisoformat(run[field])

    steps = [child["thought"] for entry in timeline for child in entry["children"]
             if child["thought"]["thought_type"] == "plan"]
    step_ms = sum((datetime.fromisoformat(step["modified_at"]) - datetime.fromisoformat(step["created_at"]))
                  .total_seconds() * 1000 for step in steps)
    wall_ms = (at("finished_at") - at("created_at")).total_seconds() * 1000
    queued_ms = (at("started_at") - at("created_at")).total_seconds() * 1000
    print(f"\nrun wall {wall_ms:.0f} ms: queued->started {queued_ms:.0f} ms, {len(steps)} steps taking "
          f"{step_ms:.0f} ms, rest (browser open/close, final artifacts, recording) "
          f"{wall_ms - step_ms:.0f} ms")
