"""What the planner sees of the page: URL, title, tabs, the AI aria snapshot and a viewport screenshot.

Long pages are trimmed to the viewport neighbourhood, but interactive elements and headings are kept
wherever they are, so a task never loses the element it needs; the first line says how much was left out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import weakref
from dataclasses import dataclass

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from workers.browser import BrowserRun

SNAPSHOT_TIMEOUT_MS = 10_000
SCREENSHOT_QUALITY = 60
FULL_SNAPSHOT_MAX_LINES = 300  # shorter snapshots go to the model whole
NEIGHBOURHOOD_VIEWPORTS = 1.0  # kept above and below the viewport when trimming
MAX_SNAPSHOT_CHARS = 12_000  # about 3,000 tokens

KEPT_ROLES = frozenset({
    "button", "link", "textbox", "searchbox", "combobox", "listbox", "option", "checkbox", "radio",
    "switch", "slider", "spinbutton", "menuitem", "menuitemcheckbox", "menuitemradio", "tab", "treeitem",
    "heading", "iframe", "dialog", "alertdialog", "alert",
})

_BOX = re.compile(r" \[box=(-?[\d.]+),(-?[\d.]+),([\d.]+),([\d.]+)\]")
_ROLE_NAME = re.compile(r'^\s*- ([\w-]+)(?: "((?:[^"\\]|\\.)*)")?')
_REF = re.compile(r"\[ref=([^\]]+)\]")


@dataclass
class PageState:
    url: str
    title: str
    tabs: list[str]
    active_tab: int
    snapshot: str
    screenshot: bytes | None


async def capture(run: BrowserRun, *, screenshot: bool) -> PageState:
    page = run.active_page
    shot_task = asyncio.ensure_future(take_screenshot(page)) if screenshot else None
    raw = await _aria_snapshot(page)
    if _TEXTBOX_VALUE.search(raw):  # only a textbox that shows a value can show a password
        raw = mask_passwords(raw, await _password_values(page))
    shot = await shot_task if shot_task is not None else None
    viewport = page.viewport_size or {"width": 1280, "height": 720}
    snapshot = trim_snapshot(raw, viewport["height"])
    run.element_labels = element_labels(raw)
    titles = await asyncio.gather(*(_title(tab) for tab in run.pages))
    tabs = [f"{index}: {title or '(untitled)'} — {tab.url}" + (" (active)" if tab is page else "")
            for index, (tab, title) in enumerate(zip(run.pages, titles, strict=True))]
    return PageState(url=page.url, title=titles[run.active_index] if run.pages else "", tabs=tabs,
                     active_tab=run.active_index, snapshot=snapshot, screenshot=shot)


_TEXTBOX_VALUE = re.compile(r"^(\s*- textbox\b.*?\]): (.+)$", re.MULTILINE)
PASSWORD_MASK = "••••••••"
_PASSWORD_VALUES_JS = ("() => [...document.querySelectorAll('input[type=password]')]"
                       ".map(e => e.value).filter(Boolean)")


async def _password_values(page: Page) -> set[str]:
    values: set[str] = set()
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):
            values.update(await frame.evaluate(_PASSWORD_VALUES_JS))
    return values


def mask_passwords(snapshot: str, values: set[str]) -> str:
    """The aria snapshot shows a textbox's value, password fields' too: mask those, so typed passwords
    reach neither the model nor the stored snapshot."""
    if not values:
        return snapshot
    forms = {form for value in values for form in (value, json.dumps(value)[1:-1])}

    def masked(line: str) -> str:
        match = _TEXTBOX_VALUE.match(line)
        if match and any(form in match[2] for form in forms):
            return f"{match[1]}: {PASSWORD_MASK}"
        return line

    return "\n".join(masked(line) for line in snapshot.split("\n"))


async def _aria_snapshot(page: Page) -> str:
    try:
        return await page.aria_snapshot(mode="ai", boxes=True, timeout=SNAPSHOT_TIMEOUT_MS)
    except PlaywrightError:  # typically a navigation replaced the document mid-snapshot
        with contextlib.suppress(PlaywrightError):
            await page.wait_for_load_state("domcontentloaded", timeout=SNAPSHOT_TIMEOUT_MS)
    try:
        return await page.aria_snapshot(mode="ai", boxes=True, timeout=SNAPSHOT_TIMEOUT_MS)
    except PlaywrightError as exc:
        return f"- (the page could not be read: {str(exc).strip().splitlines()[0]})"


_CDP_SESSIONS: weakref.WeakKeyDictionary[Page, CDPSession] = weakref.WeakKeyDictionary()


async def take_screenshot(page: Page) -> bytes | None:
    """The viewport as a JPEG, or None when the page went away. Straight through CDP: page.screenshot()
    first prepares every frame, which (profiled) makes it 2-3x slower while the run's video records."""
    try:
        session = _CDP_SESSIONS.get(page)
        if session is None:
            session = _CDP_SESSIONS[page] = await page.context.new_cdp_session(page)
        shot = await asyncio.wait_for(session.send("Page.captureScreenshot", {
            "format": "jpeg", "quality": SCREENSHOT_QUALITY, "optimizeForSpeed": True,
        }), SNAPSHOT_TIMEOUT_MS / 1000)
    except (PlaywrightError, TimeoutError):
        return None
    return base64.b64decode(shot["data"])


async def _title(page: Page) -> str:
    try:
        return (await asyncio.wait_for(page.title(), 2.0))[:80]
    except (PlaywrightError, TimeoutError):
        return ""


def element_labels(snapshot: str) -> dict[str, str]:
    """ref -> "role 'name'" for every element line that has a ref."""
    labels: dict[str, str] = {}
    for line in snapshot.splitlines():
        ref = _REF.search(line)
        match = _ROLE_NAME.match(line)
        if ref and match:
            role, name = match.groups()
            labels[ref.group(1)] = f"{role} '{name}'" if name else role
    return labels


@dataclass
class _Line:
    text: str  # without its box
    depth: int
    parent: int | None
    top: float | None  # page-viewport coordinates; None when the line has no box of its own
    bottom: float | None
    kept_role: bool


def trim_snapshot(raw: str, viewport_height: int) -> str:
    """Strip the boxes; on a long page keep, within MAX_SNAPSHOT_CHARS, what is nearest to the viewport:
    its neighbourhood first, then interactive elements further away. Scrolling moves the viewport, so
    every element is reachable; the note says how many were left out above and below."""
    lines = _parse(raw)
    if len(lines) <= FULL_SNAPSHOT_MAX_LINES:
        return "\n".join(line.text for line in lines)
    low, high = -NEIGHBOURHOOD_VIEWPORTS * viewport_height, (1 + NEIGHBOURHOOD_VIEWPORTS) * viewport_height
    keep = [False] * len(lines)
    size = 0

    def take(index: int | None) -> None:
        nonlocal size
        while index is not None and not keep[index]:  # ancestors too: they keep the tree readable
            keep[index] = True
            size += len(lines[index].text) + 1
            index = lines[index].parent

    extents = [_extent(lines, index) for index in range(len(lines))]
    candidates: list[tuple[float, int]] = []  # (distance from the viewport, line), nearest first
    for index, line in enumerate(lines):
        top, bottom = extents[index]
        distance = 0.0 if top is None or bottom is None else max(0.0, top - viewport_height, -bottom)
        if line.kept_role or top is None or bottom is None or (bottom >= low and top <= high):
            candidates.append((distance, index))
    for _distance, index in sorted(candidates):
        if size >= MAX_SNAPSHOT_CHARS:
            break
        take(index)
    for index, line in enumerate(lines):  # a kept element keeps its properties (e.g. a link's /url)
        if not keep[index] and line.parent is not None and keep[line.parent] \
                and line.text.lstrip().startswith("- /"):
            keep[index] = True
    left_out = [extents[index][1] or 0.0 for index, kept in enumerate(keep) if not kept]
    above = sum(1 for bottom in left_out if bottom < 0)
    below = len(left_out) - above
    text = "\n".join(line.text for line, kept in zip(lines, keep, strict=True) if kept)
    note = (f"# Long page: showing what is nearest to the viewport; {above} other element(s) above and "
            f"{below} below are left out (scroll up/down to see them).")
    return note + "\n" + text


def _parse(raw: str) -> list[_Line]:
    lines: list[_Line] = []
    stack: list[int] = []  # indexes of the open ancestors
    offsets: dict[int, float] = {}  # iframe line index -> its top, added to the boxes of its content
    for raw_line in raw.splitlines():
        depth = (len(raw_line) - len(raw_line.lstrip(" "))) // 2
        while stack and lines[stack[-1]].depth >= depth:
            stack.pop()
        parent = stack[-1] if stack else None
        offset = next((offsets[i] for i in reversed(stack) if i in offsets), 0.0)
        box = _BOX.search(raw_line)
        top = bottom = None
        if box is not None:
            y, height = float(box.group(2)), float(box.group(4))
            if height > 0:
                top, bottom = offset + y, offset + y + height
        match = _ROLE_NAME.match(raw_line)
        role = match.group(1) if match else ""
        lines.append(_Line(_BOX.sub("", raw_line), depth, parent, top, bottom, role in KEPT_ROLES))
        if role == "iframe" and top is not None:
            offsets[len(lines) - 1] = top
        stack.append(len(lines) - 1)
    return lines


def _extent(lines: list[_Line], index: int) -> tuple[float | None, float | None]:
    """The line's own vertical extent, else its nearest boxed ancestor's."""
    current: int | None = index
    while current is not None:
        line = lines[current]
        if line.top is not None:
            return line.top, line.bottom
        current = line.parent
    return None, None
