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
