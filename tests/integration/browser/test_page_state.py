"""capture(): what the planner sees — trimmed snapshot, iframes, tabs, a viewport JPEG."""

from __future__ import annotations

import re

import pytest

from tests.integration.browser.conftest import Driver
from workers.agent.page_state import KEPT_ROLES, SnapshotTrim

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_long_page_is_trimmed_but_keeps_every_interactive_element(driver: Driver) -> None:
    state = await driver.open("/long.html")
    raw = await driver.run.active_page.aria_snapshot(mode="ai")
    assert len(state.snapshot) < len(raw) / 2, "the long page was not trimmed"
    assert state.snapshot.startswith("# Long page:") and "below are left out" in state.snapshot
    assert "scrollable panels" not in state.snapshot  # the window scrolls it all
    assert "Paragraph 399" not in state.snapshot and "Paragraph 3 " in state.snapshot
    for ref in refs_with_roles(raw, KEPT_ROLES):  # every interactive element and heading survives
        assert f"[ref={ref}]" in state.snapshot
    assert "[box=" not in state.snapshot
    # scrolled to the bottom, the neighbourhood moves there and the top is summarised instead
    await driver.act("click", ref=driver.ref("button", "Post comment"))
    bottom = await driver.capture()
    assert "Paragraph 399" in bottom.snapshot and "Paragraph 3 " not in bottom.snapshot
    assert re.search(r"[1-9]\d* other element\(s\) above", bottom.snapshot)
    assert 'textbox "Early field"' in bottom.snapshot


def refs_with_roles(snapshot: str, roles: frozenset[str]) -> list[str]:
    pattern = re.compile(r'^\s*- ([\w-]+)\b.*\[ref=([^\]]+)\]', re.MULTILINE)
    return [ref for role, ref in pattern.findall(snapshot) if role in roles]


async def on_screen_refs(driver: Driver) -> list[str]:
    """Every element with a kept role (interactive, headings) whose box meets the 1280x720 viewport."""
    raw = await driver.run.active_page.aria_snapshot(mode="ai", boxes=True, timeout=10_000)
    pattern = re.compile(r"^\s*- '?([\w-]+)\b.*\[ref=([^\]]+)\].*\[box=(-?\d+),(-?\d+),(\d+),(\d+)\]",
                         re.MULTILINE)
    found = [(role, ref, *map(int, box)) for role, ref, *box in pattern.findall(raw)]
    return [ref for role, ref, x, y, width, height in found if role in KEPT_ROLES and width and height
            and x < 1280 and x + width > 0 and y < 720 and y + height > 0]


async def test_an_on_screen_sidebar_after_a_long_table_is_kept_and_usable(driver: Driver) -> None:
    """The filters are laid out beside a long results table that comes first in the document, and the
    page scrolls 33 px: they must be in the snapshot (no scrolling would ever show them otherwise)."""
    state = await driver.open("/orders.html")
    on_screen = await on_screen_refs(driver)
    assert len(on_screen) > 50, "the table's visible rows and the filters are on screen"
    assert [ref for ref in on_screen if f"[ref={ref}]" not in state.snapshot] == []
    note = state.snapshot.split("\n", 1)[0]
    assert "scroll up/down to see them" not in note, "the window scrolls 33 px: nothing is below to promise"
    results = driver.ref("main", "Results")
    assert re.search(rf"more inside scrollable panels: \d+ in \[ref={results}\]", note)
    assert "long text is cut short" in note  # the visible rows alone exceed the cap
    assert re.search(r'cell "Order 1000 was placed through[^"]*…"', state.snapshot)
    assert len(state.snapshot) < 16_000

    await driver.act("input_text", ref=driver.ref("textbox", "Customer"), text="Ada")
    await driver.act("select_option", ref=driver.ref("combobox", "Status"), option="Shipped")
    await driver.act("checkbox", ref=driver.ref("checkbox", "Gift orders only"), checked=True)
    await driver.act("click", ref=driver.ref("button", "Apply filters"))
    assert await driver.text() == "Filtered: Shipped orders of Ada, gift orders"
    # what the note promises is there: the results pane scrolls to later orders
    assert 'link "Order 1100"' not in state.snapshot
    for _ in range(10):
        await driver.act("scroll", ref=results, direction="down")
        later = await driver.capture()
        if 'link "Order 1100"' in later.snapshot:
            break
    assert 'link "Order 1100"' in later.snapshot


async def test_the_time_options_of_a_picker_open_over_a_dialog_are_kept(driver: Driver) -> None:
    """A CMS's date-time picker opened over a dialog, both rendered after a long table: the options the
    picker shows are on screen, so they are in the snapshot; the rest are inside its scrolling list."""
    state = await driver.open("/schedule.html")
    on_screen = await on_screen_refs(driver)
    assert [ref for ref in on_screen if f"[ref={ref}]" not in state.snapshot] == []
    for shown in ("09:00", "10:30", "11:15"):
        assert f'option "{shown}"' in state.snapshot
    times = driver.ref("listbox", "Time")
    assert re.search(rf"more inside scrollable panels: \d+ in \[ref={times}\]", state.snapshot)

    await driver.act("click", ref=driver.ref("button", "March 14, 2027"))
    await driver.act("click", ref=driver.ref("option", "10:30"))
    await driver.act("click", ref=driver.ref("button", "Save schedule"))
    assert await driver.text() == "Scheduled for 2027-03-14 10:30"


async def test_short_page_is_whole_with_iframes_and_tabs_and_screenshot(driver: Driver) -> None:
    other = driver.sites.other_origin_url("/frame-inner.html?who=cross")
    await driver.run.active_page.goto(driver.sites.url(f"/frames.html?other={other}"))
    await driver.run.active_page.frame_locator("#cross").get_by_role("button").wait_for()
    state = await driver.capture(screenshot=True)
    assert state.title == "Frames" and state.url.endswith(f"other={other}")
    assert not state.snapshot.startswith("#")
    assert 'button "Press same"' in state.snapshot and 'button "Press cross"' in state.snapshot
    assert re.search(r"\[ref=f\d+e\d+\]", state.snapshot)
    assert state.tabs == [f"0: Frames — {state.url} (active)"] and state.active_tab == 0
    assert state.screenshot is not None and state.screenshot[:2] == b"\xff\xd8"
    assert jpeg_size(state.screenshot) == (1280, 720)
    assert state.labels[driver.ref("heading", "Frames")] == "heading 'Frames'"


def jpeg_size(data: bytes) -> tuple[int, int]:
    index = 2
    while index < len(data):
        marker, length = data[index + 1], int.from_bytes(data[index + 2:index + 4], "big")
        if 0xC0 <= marker <= 0xC2:
            height = int.from_bytes(data[index + 5:index + 7], "big")
            return int.from_bytes(data[index + 7:index + 9], "big"), height
        index += 2 + length
    raise ValueError("no SOF marker")


def test_trim_keeps_short_snapshots_whole_and_strips_boxes() -> None:
    raw = '- generic [ref=e1] [box=0,0,100,100]:\n  - button "Go" [ref=e2] [box=0,0,10,10]'
    assert SnapshotTrim(raw, 720).text() == '- generic [ref=e1]:\n  - button "Go" [ref=e2]'


def test_on_screen_text_is_cut_short_but_every_control_on_screen_is_kept() -> None:
    long = "a long note that goes on: " + "and on " * 60
    rows = [f'  - row [ref=r{i}] [box=0,{i},1280,1]:\n'
            f'    - \'cell "{i} {long}" [ref=c{i}] [box=0,{i},600,1]\'\n'
            f'    - paragraph [ref=p{i}] [box=600,{i},600,1]: {i} {long}\n'
            f'    - button "Open {i}" [ref=b{i}] [box=1200,{i},80,1]'
            for i in range(700)]  # all on screen: 700 rows, 1 px each
    raw = "- table [ref=t] [box=0,0,1280,700]:\n" + "\n".join(rows)
    snapshot = SnapshotTrim(raw, 720).text()
    assert all(f'button "Open {i}" [ref=b{i}]' in snapshot for i in range(700))
    assert "- 'cell \"0 a long note that goes on: and on" in snapshot and "…\" [ref=c0]'" in snapshot
    assert "- paragraph [ref=p0]: 0 a long note that goes on: and on" in snapshot
    assert long not in snapshot and "left out" not in snapshot
    assert "long text is cut short after 40 characters (…)" in snapshot.split("\n", 1)[0]
