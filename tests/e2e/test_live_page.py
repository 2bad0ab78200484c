"""The live view on the run's page as a person uses it, in real Chromium: the frames change while the
run works; "Take control" pauses it, the person types into the page's field through the view while the
agent waits, "Give back" resumes it, and the run completes with what they typed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.flows import FORM_PATH
from tests.e2e.test_live import TYPED, takeover_script
from tests.fakes.fake_llm import FakeLLM
from tests.sites.server import SiteServer
from tests.support.browser import browser_settings
from tests.support.stack import TEST_CHROMIUM_ARGS, Stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=browser_settings(Path("/tmp")).resolved_chromium_path(), args=TEST_CHROMIUM_ARGS)
        yield launched
        launched.close()


def _signed_in_page(browser: Browser, stack: Stack, path: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{stack.base_url}{path}")
    expect(page).to_have_url(re.compile(r"/signin"))
    page.fill("#api_key", stack.api_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}{path}")
    return page


def _frame_src(page: Page) -> str:
    return str(page.locator("[data-live-frame]").get_attribute("src") or "")


def test_take_control_type_into_the_page_and_give_back(embedded: Stack, browser: Browser, fake_llm: FakeLLM,
                                                       sites: SiteServer, token: str) -> None:
    fake_llm.script(token, takeover_script())
    run_id = embedded.create_run(prompt=f"Fill the guest book ({token})", url=sites.url(FORM_PATH))["run_id"]
    page = _signed_in_page(browser, embedded, f"/runs/{run_id}")
    live = page.locator("#live")
    expect(live.locator("[data-live-frame]")).to_be_visible(timeout=60_000)  # once a worker started it
    first = _frame_src(page)
    page.wait_for_function("src => document.querySelector('[data-live-frame]').src !== src", arg=first,
                           timeout=60_000)

    live.get_by_role("button", name="Take control").click()
    expect(live.locator("[data-live-state]")).to_contain_text("You hold control", timeout=60_000)
    screen = live.locator("[data-live-screen]")
    box = screen.bounding_box()
    assert box is not None
    scale = box["width"] / 1280
    # the guest book's Name field sits near the top left of the page: click it through the view
    field = _name_field_center(browser, sites)
    page.mouse.click(box["x"] + field[0] * scale, box["y"] + field[1] * scale)
    page.keyboard.press("Control+a")
    page.keyboard.type(TYPED)
    expect(live.locator("[data-live-error]")).to_be_hidden()
    applied = 2 + 1 + len(TYPED)  # mouse down and up, Control+a, a text event per character
    page.wait_for_function("n => Number(document.querySelector('[data-live-screen]').dataset.inputs) >= n",
                           arg=applied)
    live.get_by_role("button", name="Give back").click()
    expect(live.locator("[data-live-state]")).to_contain_text("ended", timeout=60_000)
    final = embedded.wait_final(run_id)
    assert final["status"] == "completed", final["failure_reason"]
    assert final["output"] == {"name": TYPED}


def _name_field_center(browser: Browser, sites: SiteServer) -> tuple[float, float]:
    """Where the guest book's Name field is at the run's 1280x720 viewport."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.goto(sites.url(FORM_PATH))
        box = page.get_by_role("textbox", name="Name").bounding_box()
        assert box is not None
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    finally:
        page.close()
