"""run_with "code" end to end through the official SDK: the first run records a script, the next replays
it with no LLM call (the fake server's request count), a perturbed page heals with one call and is
rewritten as a new version, the scripts API lists, shows, deploys, downloads and clears, and the
downloaded file does the task on its own with Debian's Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from skyvern import Skyvern

from tests.fakes.fake_llm import FakeLLM
from tests.integration.agent.test_replay import ORDER, ORDER_SCRIPT
from tests.sites.server import SiteServer
from tests.support.spec import assert_matches_spec
from tests.support.stack import Stack, running_stack

SCHEMA = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
CONFIRM = [[{"name": "click", "args": {"ref": {"role": "button", "name": "Confirm"}}}]]


def test_record_replay_heal_and_the_scripts_api(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                token: str, tmp_path: Path) -> None:
    fake_llm.script(token, ORDER_SCRIPT)
    skyvern = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)
    code = {"additional_body_parameters": {"run_with": "code", "cache_key": f"order-{token}"}}

    async def run(path: str) -> Any:
        done = await skyvern.run_task(prompt=f"Order a large insured parcel for Ada ({token})",
                                      url=sites.url(path), data_extraction_schema=SCHEMA,
                                      wait_for_completion=True, timeout=120, request_options=code)
        assert done.status == "completed", done.failure_reason
        assert done.output == {"greeting": "Thanks, Ada!"}
        return done

    async def scenario() -> str:
        first = await run(ORDER)
        recorded = first.script_run
        assert recorded is not None and recorded.script_id and not recorded.ai_fallback_triggered
        calls = len(fake_llm.requests_for(token))
        assert calls == 2

        second = await run(ORDER)
        assert len(fake_llm.requests_for(token)) == calls  # the replay asked the model nothing
        assert second.script_run.script_id == recorded.script_id
        assert second.script_run.script_revision_id == recorded.script_revision_id
        with embedded.client() as client:
            shown = client.get(f"/v1/runs/{second.run_id}").json()
            assert_matches_spec("TaskRunResponse", shown)
            raw = shown["script_run"]
            timeline = client.get(f"/v1/runs/{second.run_id}/timeline").json()
        assert (raw["steps_replayed"], raw["steps_healed"], raw["llm_calls"]) == (4, 0, 0)
        assert raw["tokens_saved_estimate"] > 0
        marks = {child["thought"]["output"]["replay"] for entry in timeline for child in entry["children"]
                 if child["thought"]["thought_type"] == "plan"}
        assert marks == {"replayed"}

        fake_llm.script(token, CONFIRM)  # the button moved and was renamed: one call heals it
        healed = await run("/replay-order-moved.html")
        assert len(fake_llm.requests_for(token)) == calls + 1
        assert healed.script_run.ai_fallback_triggered
        assert healed.script_run.script_revision_id != recorded.script_revision_id
        again = await run("/replay-order-moved.html")
        assert len(fake_llm.requests_for(token)) == calls + 1  # the rewritten version needs no call
        assert again.script_run.script_revision_id == healed.script_run.script_revision_id

        listed = await skyvern.get_scripts(page=1, page_size=100)
        assert recorded.script_id in [script.script_id for script in listed]
        script = await skyvern.get_script(recorded.script_id)
        assert (script.version, script.run_id) == (2, healed.run_id)
        deployed = await skyvern.deploy_script(recorded.script_id, files=[
            {"path": "README.md", "content": base64.b64encode(b"An order.").decode(), "encoding": "base64"}])
        assert (deployed.version, deployed.file_count) == (3, 3)
        assert set(deployed.file_tree) == {"README.md", "main.py", "script.json"}
        return str(recorded.script_id)

    script_id = asyncio.run(scenario())
    with embedded.client() as client:
        detail = client.get(f"/v1/scripts/{script_id}").json()
        assert_matches_spec("Script", detail)
        assert_matches_spec("Script", client.get("/v1/scripts").json())
        assert_matches_spec("CreateScriptResponse", client.post(f"/v1/scripts/{script_id}/deploy", json={
            "files": [{"path": "README.md", "content": "An order, v4.", "encoding": "utf-8"}]}).json())
        assert [v["version"] for v in detail["versions"]] == [1, 2, 3]  # as read before the deploy above
        assert {f["path"] for f in detail["files"]} == {"README.md", "main.py", "script.json"}
        download = client.get(f"/v1/scripts/{detail['script_id']}/download", params={"version": 1})
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/x-python")
        exported = tmp_path / "main.py"
        exported.write_text(download.text)
        chromium = shutil.which("chromium")
        assert chromium is not None
        before = len(sites.submissions)
        done = subprocess.run([sys.executable, str(exported), "--chromium", chromium,
                               "--url", sites.url(ORDER), "--name", "Grace"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        submitted = sites.wait_for_submission(before + 1)[-1]
        assert submitted == {"name": "Grace", "size": "Large", "insured": "yes"}

        edited = json.loads(next(f["content"] for f in detail["files"] if f["path"] == "script.json"))
        edited["steps"][0]["args"]["text"], edited["output"]["greeting"] = "Lin", "Thanks, Lin!"
        refused = client.post(f"/v1/scripts/{script_id}/deploy", json={"files": [
            {"path": "script.json", "content": "{\"steps\": []}", "encoding": "utf-8"}]})
        assert refused.status_code == 400 and "script.json" in refused.json()["detail"]
        assert client.post(f"/v1/scripts/{script_id}/deploy", json={"files": [
            {"path": "script.json", "content": json.dumps(edited), "encoding": "utf-8"}]}).status_code == 200

    calls = len(fake_llm.requests_for(token))
    fresh = Skyvern(base_url=embedded.base_url, api_key=embedded.api_key)  # its pool is per event loop
    edited_run = asyncio.run(fresh.run_task(
        prompt=f"Order a large insured parcel for Ada ({token})", url=sites.url("/replay-order-moved.html"),
        data_extraction_schema=SCHEMA, wait_for_completion=True, timeout=120, request_options=code))
    assert edited_run.status == "completed" and edited_run.output == {"greeting": "Thanks, Lin!"}
    assert sites.submissions[-1]["name"] == "Lin" and len(fake_llm.requests_for(token)) == calls
    with embedded.client() as client:
        assert client.delete(f"/v1/scripts/{script_id}").status_code == 204
        assert client.get(f"/v1/scripts/{script_id}").status_code == 404


def test_without_ai_fallback_a_changed_page_fails_naming_the_step(embedded: Stack, fake_llm: FakeLLM,
                                                                  sites: SiteServer, token: str) -> None:
    fake_llm.script(token, ORDER_SCRIPT)
    with embedded.client() as client:
        def run(path: str, **extra: Any) -> dict[str, Any]:
            created = client.post("/v1/run/tasks", json={
                "prompt": f"Order a large insured parcel for Ada ({token})", "url": sites.url(path),
                "run_with": "code", "cache_key": f"strict-{token}", **extra})
            assert created.status_code == 200, created.text
            return embedded.wait_final(created.json()["run_id"])

        assert run(ORDER)["status"] == "completed"
        calls = len(fake_llm.requests_for(token))
        strict = run("/replay-order-moved.html", ai_fallback=False)
        assert strict["status"] == "failed" and len(fake_llm.requests_for(token)) == calls
        assert "script step 4 (click button 'Send order')" in strict["failure_reason"]
        assert "ai_fallback is off" in strict["failure_reason"]
        script_run = strict["script_run"]
        assert script_run["steps_replayed"] == 3 and not script_run["ai_fallback_triggered"]
        refused = client.post("/v1/run/tasks", json={"prompt": "x", "url": sites.url(ORDER),
                                                     "run_with": "cod"})
        assert refused.status_code == 422 and "run_with" in refused.text


def test_a_server_without_an_llm_replays_and_says_why_it_cannot_heal(
        tmp_path: Path, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    fake_llm.script(token, ORDER_SCRIPT)
    request = {"prompt": f"Order a large insured parcel for Ada ({token})", "run_with": "code",
               "cache_key": f"offline-{token}"}
    with running_stack(tmp_path, llm_base_url=fake_llm.base_url) as stack:
        recorded = stack.wait_final(stack.create_run(url=sites.url(ORDER), **request)["run_id"])
        assert recorded["status"] == "completed"
        stack.kill("api")
        for name in ("WAYFARER_LLM_BASE_URL", "WAYFARER_LLM_API_KEY"):
            stack.env.pop(name)
        stack.start_api()
        replayed = stack.wait_final(stack.create_run(url=sites.url(ORDER), **request)["run_id"])
        assert replayed["status"] == "completed", replayed["failure_reason"]
        assert replayed["script_run"]["steps_replayed"] == 4
        moved = sites.url("/replay-order-moved.html")
        changed = stack.wait_final(stack.create_run(url=moved, **request)["run_id"])
        assert changed["status"] == "failed"
        assert "script step 4 (click button 'Send order')" in changed["failure_reason"]
        assert "No LLM is configured to heal it" in changed["failure_reason"]
        fresh = stack.wait_final(stack.create_run(url=sites.url(ORDER), prompt="Something new")["run_id"])
        assert fresh["status"] == "failed" and "No LLM is configured" in fresh["failure_reason"]
