"""Scripted planner answers shared by the end-to-end tests (refs given as role+name, resolved by the fake)."""

from __future__ import annotations

from typing import Any

FORM_PATH = "/guestbook.html"
GREETING = {"greeting": "Thanks, Ada!"}


def form_script(name: str = "Ada") -> list[Any]:
    """Sign the guest book, then report the greeting the site answered with."""
    return [
        [{"name": "input_text", "args": {"ref": {"role": "textbox", "name": "Name"}, "text": name}},
         {"name": "click", "args": {"ref": {"role": "button", "name": "Sign"}}}],
        [{"name": "complete", "args": {"output": {"greeting": f"Thanks, {name}!"}, "summary": "Signed."}}],
    ]


def stall_script(steps: int = 60) -> list[Any]:
    """A run that keeps busy (one 1 s wait per step) until it is stopped."""
    return [[{"name": "wait", "args": {"seconds": 1}}] for _ in range(steps)]
