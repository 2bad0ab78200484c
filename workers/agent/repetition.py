"""A planner that repeats itself: the same action on the same element while the page does not change.

A model that keeps doing what has no effect (typing the same text into the same field, clicking a
button that does nothing, scrolling at the bottom of a page) would otherwise run until the step limit.
The loop shows this guard each step's page and the calls it applied: after `limit` identical steps in a
row from the same page, the model is told in its next prompt; doing it once more ends the run
`terminated`. Idle tools (wait) act on nothing: a step of only those starts the count again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from workers.agent.contract import RunOutcome, ToolCall
from workers.agent.page_state import PageState
from workers.agent.tools import get_tool

StepKey = tuple[str, tuple[tuple[str, str], ...]]  # (the page's digest, the calls applied)


@dataclass
class RepetitionGuard:
    limit: int  # 0: off
    count: int = 0  # identical steps in a row, each from the same page
    action: str = ""  # the repeated action as the history names it, e.g. "input_text textbox 'Email'"
    _last: StepKey | None = field(default=None, repr=False)

    def observe(self, state: PageState, calls: list[ToolCall], action: str) -> None:
        """A step applied `calls` to the page `state` describes."""
        if all((tool := get_tool(call.name)) is not None and tool.idle for call in calls):
            self.count, self._last = 0, None
            return
        page = hashlib.sha256(f"{state.url}\n{state.snapshot}".encode()).hexdigest()
        key = (page, tuple((call.name, json.dumps(call.args, sort_keys=True, default=str)) for call in calls))
        self.count = self.count + 1 if key == self._last else 1
        self._last, self.action = key, action

    def notice(self) -> str | None:
        """What the model is told in its next prompt once it repeated itself `limit` times."""
        if not self.limit or self.count != self.limit:
            return None
        return (f"you did the same thing ({self.action}) {self.count} times in a row and the page did not "
                "change. Do something different; if the task cannot be done, call terminate with the "
                "reason. Doing it again ends the run.")

    def stuck(self, step: int) -> RunOutcome | None:
        """How the run ends when the model repeated itself even after the notice; None otherwise."""
        if not self.limit or self.count <= self.limit:
            return None
        return RunOutcome("terminated", failure_reason=(
            f"The model was stuck in a loop: it repeated {self.action} {self.count} times in a row with "
            f"no change on the page, even after being told (step {step}). Check that the page can do what "
            "the prompt asks, or say in the prompt what to do when it cannot."))
