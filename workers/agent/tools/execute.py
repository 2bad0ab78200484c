"""Runs one tool call on the page: validates its arguments (registry), calls its handler, waits for
what it set off, and says in one line what happened.

Liberal in what it accepts from a model, strict in what it executes: a bad ref, tool or argument comes
back as a failed ActionResult whose outcome says what to do instead; it never raises for model mistakes.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError

from app.platform.url_policy import UrlDenied
from workers.agent.contract import ActionResult, ToolCall
from workers.agent.page_state import parse_ref
from workers.agent.tools.registry import ActionError, ToolArgsError, ToolContext, get_tool, validate
from workers.agent.tools.settle import NavigationWatch, settle


async def apply(ctx: ToolContext, call: ToolCall) -> ActionResult:
    """Run `call`; a finishing tool (complete, terminate) only decides how the run ends."""
    tool = get_tool(call.name)
    try:
        args = validate(call.name, call.args)
    except ToolArgsError as exc:
        return ActionResult(False, f"{_describe(ctx, call)} -> {exc.detail}", problem=exc.detail)
    assert tool is not None  # validate() knows every registered tool
    if tool.finishes:
        try:
            done = await tool.handler(ctx, args)
        except ActionError as exc:
            return ActionResult(False, f"{call.name} -> rejected: {exc}", problem=str(exc))
        return ActionResult(True, f"{done.label} -> {done.detail}", ends_run=done.ends_run)
    run = ctx.browser
    if run.crashed:
        return ActionResult(False, f"{call.name} -> the browser is gone ({run.crash_reason}).")
    page_before, url_before, tabs_before = run.active_page, run.active_page.url, len(run.pages)
    with NavigationWatch(page_before) as watch:
        try:
            done = await tool.handler(ctx, args)
        except (ActionError, UrlDenied) as exc:
            return ActionResult(False, f"{_describe(ctx, call)} -> {exc}",
                                page_changed=_navigated(run.active_page.url, url_before), problem=str(exc))
        except PlaywrightError as exc:
            problem = _explain(exc)
            return ActionResult(False, f"{_describe(ctx, call)} -> {problem}",
                                page_changed=_navigated(run.active_page.url, url_before), problem=problem)
        else:
            await settle(run, watch, run.settle_timeout_ms)
        finally:
            run.acted_at = time.time()
    page = run.active_page
    opened = len(run.pages) > tabs_before
    if opened:
        effect = f"opened tab {len(run.pages) - 1} ({page.url})"
    elif page is not page_before:
        effect = f"switched to tab {run.active_index} ({page.url})"
    elif page.url != url_before:
        effect = f"navigated to {_short_url(page.url, url_before)}"
    else:
        effect = done.detail
    changed = done.stale or opened or page is not page_before or page.url != url_before
    return ActionResult(True, f"{done.label} -> {effect}", page_changed=changed)


def _navigated(url: str, url_before: str) -> bool:
    return url != url_before


def _describe(ctx: ToolContext, call: ToolCall) -> str:
    raw = call.args.get("ref")
    ref = parse_ref(raw) if raw is not None else None
    return call.name if ref is None else f"{call.name} {ctx.label(ref)}"


def _explain(exc: PlaywrightError) -> str:
    """Playwright's error, boiled down to what the model should do about it."""
    text = str(exc)
    if "intercepts pointer events" in text:
        blocker = re.findall(r"(<[^\n]*?>)[^\n]* intercepts pointer events", text)
        what = blocker[-1][:80] if blocker else "another element"
        return f"it is covered by {what}; close or dismiss that overlay first."
    if "element is not enabled" in text or "element is disabled" in text:
        return "it is disabled; complete the required fields first."
    if "element is not visible" in text or "element is outside of the viewport" in text:
        return "it is not visible; scroll to it, hover its menu or open its section first."
    if "Not a checkbox or radio button" in text:
        return "it is not a checkbox or radio button; use click instead."
    if "Cannot uncheck radio" in text:
        return "a radio button cannot be unchecked; check another option of its group instead."
    if "not a <select> element" in text:
        return "it is not a select; click it to open its options."
    if "Target page, context or browser has been closed" in text or "Target crashed" in text:
        return "the page or browser was closed."
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return re.sub(r"^[A-Za-z]+\.[A-Za-z_]+: ", "", first).rstrip(".") + "."



def _short_url(url: str, previous: str) -> str:
    now, before = urlsplit(url), urlsplit(previous)
    if (now.scheme, now.netloc) == (before.scheme, before.netloc):
        return (now.path or "/") + (f"?{now.query}" if now.query else "")
    return url
