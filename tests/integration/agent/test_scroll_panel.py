"""A link far down a fixed side panel that scrolls on its own: scrolling the window never shows it, so the
snapshot's note names the panel's ref and the model scrolls inside the panel with it."""

from __future__ import annotations

import re

import pytest

from tests.fakes.fake_llm import last_user_text
from tests.integration.agent.conftest import Agent
from tests.sites.refs import ref_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

PANEL = {"role": "navigation", "name": "Chapters"}
FAR_LINK = {"role": "link", "name": "Chapter 55"}


async def test_scrolls_inside_the_panel_the_hint_names_then_clicks_a_far_link(agent: Agent) -> None:
    script = [[{"name": "scroll", "args": {"ref": PANEL, "direction": "down"}}],
              [{"name": "click", "args": {"ref": FAR_LINK}}],
              [{"name": "complete", "args": {"output": None, "summary": "Opened it."}}]]
    outcome, store, token = await agent.run(script, "/panel.html", max_steps=4)
    assert outcome.status == "completed"

    first, second, third = (last_user_text(request) for request in agent.fake.requests_for(token))
    panel_ref = ref_for(first, PANEL["role"], PANEL["name"])
    hint = re.search(r"more inside scrollable panels: (\d+) in \[ref=([^\]]+)\]", first)
    assert hint is not None and hint[2] == panel_ref and int(hint[1]) > 0
    assert 'link "Chapter 55"' not in first and 'link "Chapter 55"' in second
    assert "Opened chapter 55" in third
    assert [(a["action_type"], a["succeeded"]) for a in store.actions] == [
        ("scroll", True), ("click", True), ("complete", True)]
    assert store.actions[0]["outcome"] == ("scroll down in navigation 'Chapters' -> scrolled to 576px "
                                           "of the panel")
    assert store.actions[1]["outcome"] == "click link 'Chapter 55' -> navigated to /panel.html"
