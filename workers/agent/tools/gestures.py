"""Tools of the mouse and keyboard that are not about one form field: hover, keypress, scroll."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from pydantic import AliasChoices, BeforeValidator, Field

from workers.agent.page_state import SCROLLABLE_JS
from workers.agent.tools.elements import ElementArgs, element
from workers.agent.tools.registry import ActionError, Done, Ref, ToolArgs, ToolContext, tool


@tool("hover", "Hover an element (opens hover menus).")
async def hover(ctx: ToolContext, args: ElementArgs) -> Done:
    target = await element(ctx, args.ref)
    await target.locator.hover()
    return Done(f"hover {target.label}", stale=True)


def _keys(raw: Any) -> list[str]:
    keys = [str(key) for key in raw] if isinstance(raw, list) else [] if raw is None else [str(raw)]
    if not keys or not all(keys):
        raise ValueError("'keys' must be a list of Playwright key names such as [\"Enter\"].")
    return [str(key) for key in keys]


def _direction(raw: Any) -> str:
    direction = str(raw).strip().lower()
    if direction not in {"up", "down"}:
        raise ValueError(f"direction must be 'up' or 'down', not '{direction}'.")
    return direction


class KeypressArgs(ToolArgs):
    keys: Annotated[list[str], BeforeValidator(_keys)] = Field(validation_alias=AliasChoices("keys", "key"))


class ScrollArgs(ToolArgs):
    direction: Annotated[Literal["up", "down"], BeforeValidator(_direction)]
    ref: Ref | None = None


@tool("keypress", 'Press keys on the focused element, e.g. ["Enter"] or ["Control+a"].')
async def keypress(ctx: ToolContext, args: KeypressArgs) -> Done:
    page = ctx.browser.active_page
    for key in args.keys:
        try:
            await page.keyboard.press(key)
        except PlaywrightError as exc:
            if "Unknown key" in str(exc):
                raise ActionError(f"'{key}' is not a key name; use names like Enter, Tab, Escape, "
                                  "ArrowDown, Control+a.") from None
            raise
    keys = args.keys
    return Done(f"keypress {'+'.join(keys) if len(keys) == 1 else ', '.join(keys)}", stale=True)


# Scrolls the nearest panel holding `el` (or `el` itself) by 80% of its height: [before, after] or null.
_SCROLL_PANEL_JS = f"""(el, down) => {{
  const scrollable = {SCROLLABLE_JS};
  for (; el && el !== document.scrollingElement; el = el.parentElement) {{
    if (!scrollable(el)) continue;
    const before = Math.round(el.scrollTop);
    el.scrollBy({{top: (down ? 0.8 : -0.8) * el.clientHeight, behavior: 'instant'}});
    return [before, Math.round(el.scrollTop)];
  }}
  return null;
}}"""


@tool("scroll", "Scroll the page by one screen, or a scrollable panel given its ref.")
async def scroll(ctx: ToolContext, args: ScrollArgs) -> Done:
    direction = args.direction
    if args.ref is not None:
        return await _scroll_panel(ctx, args.ref, direction)
    page = ctx.browser.active_page
    height = (page.viewport_size or {"height": 720})["height"]
    delta = height * 0.8 * (1 if direction == "down" else -1)
    before = await _scroll_y(page)
    await page.mouse.move((page.viewport_size or {"width": 1280})["width"] / 2, height / 2)
    await page.mouse.wheel(0, delta)
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    after = await _scroll_y(page)
    if after == before:  # the wheel hit something that does not scroll: move the window itself
        await page.evaluate("dy => window.scrollBy(0, dy)", delta)
        after = await _scroll_y(page)
    detail = (f"already at the {'bottom' if direction == 'down' else 'top'}" if after == before
              else f"scrolled to {after}px of the page")
    return Done(f"scroll {direction}", detail, stale=after != before)


async def _scroll_panel(ctx: ToolContext, ref: str, direction: str) -> Done:
    target = await element(ctx, ref)
    label = target.label
    moved = await target.locator.evaluate(_SCROLL_PANEL_JS, direction == "down")
    if moved is None:
        raise ActionError(f"{label} is not a scrollable panel nor inside one; scroll without a ref to "
                          "move the page.")
    before, after = moved
    detail = (f"already at the {'bottom' if direction == 'down' else 'top'} of the panel" if after == before
              else f"scrolled to {after}px of the panel")
    return Done(f"scroll {direction} in {label}", detail, stale=after != before)


async def _scroll_y(page: Page) -> int:
    return int(await page.evaluate("() => Math.round(window.scrollY)"))
