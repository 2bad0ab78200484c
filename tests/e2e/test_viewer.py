"""The viewer as a person uses it: real Chromium (Playwright) against a real `wayfarer serve`, fake LLM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.flows import FORM_PATH, stall_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.browser import browser_settings
from tests.support.stack import FINAL, TEST_CHROMIUM_ARGS, Stack
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.browser

PEOPLE = [{"name": "Ada", "greeting": "Thanks, Ada!"}, {"name": "Grace", "greeting": "Hello, Grace"}]
PHONE = {"width": 390, "height": 844}


def _token() -> str:
    return f"viewer-{uuid.uuid4().hex[:10]}"


def _busy_run_page(stack: Stack, fake_llm: FakeLLM, context: BrowserContext) -> tuple[str, Page]:
    """A run that keeps working for a minute, and its page open in a signed-in browser."""
    token = _token()
    fake_llm.script(token, stall_script(60))
    run_id = stack.create_run(prompt=f"Keep busy ({token})")["run_id"]
    page = context.new_page()
    sign_in(page, stack, stack.api_key, f"/runs/{run_id}")
    return run_id, page


def sign_guest_book(output: Any) -> list[Any]:
    return [
        [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": "Ada",
                                         "reasoning": "The guest book asks for a name."}},
         {"name": "click", "args": {"ref": {"role": "button", "name": "Sign"}}}],
        [{"name": "complete", "args": {"output": output, "summary": "Signed the guest book."}}],
    ]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def stack(embedded: Stack) -> Stack:
    return embedded


def new_key(stack: Stack, organization: str) -> str:
    """A key of another organization, made the way an operator does it."""
    result = subprocess.run([str(Path(sys.executable).with_name("wayfarer")), "keys", "create", "--org",
                             organization], env=stack.env, capture_output=True, text=True, timeout=60,
                            cwd=stack.log_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def finished_run(stack: Stack, fake_llm: FakeLLM, sites: SiteServer, receiver: Receiver) -> dict[str, Any]:
    """A completed run whose output is a list of objects, with a webhook delivered."""
    token = _token()
    fake_llm.script(token, sign_guest_book(PEOPLE))
    created = stack.create_run(prompt=f"Sign the guest book as Ada ({token})", url=sites.url(FORM_PATH),
                               webhook_url=receiver.url)
    run = stack.wait_final(created["run_id"])
    assert run["status"] == "completed", run.get("failure_reason")
    (hook,) = receiver.wait_for(1)
    page_url = f"{stack.base_url}/runs/{run['run_id']}"  # app_url: the run's page here, by default
    assert run["app_url"] == json.loads(hook.body)["app_url"] == page_url
    return run


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = browser_settings(Path("/tmp")).resolved_chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=TEST_CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def sign_in(page: Page, stack: Stack, key: str, next_path: str = "/runs") -> None:
    page.goto(f"{stack.base_url}{next_path}")  # signed out: the page sends the person to sign in
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}{next_path}")


def wait_final(client: httpx.Client, run_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/v1/runs/{run_id}").json()["status"] not in FINAL:
        assert time.monotonic() < deadline, f"run {run_id} did not finish"
        time.sleep(0.2)


def csrf_token(page: Page) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


def test_sign_in_refuses_a_wrong_key_and_signs_out(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{stack.base_url}/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.fill("#api_key", "wf_not_a_key")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    assert not [c for c in context.cookies() if c["name"] == "wayfarer_session"]

    sign_in(page, stack, stack.api_key, "/runs")
    (cookie,) = [c for c in context.cookies() if c["name"] == "wayfarer_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert stack.api_key not in cookie["value"]  # encrypted, not merely signed
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    assert not [c for c in context.cookies() if c["name"] == "wayfarer_session"]
    page.goto(f"{stack.base_url}/runs")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fruns"))

    # a session cookie that was tampered with is no session
    sign_in(page, stack, stack.api_key)
    (cookie,) = [c for c in context.cookies() if c["name"] == "wayfarer_session"]
    context.add_cookies([{"name": cookie["name"], "value": cookie["value"][:-4] + "AAAA",
                          "url": stack.base_url}])
    page.goto(f"{stack.base_url}/runs")
    expect(page).to_have_url(re.compile(r"/signin\?next="))


def test_runs_list_filters_searches_and_pages(stack: Stack, fake_llm: FakeLLM,
                                              context: BrowserContext) -> None:
    key = new_key(stack, "listing")
    token = _token()
    created = []
    with httpx.Client(base_url=stack.base_url, headers={"x-api-key": key}, timeout=30) as client:
        for n in range(23):  # completed when even, terminated (the agent gives up) when odd
            if n % 2 == 0:
                fake_llm.script(f"{token}-{n:02d}", [[{"name": "complete", "args": {"output": {"n": n}}}]])
            needle = " with a needle" if n % 7 == 0 else ""
            request = {"prompt": f"Listing run {n:02d}{needle} ({token}-{n:02d})",
                       "engine": "skyvern-2.0" if n % 3 == 0 else "skyvern-1.0"}
            response = client.post("/v1/run/tasks", json=request)
            assert response.status_code == 200, response.text
            created.append(response.json()["run_id"])
        for run_id in created:
            wait_final(client, run_id)
    page = context.new_page()
    sign_in(page, stack, key)
    rows = page.locator("tbody[data-region=rows] tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("Listing run 22")  # newest first
    first_row = rows.first
    for label in ("Status", "Prompt", "Start URL", "Steps", "Duration", "Tokens", "Created"):
        expect(first_row.locator(f"td[data-label='{label}']")).to_have_count(1)
    expect(first_row.locator("td[data-label=Tokens]")).not_to_have_text("0")

    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(3)
    expect(page.locator("nav.pager")).to_contain_text("Page 2")
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)

    page.goto(f"{stack.base_url}/runs")
    page.select_option("select[name=status]", "terminated")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(11)
    expect(page.locator("tbody[data-region=rows]")).not_to_contain_text("Completed")
    expect(rows.first).to_contain_text("Stopped by the agent")

    page.select_option("select[name=status]", "")
    page.select_option("select[name=run_type]", "task_v2")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(8)  # 0, 3, ..., 21

    page.select_option("select[name=run_type]", "")
    page.fill("input[name=q]", "needle")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(4)  # 0, 7, 14, 21
    expect(page.locator("tbody[data-region=rows]")).to_contain_text("Listing run 14 with a needle")

    page.fill("input[name=q]", "no such words anywhere")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody[data-region=rows]")).to_contain_text("No runs match these filters")


def test_finished_run_page_shows_steps_output_and_a_recording_that_seeks(
        stack: Stack, finished_run: dict[str, Any], context: BrowserContext, tmp_path: Path) -> None:
    run_id = finished_run["run_id"]
    page = context.new_page()
    sign_in(page, stack, stack.api_key, f"/runs/{run_id}")
    expect(page.locator(".outcome")).to_contain_text("Completed")
    expect(page.locator(".outcome")).to_contain_text("The agent reached the goal.")

    table = page.locator("table.output")
    expect(table.locator("th")).to_have_text(["name", "greeting"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").nth(1)).to_contain_text("Grace")

    steps = page.locator("li.step")
    expect(steps).to_have_count(2)
    expect(steps.first.locator(".act")).to_have_count(2)
    expect(steps.first).to_contain_text("input_text")
    expect(steps.first).to_contain_text("The guest book asks for a name.")
    expect(steps.first).to_contain_text("typed 3 character(s)")
    images = page.locator("li.step img")
    assert images.count() >= 3
    for n in range(images.count()):
        images.nth(n).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=images.nth(n).element_handle())

    toggle = steps.first.locator("details", has_text="LLM request")
    toggle.locator("summary").click()
    expect(toggle.locator("pre")).to_contain_text('"messages"')

    video = page.locator("video#recording")
    video.scroll_into_view_if_needed()
    page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle())
    duration = video.evaluate("v => v.duration")
    assert 0 < duration < 3600  # a finite length: the file has its duration and cues
    played = video.evaluate("""async v => { v.muted = true; await v.play();
        await new Promise(r => setTimeout(r, 300)); v.pause(); return v.currentTime; }""")
    assert played > 0
    target = round(duration * 0.7, 2)
    reached = video.evaluate("""(v, t) => new Promise(resolve => {
        v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
        v.currentTime = t; })""", target)
    assert abs(reached - target) < 0.1

    source = str(video.get_attribute("src"))
    partial = page.request.get(f"{stack.base_url}{source}", headers={"Range": "bytes=0-99"})
    assert partial.status == 206 and partial.headers["content-type"] == "video/webm"
    assert partial.headers["content-range"].startswith("bytes 0-99/")
    whole = page.request.get(f"{stack.base_url}{source}")
    recording = tmp_path / "recording.webm"
    recording.write_bytes(whole.body())
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name", "-of", "json", str(recording)],
                           capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout)["streams"][0]["codec_name"] in {"vp8", "vp9"}

    expect(page.locator("section#webhooks").locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Retry webhook").click()
    expect(page.get_by_role("status")).to_contain_text("sent again and its receiver accepted it")
    expect(page.locator("section#webhooks")).to_contain_text("retry by hand")

    page.get_by_role("link", name="Run again").click()
    expect(page).to_have_url(f"{stack.base_url}/runs/new?from={run_id}")
    expect(page.locator("#prompt")).to_have_value(re.compile("Sign the guest book as Ada"))
    expect(page.locator("#url")).to_have_value(re.compile(FORM_PATH))


def test_run_again_on_a_workflow_run_starts_the_workflow_again(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, context: BrowserContext) -> None:
    token = _token()
    fake_llm.script(token, sign_guest_book({"greeting": "Thanks, Ada!"}) * 2)
    definition = {"title": "Guest book workflow", "workflow_definition": {
        "parameters": [{"parameter_type": "workflow", "key": "name", "workflow_parameter_type": "string"}],
        "blocks": [{"block_type": "navigation", "label": "sign", "url": sites.url(FORM_PATH),
                    "navigation_goal": f"Sign the guest book as {{{{ name }}}} ({token})"}]}}
    with stack.client() as client:
        workflow = client.post("/v1/agents", json={"json_definition": definition}).json()
        first = client.post("/v1/run/agents", json={"agent_id": workflow["workflow_permanent_id"],
                                                     "parameters": {"name": "Ada"}}).json()["run_id"]
        wait_final(client, first)
    page = context.new_page()
    sign_in(page, stack, stack.api_key, f"/runs/{first}")
    page.get_by_role("button", name="Run again").click()  # not an empty task form: a workflow has no prompt
    expect(page).to_have_url(re.compile(r"/runs/wr_\d+$"))
    again = page.url.rsplit("/", 1)[1]
    assert again != first
    expect(page.locator(".outcome")).to_contain_text("Completed", timeout=60_000)
    with stack.client() as client:
        run = client.get(f"/v1/runs/{again}").json()
    assert run["run_request"]["workflow_id"] == workflow["workflow_permanent_id"]
    assert run["run_request"]["parameters"] == {"name": "Ada"}


def test_forms_without_the_csrf_token_are_refused(stack: Stack, fake_llm: FakeLLM,
                                                  context: BrowserContext) -> None:
    run_id, page = _busy_run_page(stack, fake_llm, context)
    cancel = f"{stack.base_url}/runs/{run_id}/cancel"
    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf_token(page) + "x"}):
        refused = page.request.post(cancel, form=form, max_redirects=0)
        assert refused.status == 403
        assert "refused" in refused.text()
    with stack.client() as client:
        assert client.get(f"/v1/runs/{run_id}").json()["status"] in {"queued", "running"}
    # the sign-in form needs its own token too (no login CSRF)
    forged = page.request.post(f"{stack.base_url}/signin", form={"api_key": stack.api_key, "csrf_token": "x"},
                               max_redirects=0)
    assert forged.status == 403

    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_role("status")).to_contain_text("The run was canceled.")
    expect(page.locator(".outcome")).to_contain_text("Canceled")
    with stack.client() as client:
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "canceled"


def test_live_view_shows_only_the_controls_that_apply(stack: Stack, fake_llm: FakeLLM,
                                                      context: BrowserContext) -> None:
    run_id, page = _busy_run_page(stack, fake_llm, context)
    live = page.locator("#live")
    expect(live.locator("[data-live-state]")).to_contain_text("The agent is working", timeout=60_000)
    expect(live.get_by_role("button", name="Take control")).to_be_visible()
    expect(live.get_by_role("button", name="Give back")).to_be_hidden()  # nobody holds control
    with stack.client() as client:
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    expect(live.locator("[data-live-state]")).to_contain_text("ended", timeout=60_000)
    expect(live.get_by_role("button", name="Take control")).to_be_hidden()
    expect(live.get_by_role("button", name="Give back")).to_be_hidden()


def test_another_organizations_run_answers_like_a_missing_one(
        stack: Stack, finished_run: dict[str, Any], context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, stack, new_key(stack, "rival"))
    foreign = page.request.get(f"{stack.base_url}/runs/{finished_run['run_id']}")
    missing = page.request.get(f"{stack.base_url}/runs/tsk_000000000000000000")
    assert foreign.status == missing.status == 404
    assert foreign.text().replace(finished_run["run_id"], "ID") == missing.text().replace(
        "tsk_000000000000000000", "ID")
    page.goto(f"{stack.base_url}/runs")
    expect(page.locator("tbody[data-region=rows]")).not_to_contain_text(finished_run["run_id"])
    shot = finished_run["screenshot_urls"][0].split("/v1/artifacts/")[1].split("/")[0]
    assert page.request.get(f"{stack.base_url}/v1/artifacts/{shot}/content").status == 404
    assert page.request.post(f"{stack.base_url}/runs/{finished_run['run_id']}/retry_webhook",
                             form={"csrf_token": csrf_token(page)}).status == 404


def test_new_task_form_checks_the_schema_and_runs_to_completion(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, context: BrowserContext) -> None:
    token = _token()
    fake_llm.script(token, [[{"name": "wait", "args": {"seconds": 1}}],
                            *sign_guest_book({"greeting": "Thanks, Ada!"})])
    page = context.new_page()
    sign_in(page, stack, stack.api_key, "/runs/new")
    page.fill("#prompt", f"Sign the guest book as Ada ({token})")
    page.fill("#url", sites.url(FORM_PATH))
    page.fill("#data_extraction_schema", '{"type": "object",')
    page.fill("#max_steps", "6")
    start = page.get_by_role("button", name="Start the run")
    start.click()
    expect(page.locator("#data_extraction_schema-error")).to_contain_text("not valid JSON")
    expect(page).to_have_url(f"{stack.base_url}/runs/new")  # the browser kept the form

    # the server checks the same, for a browser without the script
    refused = page.request.post(f"{stack.base_url}/runs/new", form={
        "csrf_token": csrf_token(page), "prompt": "x", "data_extraction_schema": "{nope"})
    assert refused.status == 400 and "not valid JSON" in refused.text()

    page.fill("#data_extraction_schema", json.dumps(
        {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}))
    start.click()
    expect(page).to_have_url(re.compile(r"/runs/tsk_\d+$"))
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".outcome")).to_contain_text("Completed", timeout=60_000)  # updated in place
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("section#output")).to_contain_text('"greeting": "Thanks, Ada!"')
    expect(page.locator("li.step")).to_have_count(3)
    run_id = page.url.rsplit("/", 1)[1]
    with stack.client() as client:
        run = client.get(f"/v1/runs/{run_id}").json()
    assert run["run_request"]["max_steps"] == 6 and run["output"] == {"greeting": "Thanks, Ada!"}
    assert run["app_url"] == f"{stack.base_url}/runs/{run_id}"


def test_runs_list_shows_new_and_finishing_runs_without_a_reload(
        stack: Stack, fake_llm: FakeLLM, context: BrowserContext) -> None:
    token = _token()
    fake_llm.script(token, [[{"name": "wait", "args": {"seconds": 2}}],
                            [{"name": "complete", "args": {"output": {"ok": True}}}]])
    page = context.new_page()
    sign_in(page, stack, stack.api_key)
    page.evaluate("window.notReloaded = true")
    run_id = stack.create_run(prompt=f"Wait a little ({token})")["run_id"]
    row = page.locator("tbody[data-region=rows] tr", has_text=run_id)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Completed", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True


def test_api_docs_render_without_internet(stack: Stack, context: BrowserContext) -> None:
    """GET /docs (README: it lists the API) draws from this server's files: the test browser resolves no
    outside host, as on a machine without internet, where the CDN's Swagger UI left a blank page."""
    page = context.new_page()
    page.goto(f"{stack.base_url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/run/tasks").first).to_be_visible()
    page.goto(f"{stack.base_url}/redoc")
    expect(page.get_by_text("/v1/run/tasks").first).to_be_attached()


def test_pages_fit_a_phone_screen(stack: Stack, finished_run: dict[str, Any], browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, stack, stack.api_key)
        for path in ("/runs", f"/runs/{finished_run['run_id']}", "/runs/new", "/browser-sessions"):
            page.goto(f"{stack.base_url}{path}")
            page.wait_for_load_state("networkidle")
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{path} overflows horizontally: {width}"
    finally:
        context.close()


def test_browser_session_pages_list_the_session_and_its_runs(
        stack: Stack, fake_llm: FakeLLM, sites: SiteServer, context: BrowserContext) -> None:
    with stack.client() as client:
        session_id = client.post("/v1/browser_sessions", json={"timeout": 15}).json()["browser_session_id"]
        try:
            deadline = time.monotonic() + 60
            while client.get(f"/v1/browser_sessions/{session_id}").json()["status"] != "running":
                assert time.monotonic() < deadline, "the session did not open"
                time.sleep(0.2)
            page = context.new_page()
            sign_in(page, stack, stack.api_key, "/browser-sessions")
            page.get_by_role("link", name=session_id).click()
            expect(page.locator(".facts")).to_contain_text("Running (open)")

            token = _token()
            fake_llm.script(token, sign_guest_book({"greeting": "Thanks, Ada!"}))
            page.get_by_role("link", name="New task in this session").click()
            expect(page.locator("#browser_session_id")).to_have_value(session_id)
            page.fill("#prompt", f"Sign the guest book in the session ({token})")
            page.fill("#url", sites.url(FORM_PATH))
            page.get_by_role("button", name="Start the run").click()
            expect(page.locator(".outcome")).to_contain_text("Completed", timeout=60_000)
            run_id = page.url.rsplit("/", 1)[1]
            page.get_by_role("link", name=session_id).click()
            expect(page.locator("tbody tr", has_text=run_id)).to_contain_text("Completed")
        finally:
            client.post(f"/v1/browser_sessions/{session_id}/close")
