"""Recorder: writes down the calls a run applies as script steps (the loop's ActionRecorder).

Only calls that succeeded and touched the page are kept; `wait` (replay waits on the page itself) and
`ask_human` (a person's help is not repeatable) are left out. An element's target is described before
the call runs, while the element is surely still there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.scripts.document import ScriptDoc, ScriptStep, Target
from workers.agent.browser import BrowserRun
from workers.agent.contract import ActionResult, ToolCall
from workers.agent.page_state import parse_ref
from workers.agent.replay.locate import describe, page_title

UNRECORDED = frozenset({"wait", "ask_human", "terminate"})


class Recorder:
    def __init__(self, browser: BrowserRun, start_url: str | None) -> None:
        self._browser = browser
        self.script = ScriptDoc(start_url=start_url)
        self._pending: tuple[ToolCall, Target | None, str, str | None] | None = None

    async def before(self, call: ToolCall, labels: Mapping[str, str]) -> None:
        if call.name in UNRECORDED:
            self._pending = None
            return
        page = self._browser.active_page
        ref = parse_ref(call.args.get("ref")) if call.args.get("ref") is not None else None
        target = await describe(page, ref, labels) if ref else None
        self._pending = (call, target, page.url, await page_title(page))

    def after(self, call: ToolCall, result: ActionResult) -> None:
        pending, self._pending = self._pending, None
        if pending is None or pending[0] is not call or not result.succeeded:
            return
        if call.name == "complete":
            if result.ends_run is not None:
                self.script.output = result.ends_run.output
                self.script.summary = result.ends_run.summary
            return
        _, target, url, title = pending
        self.script.steps.append(ScriptStep(tool=call.name, args=step_args(call.args), target=target, url=url,
                                            title=title, intent=result.outcome.split(" -> ", 1)[0]))


def step_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A call's arguments as a script keeps them: without the snapshot's ref and the model's reasoning."""
    return {key: value for key, value in args.items() if key not in ("ref", "reasoning")}
