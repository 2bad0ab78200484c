"""Every tool on a page that needs it, through capture() -> ref -> apply(), like the agent loop."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.browser.conftest import VERIFICATION_CODE, Driver
from tests.sites.server import UPLOAD_BYTES

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_input_text_and_click_submit_a_form(driver: Driver) -> None:
    await driver.open("/guestbook.html")
    assert (await driver.act("input_text", ref=driver.ref("textbox", "Name"), text="Ada")).succeeded
    result = await driver.act("click", ref=f"#{driver.ref('button', 'Sign')}")
    assert result.succeeded and result.page_changed
    assert result.outcome == "click button 'Sign' -> navigated to /submit"
    assert driver.sites.wait_for_submission()[-1]["name"] == "Ada"
    assert await driver.text() == "Thanks, Ada!"


async def test_input_text_replaces_existing_text(driver: Driver) -> None:
    await driver.open("/guestbook.html")
    name = driver.ref("textbox", "Name")
    await driver.act("input_text", ref=name, text="Grace Hopper")
    await driver.act("input_text", ref=name, text="Ada")
    assert await driver.run.active_page.locator("[name=name]").input_value() == "Ada"


async def test_date_and_time_inputs_take_iso_values(driver: Driver) -> None:
    await driver.open("/dates.html")
    for name, value in (("Day", "2024-05-31"), ("Time", "13:45"), ("Starts", "2024-06-01 09:30")):
        assert (await driver.act("input_text", ref=driver.ref("textbox", name), text=value)).succeeded
    assert await driver.text() == "day=2024-05-31 time=13:45 starts=2024-06-01T09:30"
    bad = await driver.act("input_text", ref=driver.ref("textbox", "Day"), text="next Tuesday")
    assert not bad.succeeded and "2024-05-31" in bad.outcome


async def test_select_option_native_by_label_or_value_and_aria_combobox(driver: Driver) -> None:
    await driver.open("/select.html")
    country = driver.ref("combobox", "Country")
    assert (await driver.act("select_option", ref=country, option="Germany")).outcome.endswith("'Germany'")
    assert await driver.text() == "country=de size="
    await driver.act("select_option", ref=country, option="jp")
    missing = await driver.act("select_option", ref=country, option="Atlantis")
    assert not missing.succeeded and "'France'" in missing.outcome
    picked = await driver.act("select_option", ref=driver.ref("combobox", "Size"), option="Medium")
    assert picked.succeeded, picked.outcome
    assert await driver.text() == "country=jp size=m"


async def test_checkbox_radio_and_aria_checkbox_idempotent(driver: Driver) -> None:
    await driver.open("/choices.html")
    assert (await driver.act("checkbox", ref=driver.ref("radio", "Courier"), checked=True)).succeeded
    news = driver.ref("checkbox", "Send me news")
    for _ in range(2):
        assert (await driver.act("checkbox", ref=news, checked="true")).succeeded
    assert (await driver.act("checkbox", ref=driver.ref("checkbox", "Accept terms"), checked=True)).succeeded
    assert await driver.text() == "delivery=courier news=true terms=true"
    await driver.act("checkbox", ref=driver.ref("checkbox", "Send me news"), checked=False)
    assert await driver.text() == "delivery=courier news=false terms=true"


async def test_disabled_submit_is_reported_until_the_form_is_valid(driver: Driver) -> None:
    await driver.open("/signup.html")
    blocked = await driver.act("click", ref=driver.ref("button", "Create account"))
    assert not blocked.succeeded and "disabled" in blocked.outcome
    await driver.act("input_text", ref=driver.ref("textbox", "Name"), text="Lin")
    await driver.act("input_text", ref=driver.ref("textbox", "Email"), text="lin@example.com")
    assert (await driver.act("click", ref=driver.ref("button", "Create account"))).succeeded
    assert driver.sites.wait_for_submission()[-1] == {"name": "Lin", "email": "lin@example.com"}


async def test_overlay_must_be_closed_before_clicking_under_it(driver: Driver) -> None:
    await driver.open("/overlay.html")
    covered = await driver.act("click", ref=driver.ref("button", "Read more"))
    assert not covered.succeeded and "overlay" in covered.outcome
    assert (await driver.act("click", ref=driver.ref("button", "Accept all"))).succeeded
    assert (await driver.act("click", ref=driver.ref("button", "Read more"))).succeeded
    assert await driver.text() == "read"


async def test_open_shadow_dom_elements(driver: Driver) -> None:
    await driver.open("/shadow.html")
    await driver.act("input_text", ref=driver.ref("textbox", "Query"), text="lamps")
    assert (await driver.act("click", ref=driver.ref("button", "Search"))).succeeded
    assert await driver.text() == "searched lamps"


async def test_same_and_cross_origin_iframes(driver: Driver) -> None:
    other = driver.sites.other_origin_url("/frame-inner.html?who=cross")
    await driver.run.active_page.goto(driver.sites.url(f"/frames.html?other={other}"))
    await driver.run.active_page.frame_locator("#cross").get_by_role("button").wait_for()
    await driver.capture()
    for who in ("same", "cross"):
        frame = driver.run.active_page.frame_locator(f"#{who}")
        notes = [line for line in driver.state.snapshot.splitlines() if 'textbox "Note"' in line]  # type: ignore[union-attr]
        assert len(notes) == 2
        note_ref = ref_in_frame(driver, "textbox", "Note", index=0 if who == "same" else 1)
        assert (await driver.act("input_text", ref=note_ref, text=who)).succeeded
        assert (await driver.act("click", ref=driver.ref("button", f"Press {who}"))).succeeded
        assert (await frame.locator("#result").inner_text()) == f"{who} pressed {who}"


def ref_in_frame(driver: Driver, role: str, name: str, index: int) -> str:
    assert driver.state is not None
    lines = [line for line in driver.state.snapshot.splitlines() if f'- {role} "{name}"' in line]
    return lines[index].split("[ref=")[1].split("]")[0]


async def test_new_tab_is_tracked_and_switch_tab(driver: Driver) -> None:
    await driver.open("/tabs.html")
    opened = await driver.act("click", ref=driver.ref("link", "Open help"))
    assert opened.succeeded and opened.page_changed and "opened tab 1" in opened.outcome
    state = await driver.capture()
    assert state.active_tab == 1 and len(state.tabs) == 2 and "Help" in state.tabs[1]
    await driver.act("click", ref=driver.ref("button", "Get help"))
    assert await driver.text() == "helped"
    no_history = await driver.act("go_back")
    assert not no_history.succeeded and "no earlier page" in no_history.outcome
    switched = await driver.act("switch_tab", index="0")
    assert switched.succeeded and switched.page_changed and driver.run.active_index == 0
    assert driver.run.active_page.url.endswith("/tabs.html")
    assert not (await driver.act("switch_tab", index=5)).succeeded


async def test_upload_through_hidden_input_button_and_visible_input(driver: Driver, tmp_path: Path) -> None:
    await driver.open("/upload.html")
    uploaded = await driver.act("upload_file", ref=driver.ref("button", "Attach a file"),
                                file_url=driver.sites.upload_file_url("notes.txt"))
    assert uploaded.succeeded, uploaded.outcome
    content = UPLOAD_BYTES.decode().strip()
    assert await driver.text() == f"hidden-file: notes.txt ({len(UPLOAD_BYTES)} bytes) {content}"
    local = tmp_path / "cv.txt"
    local.write_text("my cv")
    resume = driver.ref("button", "Resume")
    assert (await driver.act("upload_file", ref=resume, file_url=str(local))).succeeded
    assert await driver.text() == "visible-file: cv.txt (5 bytes) my cv"
    missing = await driver.act("upload_file", ref=resume, file_url="/nonexistent/x.pdf")
    assert not missing.succeeded and "existing local file" in missing.outcome


async def test_hover_reveals_a_menu(driver: Driver) -> None:
    await driver.open("/hover.html")
    assert "Gadgets" not in driver.state.snapshot  # type: ignore[union-attr]
    hovered = await driver.act("hover", ref=driver.ref("navigation", "Main"))
    assert hovered.succeeded and hovered.page_changed
    await driver.capture()
    assert (await driver.act("click", ref=driver.ref("link", "Gadgets"))).succeeded
    assert await driver.text() == "gadgets"


async def test_keypress_and_verification_code(driver: Driver) -> None:
    await driver.open("/keys.html")
    await driver.act("input_text", ref=driver.ref("textbox", "Search terms"), text="shoes")
    assert (await driver.act("keypress", keys="Enter")).succeeded
    assert await driver.text() == "searched shoes"
    unknown = await driver.act("keypress", keys=["Enterr"])
    assert not unknown.succeeded and "not a key name" in unknown.outcome
    typed = await driver.act("verification_code", ref=driver.ref("textbox", "Verification code"))
    assert typed.succeeded and VERIFICATION_CODE not in typed.outcome
    await driver.act("click", ref=driver.ref("button", "Verify"))
    assert await driver.text() == f"code {VERIFICATION_CODE}"


async def test_scroll_and_a_target_far_below_the_fold(driver: Driver) -> None:
    await driver.open("/long.html")
    down = await driver.act("scroll", direction="down")
    assert down.succeeded and down.page_changed and "scrolled to" in down.outcome
    assert await driver.run.active_page.evaluate("window.scrollY") > 0
    await driver.act("scroll", direction="up")
    assert "already at the top" in (await driver.act("scroll", direction="up")).outcome
    await driver.capture()
    await driver.act("input_text", ref=driver.ref("textbox", "Comment"), text="far away")
    assert (await driver.act("click", ref=driver.ref("button", "Post comment"))).succeeded
    assert await driver.text() == "posted far away"


async def test_scroll_inside_a_panel_by_its_ref(driver: Driver) -> None:
    await driver.open("/panel.html")
    panel = driver.ref("navigation", "Chapters")
    top = await driver.act("scroll", ref=panel, direction="up")
    assert top.succeeded and not top.page_changed and "already at the top of the panel" in top.outcome
    down = await driver.act("scroll", ref=panel, direction="down")
    assert down.succeeded and down.page_changed and "scrolled to 576px of the panel" in down.outcome
    assert await driver.run.active_page.evaluate(
        "[window.scrollY, document.getElementById('chapters').scrollTop]") == [0, 576]
    outside = await driver.act("scroll", ref=driver.ref("heading", "Handbook"), direction="down")
    assert not outside.succeeded and "is not a scrollable panel nor inside one" in outside.outcome


async def test_wait_for_content_that_appears_later(driver: Driver) -> None:
    await driver.open("/delayed.html")
    assert "Show results" not in driver.state.snapshot  # type: ignore[union-attr]
    assert (await driver.act("wait", seconds="2")).succeeded
    await driver.capture()
    await driver.act("click", ref=driver.ref("button", "Show results"))
    assert await driver.text() == "results shown"


async def test_goto_url_go_back_and_refused_urls(driver: Driver) -> None:
    await driver.open("/guestbook.html")
    went = await driver.act("goto_url", url=driver.sites.url("/choices.html"))
    assert went.succeeded and went.outcome.endswith("-> navigated to /choices.html")
    back = await driver.act("go_back")
    assert back.succeeded and driver.run.active_page.url.endswith("/guestbook.html")
    for url in ("file:///etc/passwd", "javascript:alert(1)", "chrome://settings"):
        refused = await driver.act("goto_url", url=url)
        assert not refused.succeeded and "only http(s)" in refused.outcome
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        down = await driver.act("goto_url", url=f"http://127.0.0.1:{port}/")
    assert not down.succeeded and "net::ERR_CONNECTION_REFUSED" in down.outcome


async def test_slow_page_and_page_that_never_finishes_loading(driver: Driver) -> None:
    slow = await driver.act("goto_url", url=driver.sites.url("/slow?seconds=1"))
    assert slow.succeeded and "Finally loaded" in (await driver.capture()).snapshot
    never = await driver.act("goto_url", url=driver.sites.url("/never.html"))
    assert never.succeeded, never.outcome
    await driver.capture()
    assert (await driver.act("click", ref=driver.ref("button", "Click anyway"))).succeeded
    assert await driver.text() == "clicked"


async def test_multi_step_form(driver: Driver) -> None:
    await driver.open("/wizard.html")
    await driver.act("input_text", ref=driver.ref("textbox", "Name"), text="Ada")
    assert (await driver.act("click", ref=driver.ref("button", "Next"))).page_changed
    await driver.capture()
    await driver.act("input_text", ref=driver.ref("textbox", "City"), text="London")
    await driver.act("select_option", ref=driver.ref("combobox", "Speed"), option="express")
    assert (await driver.act("click", ref=driver.ref("button", "Place order"))).succeeded
    assert driver.sites.wait_for_submission()[-1] == {"name": "Ada", "city": "London", "speed": "Express"}


async def test_model_mistakes_come_back_as_failed_results(driver: Driver) -> None:
    await driver.open("/guestbook.html")
    cases = [("fly", {}, "unknown tool"), ("click", {"ref": "e9999"}, "latest snapshot"),
             ("click", {"ref": "Sign"}, "not an element ref"), ("input_text", {"ref": "e1"}, "'text'"),
             ("checkbox", {"ref": driver.ref("textbox", "Name"), "checked": "maybe"}, "true or false"),
             ("scroll", {"direction": "sideways"}, "'up' or 'down'"), ("wait", {"seconds": "soon"}, "number")]
    for tool, args, hint in cases:
        result = await driver.act(tool, **args)
        assert not result.succeeded and hint in result.outcome, result.outcome


async def test_a_ref_whose_element_or_its_frame_is_gone_asks_for_a_fresh_one(driver: Driver) -> None:
    """Playwright words a vanished ref differently by case ("Failed to find element" for a removed
    element, "Invalid frame in aria-ref selector" for an element whose iframe was removed); either way
    the model is asked for a ref from the latest snapshot."""
    page = driver.run.active_page
    await driver.open("/frames.html")
    await page.frame_locator("#same").get_by_role("button").wait_for()
    await driver.capture()
    press_in_frame = ref_in_frame(driver, "button", "Press same", index=0)
    note_in_frame = ref_in_frame(driver, "textbox", "Note", index=0)
    await page.evaluate("() => document.querySelector('h1').remove()")
    heading = await driver.act("click", ref=driver.ref("heading", "Frames"))
    await page.evaluate("() => document.querySelector('#same').remove()")
    for result in (heading, await driver.act("click", ref=press_in_frame),
                   await driver.act("input_text", ref=note_in_frame, text="x")):
        assert not result.succeeded and "latest snapshot" in (result.problem or ""), result.outcome
