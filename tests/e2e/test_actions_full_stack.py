"""Every action kind through the whole stack: HTTP API → worker → Chromium → fake LLM over HTTP.

Each scenario is one run on a served page. The proof that an action worked is what the model was
shown next: the page text after the last action is in the snapshot of the final planner request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.fakes.fake_llm import FakeLLM, last_user_text
from tests.sites.server import DOWNLOAD_BYTES, SiteServer
from tests.support.services import free_port
from tests.support.stack import Stack


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def ref(role: str, name: str) -> dict[str, str]:
    return {"role": role, "name": name}


@dataclass
class Scenario:
    path: str
    steps: list[list[dict[str, Any]]]
    seen: str  # text the model must have been shown after the last action
    run_extra: dict[str, Any] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {
    "native_select_and_aria_combobox": Scenario("/select.html", [
        [call("select_option", ref=ref("combobox", "Country"), option="Germany"),
         call("select_option", ref=ref("combobox", "Size"), option="Medium")],
    ], "country=de size=m"),
    "radio_and_checkboxes": Scenario("/choices.html", [
        [call("checkbox", ref=ref("radio", "Courier"), checked=True),
         call("checkbox", ref=ref("checkbox", "Send me news"), checked=True),
         call("checkbox", ref=ref("checkbox", "Accept terms"), checked="true")],
    ], "delivery=courier news=true terms=true"),
    "date_inputs": Scenario("/dates.html", [
        [call("input_text", ref=ref("textbox", "Day"), text="2024-05-31"),
         call("input_text", ref=ref("textbox", "Starts"), text="2024-06-01 09:30")],
    ], "day=2024-05-31"),
    "disabled_until_valid_submit": Scenario("/signup.html", [
        [call("input_text", ref=ref("textbox", "Name"), text="Lin"),
         call("input_text", ref=ref("textbox", "Email"), text="lin@example.com"),
         call("click", ref=ref("button", "Create account"))],
    ], "Thanks, Lin!"),
    "overlay_closed_first": Scenario("/overlay.html", [
        [call("click", ref=ref("button", "Accept all"))],
        [call("click", ref=ref("button", "Read more"))],
    ], "read"),
    "open_shadow_dom": Scenario("/shadow.html", [
        [call("input_text", ref=ref("textbox", "Query"), text="lamps"),
         call("click", ref=ref("button", "Search"))],
    ], "searched lamps"),
    "new_tab_and_switch_back": Scenario("/tabs.html", [
        [call("click", ref=ref("link", "Open help"))],
        [call("click", ref=ref("button", "Get help"))],
        [call("switch_tab", index="0")],
        [call("switch_tab", index=1)],
    ], "helped"),
    "hover_menu": Scenario("/hover.html", [
        [call("hover", ref=ref("navigation", "Main"))],
        [call("click", ref=ref("link", "Gadgets"))],
    ], "gadgets"),
    "keypress": Scenario("/keys.html", [
        [call("input_text", ref=ref("textbox", "Search terms"), text="shoes"),
         call("keypress", keys="Enter")],
    ], "searched shoes"),
    "far_below_the_fold": Scenario("/long.html", [
        [call("scroll", direction="down")],
        [call("input_text", ref=ref("textbox", "Comment"), text="far away"),
         call("click", ref=ref("button", "Post comment"))],
    ], "posted far away"),
    "content_after_a_delay": Scenario("/delayed.html", [
        [call("wait", seconds=2)],
        [call("click", ref=ref("button", "Show results"))],
    ], "results shown"),
    "goto_and_go_back": Scenario("/guestbook.html", [
        [call("goto_url", url="{site}/choices.html")],
        [call("go_back")],
    ], "Guest book"),
}


def _script(scenario: Scenario, sites: SiteServer, output: Any = None) -> list[Any]:
    steps = [[{**c, "args": {k: v.format(site=sites.url("")) if isinstance(v, str) else v
                             for k, v in c["args"].items()}} for c in step] for step in scenario.steps]
    return [*steps, [call("complete", output=output or {"done": True}, summary="done")]]


def _run(stack: Stack, fake_llm: FakeLLM, token: str, url: str, script: list[Any],
         **extra: Any) -> dict[str, Any]:
    fake_llm.script(token, script)
    created = stack.create_run(prompt=f"Exercise the page ({token})", url=url, **extra)
    return stack.wait_final(created["run_id"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_action_kind(name: str, embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    scenario = SCENARIOS[name]
    run = _run(embedded, fake_llm, token, sites.url(scenario.path), _script(scenario, sites),
               **scenario.run_extra)
    assert run["status"] == "completed", run.get("failure_reason")
    final_prompt = last_user_text(fake_llm.requests_for(token)[-1])
    assert scenario.seen in final_prompt, final_prompt


def test_iframes_same_and_cross_origin(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                      token: str) -> None:
    other = sites.other_origin_url("/frame-inner.html?who=cross")
    script = [[call("click", ref=ref("button", "Press same"))],
              [call("click", ref=ref("button", "Press cross"))],
              [call("complete", output={"done": True}, summary="pressed both")]]
    run = _run(embedded, fake_llm, token, sites.url(f"/frames.html?other={other}"), script)
    assert run["status"] == "completed", run.get("failure_reason")
    final_prompt = last_user_text(fake_llm.requests_for(token)[-1])
    assert "same pressed" in final_prompt and "cross pressed" in final_prompt, final_prompt


def test_upload_and_download(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    upload = sites.upload_file_url("notes.txt")
    script = [[call("upload_file", ref=ref("button", "Attach a file"), file_url=upload)],
              [call("goto_url", url=sites.url("/download.html"))],
              [call("download_file", ref=ref("link", "Download report"))],
              [call("complete", output={"done": True}, summary="uploaded and downloaded")]]
    run = _run(embedded, fake_llm, token, sites.url("/upload.html"), script)
    assert run["status"] == "completed", run.get("failure_reason")
    assert "hidden-file: notes.txt" in last_user_text(fake_llm.requests_for(token)[1])
    (download,) = run["downloaded_files"]
    assert download["filename"] == "report.csv"
    assert download["checksum"] == hashlib.sha256(DOWNLOAD_BYTES).hexdigest()
    assert httpx.get(download["url"], timeout=10).content == DOWNLOAD_BYTES


def test_pushed_totp_code_is_typed(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer, token: str) -> None:
    identifier = f"{token}@example.com"
    with embedded.client() as client:
        pushed = client.post("/v1/credentials/totp", json={"totp_identifier": identifier,
                                                           "content": "Your code is 735911"})
    assert pushed.status_code == 200, pushed.text
    script = [[call("verification_code", ref=ref("textbox", "Verification code")),
               call("click", ref=ref("button", "Verify"))],
              [call("complete", output={"done": True}, summary="verified")]]
    run = _run(embedded, fake_llm, token, sites.url("/keys.html"), script, totp_identifier=identifier)
    assert run["status"] == "completed", run.get("failure_reason")
    assert "code 735911" in last_user_text(fake_llm.requests_for(token)[-1])
    with embedded.client() as client:
        timeline = client.get(f"/v1/runs/{run['run_id']}/timeline").text
    assert "verification_code" in timeline and "735911" not in timeline  # the code is typed, never recorded


def test_unreachable_port_is_an_outcome_not_a_crash(embedded: Stack, fake_llm: FakeLLM, sites: SiteServer,
                                                   token: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    script = [[call("goto_url", url=dead)], [call("terminate", reason="The site is down.")]]
    run = _run(embedded, fake_llm, token, sites.url("/guestbook.html"), script)
    assert run["status"] == "terminated" and run["failure_reason"] == "The site is down."
    assert "ERR_CONNECTION_REFUSED" in last_user_text(fake_llm.requests_for(token)[-1])
