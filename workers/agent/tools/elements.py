"""Tools that act on one element of the page: click, input_text, select_option, checkbox."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from workers.agent.tools.registry import ActionError, Done, Flag, Ref, Text, ToolArgs, ToolContext, tool

_CONTROLS_JS = "e => e.getAttribute('aria-controls') || e.getAttribute('aria-owns') || ''"
# What the tools ask about an element, read in the same round trip as the check that the ref still
# names one. Its keys are Element's fields.
_ELEMENT_JS = f"""e => {{
  const link = e.closest('a[href], area[href]');
  const target = (link && link.target || '').toLowerCase();
  return {{tag: e.tagName.toLowerCase(), kind: (e.getAttribute('type') || '').toLowerCase(),
          role: e.getAttribute('role') || '', expanded: e.getAttribute('aria-expanded'),
          editable: e.tagName === 'INPUT' && !e.readOnly, controls: ({_CONTROLS_JS})(e),
          opens_tab: target !== '' && !['_self', '_parent', '_top'].includes(target)}};
}}"""


@dataclass(frozen=True)
class Element:
    """The element a ref names on the active page, its label for the outcome line, and its facts."""

    locator: Locator
    label: str
    tag: str  # lower case
    kind: str  # its type attribute, lower case
    role: str
    expanded: str | None  # aria-expanded
    editable: bool  # an <input> that is not read-only
    controls: str  # the id(s) in aria-controls or aria-owns
    opens_tab: bool  # a link whose target opens another browsing context


async def element(ctx: ToolContext, ref: str) -> Element:
    """The element `ref` names on the active page (one round trip, which never waits for it)."""
    selector = f"aria-ref={ref}"
    page = ctx.browser.active_page
    try:
        facts = await page.eval_on_selector(selector, _ELEMENT_JS)
    except PlaywrightError:
        # Told by asking again, not by Playwright's wording, which differs by case ("Failed to find
        # element" for a removed element, "Invalid frame" for one whose iframe is gone) and by version.
        if ctx.browser.crashed or page.is_closed() or await _names_an_element(page, selector):
            raise
        raise ActionError(f"no element with ref {ref} on the current page; the page has changed since, "
                          "use a ref from the latest snapshot.") from None
    return Element(page.locator(selector), ctx.label(ref), **facts)


async def _names_an_element(page: Page, selector: str) -> bool:
    """Whether an aria-ref selector still matches an element; one whose frame is gone matches none
    (Playwright raises rather than count 0 for it)."""
    try:
        return await page.locator(selector).count() > 0
    except PlaywrightError:
        return False


class ElementArgs(ToolArgs):
    ref: Ref


class TextArgs(ToolArgs):
    ref: Ref
    text: Text


class OptionArgs(ToolArgs):
    ref: Ref
    option: Text


class CheckboxArgs(ToolArgs):
    ref: Ref
    checked: Flag


@tool("click", "Click an element.")
async def click(ctx: ToolContext, args: ElementArgs) -> Done:
    target = await element(ctx, args.ref)
    if not target.opens_tab:
        await target.locator.click()
        return Done(f"click {target.label}", stale=True)
    # The new tab's page event can arrive after the click and one frame of settling: wait for the tab.
    run = ctx.browser
    new_tab = asyncio.ensure_future(run.context.wait_for_event("page", timeout=run.settle_timeout_ms))
    try:
        await target.locator.click()
    except BaseException:
        new_tab.cancel()
        raise
    with contextlib.suppress(PlaywrightTimeoutError):  # a named target may reuse an open tab
        await new_tab
    return Done(f"click {target.label}", stale=True)


@tool("input_text", "Clear a field, then type text (dates/times as ISO, e.g. 2024-05-31).")
async def input_text(ctx: ToolContext, args: TextArgs) -> Done:
    target = await element(ctx, args.ref)
    try:  # the value is typed, never recorded: the call's args keep the placeholder
        text = ctx.store.reveal(args.text)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    await fill(target, text)
    return Done(f"input_text {target.label}", f"typed {len(text)} character(s)")


async def fill(target: Element, text: str) -> None:
    kind, locator = target.kind, target.locator
    if kind in _ISO_FORMATS:
        text = _iso_value(kind, text)
        if not _ISO_FORMATS[kind][0].fullmatch(text):
            raise ActionError(f"'{text}' is not a valid {kind} value; use ISO format "
                              f"like {_ISO_FORMATS[kind][1]}.")
    try:
        await locator.fill(text)
    except PlaywrightError as exc:
        if "not an <input>" not in str(exc):
            raise
        await locator.click()  # not fillable (e.g. a custom widget): type like a user instead
        await locator.press("ControlOrMeta+a")
        await locator.press_sequentially(text)


_ISO_FORMATS = {
    "date": (re.compile(r"\d{4}-\d{2}-\d{2}"), "2024-05-31"),
    "time": (re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?"), "13:45"),
    "datetime-local": (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?"), "2024-05-31T13:45"),
    "month": (re.compile(r"\d{4}-\d{2}"), "2024-05"),
    "week": (re.compile(r"\d{4}-W\d{2}"), "2024-W22"),
}


def _iso_value(kind: str, text: str) -> str:
    text = text.strip()
    if kind == "datetime-local":
        text = re.sub(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?).*$", r"\1T\2", text)
    elif kind == "date":
        text = text[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", text) else text
    elif kind == "time":
        text = text[:8] if re.match(r"^\d{2}:\d{2}", text) else text
    return text


@tool("select_option", "Pick an option of a select or listbox by its label or value.")
async def select_option(ctx: ToolContext, args: OptionArgs) -> Done:
    target = await element(ctx, args.ref)
    if target.tag == "select":
        chosen = await _select_native(target.locator, args.option)
        return Done(f"select_option {target.label}", f"selected '{chosen}'")
    await _select_aria(ctx.browser.active_page, target, args.option)
    return Done(f"select_option {target.label}", f"picked '{args.option}'", stale=True)


async def _select_native(locator: Locator, wanted: str) -> str:
    options: list[list[str]] = await locator.evaluate(
        "s => [...s.options].map(o => [o.label.trim(), o.value])")
    target = wanted.strip()
    for match in (lambda lbl, val: lbl == target or val == target,
                  lambda lbl, val: target.casefold() in (lbl.casefold(), val.casefold()),
                  lambda lbl, val: target.casefold() in lbl.casefold()):
        hits = [index for index, (lbl, val) in enumerate(options) if match(lbl, val)]
        if hits:
            await locator.select_option(index=hits[0])
            return options[hits[0]][0]
    labels = ", ".join(f"'{lbl}'" for lbl, _ in options[:30])
    raise ActionError(f"no option '{wanted}'; the options are {labels}.")


async def _select_aria(page: Page, target: Element, wanted: str) -> None:
    """Custom ARIA combobox/listbox: open it if needed, then click the option with that name."""
    locator, role, controlled = target.locator, target.role, target.controls
    if role == "option":
        await locator.click()
        return
    if role != "listbox":
        if target.expanded != "true":
            await locator.click()
        if target.editable:
            await locator.fill(wanted)  # an editable combobox filters its options as the user types
        if not controlled and (target.expanded != "true" or target.editable):
            controlled = await locator.evaluate(_CONTROLS_JS)  # some widgets name their list once open
    scope: Page | Locator = locator if role == "listbox" else page
    if controlled:
        scope = page.locator(f"id={controlled.split()[0]}")
    options = scope.get_by_role("option", name=wanted, exact=True)
    if await options.count() == 0:
        options = scope.get_by_role("option", name=wanted)
    try:
        await options.first.wait_for(state="visible", timeout=2000)
    except PlaywrightTimeoutError:
        names = await scope.get_by_role("option").all_inner_texts()
        listed = ", ".join(f"'{name.strip()}'" for name in names[:30]) or "none visible"
        raise ActionError(f"no option '{wanted}' appeared; the options are {listed}.") from None
    await options.first.click()


@tool("checkbox", "Check or uncheck a checkbox, radio or switch.")
async def checkbox(ctx: ToolContext, args: CheckboxArgs) -> Done:
    target = await element(ctx, args.ref)
    await target.locator.set_checked(args.checked)
    return Done(f"checkbox {target.label}", "checked" if args.checked else "unchecked")
