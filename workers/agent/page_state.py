"""What the planner sees of the page: URL, title, tabs, the AI aria snapshot and a viewport screenshot.

Long pages are trimmed: everything on screen is kept (long text on it cut short if it alone exceeds the
cap, never a control), then what is nearest to the viewport; the first line says how much was left out
that scrolling can reveal, naming the panels that scroll on their own (a fixed sidebar) so the model can
scroll inside them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import weakref
from dataclasses import dataclass, field

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from workers.agent.browser import BrowserRun

SNAPSHOT_TIMEOUT_MS = 10_000
SCREENSHOT_QUALITY = 60
FULL_SNAPSHOT_MAX_LINES = 300  # shorter snapshots go to the model whole
NEIGHBOURHOOD_VIEWPORTS = 1.0  # kept above and below the viewport when trimming
MAX_SNAPSHOT_CHARS = 12_000  # about 3,000 tokens
MIN_SHORTENED_CHARS = 40  # on-screen text is never cut shorter than this
MAX_PANEL_CANDIDATES = 32  # boxes checked for scrollable panels per capture

KEPT_ROLES = frozenset({
    "button", "link", "textbox", "searchbox", "combobox", "listbox", "option", "checkbox", "radio",
    "switch", "slider", "spinbutton", "menuitem", "menuitemcheckbox", "menuitemradio", "tab", "treeitem",
    "heading", "iframe", "dialog", "alertdialog", "alert",
})

_BOX = re.compile(r" \[box=(-?[\d.]+),(-?[\d.]+),([\d.]+),([\d.]+)\]")
_ROLE_NAME = re.compile(r'^\s*- ([\w-]+)(?: "((?:[^"\\]|\\.)*)")?')
_REF = re.compile(r"\[ref=([^\]\s]+)\]")  # how the snapshot writes a ref
_REF_FORM = re.compile(r"(?:f\d+)?e\d+")  # e12, or f1e3 inside an iframe


def refs_in(snapshot: str) -> set[str]:
    """The refs a snapshot shows."""
    return set(_REF.findall(snapshot))


def parse_ref(raw: object) -> str | None:
    """A ref as the model may spell it ("e5", "#e5", "ref=e5", "[ref=e5]", "f1e2", 5, "5") -> "e5";
    None when it is not a ref at all."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"e{raw}"
    if not isinstance(raw, str):
        return None
    text = raw.strip().strip("[]#").removeprefix("ref=").removeprefix("aria-ref=").strip()
    if text.isdigit():
        return f"e{text}"
    return text if _REF_FORM.fullmatch(text) else None


@dataclass
class PageState:
    url: str
    title: str
    tabs: list[str]
    active_tab: int
    snapshot: str
    screenshot: bytes | None
    labels: dict[str, str] = field(default_factory=dict)  # ref -> "button 'Save'", for action outcomes


async def capture(run: BrowserRun, *, screenshot: bool) -> PageState:
    page = run.active_page
    shot_task = asyncio.ensure_future(take_screenshot(page)) if screenshot else None
    pages = list(run.pages)  # a tab may open or close while the titles are read
    if page not in pages:
        pages.append(page)
    titles_task = asyncio.gather(*(_title(tab) for tab in pages))  # read while the snapshot is taken
    try:
        raw = await _aria_snapshot(page)
        if _TEXTBOX_VALUE.search(raw):  # only a textbox that shows a value can show a password
            raw = mask_passwords(raw, await _password_values(page))
        titles = await titles_task
    finally:
        titles_task.cancel()  # only still running when the capture was cancelled meanwhile
    shot = await shot_task if shot_task is not None else None
    viewport = page.viewport_size or {"width": 1280, "height": 720}
    trim = SnapshotTrim(raw, viewport["height"])
    snapshot = trim.text(await scrolling(page, trim.panel_candidates()) if trim.trimmed else None)
    tabs = [f"{index}: {title or '(untitled)'} — {tab.url}" + (" (active)" if tab is page else "")
            for index, (tab, title) in enumerate(zip(pages, titles, strict=True))]
    active = pages.index(page)  # the tab this state describes, even if another became active meanwhile
    return PageState(url=page.url, title=titles[active], tabs=tabs, active_tab=active, snapshot=snapshot,
                     screenshot=shot, labels=element_labels(raw))


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


# An element the user can scroll on its own: its content overflows and its style lets it scroll.
SCROLLABLE_JS = ("el => el.scrollHeight > el.clientHeight + 1 "
                 "&& /auto|scroll|overlay/.test(getComputedStyle(el).overflowY)")
# How far the window scrolls up and down from here; and for each box: is the element drawn there (at the
# centre of its part on screen), or an ancestor with that same box, a scrollable panel other than the
# document itself?
_SCROLLING_JS = f"""boxes => {{
  const scrollable = {SCROLLABLE_JS};
  const near = (a, b) => Math.abs(a - b) <= 1;
  const root = document.scrollingElement || document.documentElement;
  const panels = boxes.map(([x, y, width, height]) => {{
    const cx = (Math.max(x, 0) + Math.min(x + width, innerWidth)) / 2;
    const cy = (Math.max(y, 0) + Math.min(y + height, innerHeight)) / 2;
    for (const hit of document.elementsFromPoint(cx, cy)) {{
      for (let el = hit; el && el !== document.scrollingElement; el = el.parentElement) {{
        const r = el.getBoundingClientRect();
        if (near(r.x, x) && near(r.y, y) && near(r.width, width) && near(r.height, height)
            && scrollable(el)) return true;
      }}
    }}
    return false;
  }});
  return [root.scrollTop, Math.max(0, root.scrollHeight - root.clientHeight - root.scrollTop), panels];
}}"""


@dataclass(frozen=True)
class Scrolling:
    """What scrolling can reveal: how far the window scrolls up and down from where it is (px), and which
    candidate lines are panels that scroll on their own."""

    up: float
    down: float
    panels: list[int]


async def scrolling(page: Page, candidates: dict[int, tuple[float, float, float, float]]) -> Scrolling | None:
    """One page script: the window's scroll range and which candidates scroll on their own; None when the
    document went away meanwhile."""
    try:
        up, down, scrolls = await page.evaluate(_SCROLLING_JS, list(candidates.values()))
    except PlaywrightError:
        return None
    return Scrolling(float(up), float(down),
                     [line for line, scrolls_alone in zip(candidates, scrolls, strict=True) if scrolls_alone])


SCREENCAST_CATCH_UP_S = 0.035
FRAME_INTERVAL_S = 1 / 60  # Chromium draws at most one frame per display frame
_CDP_SESSIONS: weakref.WeakKeyDictionary[Page, CDPSession] = weakref.WeakKeyDictionary()


async def step_screenshot(run: BrowserRun) -> bytes | None:
    """The step's screenshot: the screencast's newest frame of the active tab (Chromium already encoded it
    for the recording and the live view), else a fresh one. The frame of what the last action painted
    reaches the screencast a few ms after the action ended: one Chromium drew less than a frame interval
    before that end, or later, is the newest that can show the page as the action left it, so it is
    taken as soon as it is there; else the newest frame SCREENCAST_CATCH_UP_S after the action (the
    snapshot is taken meanwhile)."""
    screencast = run.screencast
    if screencast is not None and screencast.page is run.active_page:
        left = run.acted_at + SCREENCAST_CATCH_UP_S - time.time()
        frame = await screencast.frame_swapped_since(run.acted_at - FRAME_INTERVAL_S, max(0.0, left))
        if frame is not None and screencast.page is run.active_page:
            return frame.jpeg
    return await take_screenshot(run.active_page)


async def take_screenshot(page: Page) -> bytes | None:
    """The viewport as a JPEG, or None when the page went away. Straight through CDP: page.screenshot()
    first prepares every frame, which (profiled) makes it 2-3x slower while the run's video records."""
    try:
        session = _CDP_SESSIONS.get(page)
        if session is None:
            session = _CDP_SESSIONS[page] = await page.context.new_cdp_session(page)
        async with asyncio.timeout(SNAPSHOT_TIMEOUT_MS / 1000):
            shot = await session.send("Page.captureScreenshot", {
                "format": "jpeg", "quality": SCREENSHOT_QUALITY, "optimizeForSpeed": True,
            })
    except (PlaywrightError, TimeoutError):
        return None
    return base64.b64decode(shot["data"])


async def _title(page: Page) -> str:
    try:
        async with asyncio.timeout(2.0):
            return (await page.title())[:80]
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
    box: tuple[float, float, float, float] | None  # x, y, width, height in the top document; None in iframes


class SnapshotTrim:
    """A long snapshot cut down to what is on screen, whole, then, within MAX_SNAPSHOT_CHARS, to what is
    nearest to it: its neighbourhood first, then interactive elements further away. When what is on
    screen alone exceeds the cap, its long non-interactive text (cells, paragraphs) is cut short; no
    element on screen is ever left out. The note counts what was left out that scrolling reveals: above
    and below within the window's scroll range, and inside scrollable panels (e.g. a fixed sidebar), which
    scrolling the window never moves."""

    def __init__(self, raw: str, viewport_height: int) -> None:
        self.lines = _parse(raw)
        self.viewport_height = viewport_height
        self.trimmed = len(self.lines) > FULL_SNAPSHOT_MAX_LINES
        self.keep = [not self.trimmed] * len(self.lines)
        self.extents: list[tuple[float | None, float | None]] = []
        self.shortenable: set[int] = set()  # on-screen lines whose text may be cut short
        self.text_limit: int | None = None  # ... to this many characters (name and value each)
        if self.trimmed:
            self.extents = [_extent(self.lines, index) for index in range(len(self.lines))]
            self._choose()

    def _take(self, index: int | None) -> int:
        """Keep the line and its ancestors (they keep the tree readable); returns the characters added."""
        added = 0
        while index is not None and not self.keep[index]:
            self.keep[index] = True
            added += len(self.lines[index].text) + 1
            index = self.lines[index].parent
        return added

    def _choose(self) -> None:
        height = self.viewport_height
        size = 0
        for index, line in enumerate(self.lines):
            top, bottom = self.extents[index]
            if top is None or bottom is None or (bottom > 0 and top < height):  # on screen (or unplaced)
                size += self._take(index)
                if not line.kept_role and not _is_property(line.text):
                    self.shortenable.add(index)
        if size > MAX_SNAPSHOT_CHARS:
            size = self._shorten_to_fit(size)
        low, high = -NEIGHBOURHOOD_VIEWPORTS * height, (1 + NEIGHBOURHOOD_VIEWPORTS) * height
        candidates: list[tuple[float, int]] = []  # (distance from the viewport, line), nearest first
        for index, line in enumerate(self.lines):
            top, bottom = self.extents[index]
            if self.keep[index] or top is None or bottom is None:
                continue
            if line.kept_role or (bottom >= low and top <= high):
                candidates.append((max(0.0, top - height, -bottom), index))
        for _distance, index in sorted(candidates):
            if size >= MAX_SNAPSHOT_CHARS:
                break
            size += self._take(index)
        for index, line in enumerate(self.lines):  # a kept element keeps its properties (e.g. a link's /url)
            if not self.keep[index] and line.parent is not None and self.keep[line.parent] \
                    and _is_property(line.text):
                self.keep[index] = True

    def _shorten_to_fit(self, size: int) -> int:
        """Cut the on-screen text just enough to fit the cap (one limit for all, at least
        MIN_SHORTENED_CHARS); returns the size after."""
        lengths = [length for index in self.shortenable for length in _text_lengths(self.lines[index].text)]

        def saved(limit: int) -> int:  # each cut part loses its tail and gains an ellipsis
            return sum(length - limit - 1 for length in lengths if length > limit + 1)

        low, high = MIN_SHORTENED_CHARS, max(lengths, default=MIN_SHORTENED_CHARS)
        while low < high:  # the longest limit that fits
            middle = (low + high + 1) // 2
            if size - saved(middle) <= MAX_SNAPSHOT_CHARS:
                low = middle
            else:
                high = middle - 1
        if size - saved(low) < size:
            self.text_limit = low
        return size - saved(low)

    def panel_candidates(self) -> dict[int, tuple[float, float, float, float]]:
        """Lines on screen with left-out elements outside their own box (line -> box): maybe panels
        that scroll on their own, for `scrolling` to check on the page."""
        if not self.trimmed:
            return {}
        outside: list[tuple[float, float] | None] = [None] * len(self.lines)  # left-out descendants' span
        for index in range(len(self.lines) - 1, -1, -1):
            line, span = self.lines[index], outside[index]
            top, bottom = self.extents[index]
            if not self.keep[index] and top is not None and bottom is not None:
                span = (top, bottom) if span is None else (min(span[0], top), max(span[1], bottom))
            if span is not None and line.parent is not None:
                above = outside[line.parent]
                outside[line.parent] = span if above is None else (min(above[0], span[0]),
                                                                   max(above[1], span[1]))
        found: dict[int, tuple[float, float, float, float]] = {}
        for index, line in enumerate(self.lines):
            span = outside[index]
            if line.box is None or span is None or line.top is None or line.bottom is None \
                    or line.bottom <= 0 or line.top >= self.viewport_height or _REF.search(line.text) is None:
                continue
            if span[0] < line.top - 1 or span[1] > line.bottom + 1:
                found[index] = line.box
                if len(found) == MAX_PANEL_CANDIDATES:
                    break
        return found

    def text(self, scroll: Scrolling | None = None) -> str:
        """The kept lines after a note on what was left out. `scroll` says what scrolling reaches: left-out
        lines beyond the window's scroll range and outside its panels are not promised (unknown: all are)."""
        if not self.trimmed:
            return "\n".join(line.text for line in self.lines)
        panels = set(scroll.panels) if scroll is not None else set()
        for index in panels:
            self._take(index)
        inside: list[int | None] = []  # the innermost panel holding each line
        for index, line in enumerate(self.lines):
            inside.append(index if index in panels else inside[line.parent] if line.parent is not None
                          else None)
        above = below = 0
        in_panel: dict[int, int] = {}
        for index, kept in enumerate(self.keep):
            panel = inside[index]
            top, bottom = self.extents[index]
            if kept or top is None or bottom is None:  # a line without a place is on screen, so kept
                continue
            if panel is not None:
                in_panel[panel] = in_panel.get(panel, 0) + 1
            elif bottom <= 0:
                above += scroll is None or bottom > -scroll.up
            else:
                below += scroll is None or top < self.viewport_height + scroll.down
        note = "# Long page: showing what is on screen and nearest to it"
        if above or below:
            note += (f"; {above} other element(s) above and {below} below are left out "
                     "(scroll up/down to see them)")
        named = [f"{count} in [ref={_REF.findall(self.lines[panel].text)[0]}]"
                 for panel, count in in_panel.items()]
        if named:
            note += f"; more inside scrollable panels: {', '.join(named)} (scroll up/down with that ref)"
        if self.text_limit is not None:
            note += f"; long text is cut short after {self.text_limit} characters (…)"
        kept_lines = (_shorten(line.text, self.text_limit) if self.text_limit is not None
                      and index in self.shortenable else line.text
                      for index, (line, kept) in enumerate(zip(self.lines, self.keep, strict=True)) if kept)
        return note + ".\n" + "\n".join(kept_lines)


# A snapshot line: "- key" or "- key: value", the key YAML-quoted ('…') when it holds special characters;
# the key is role "name" [attributes].
_LINE = re.compile(r"""^(\s*- )(?:'((?:[^']|'')*)'|([\w-]+(?: "(?:[^"\\]|\\.)*")?(?: \[[^\]]*\])*))"""
                   r"(?:(:) ?(.*))?$")
_KEY = re.compile(r'^([\w-]+)(?: "((?:[^"\\]|\\.)*)")?((?: \[[^\]]*\])*)$')


@dataclass
class _TextParts:
    indent: str
    quoted: bool  # the key is YAML-quoted
    role: str
    name: str | None
    attributes: str
    colon: bool
    value: str | None

    @classmethod
    def of(cls, text: str) -> _TextParts | None:
        line = _LINE.match(text)
        if line is None:
            return None
        indent, quoted, plain, colon, value = line.groups()
        key = _KEY.match(quoted.replace("''", "'") if quoted is not None else plain)
        if key is None:
            return None
        return cls(indent, quoted is not None, key[1], key[2], key[3], colon is not None, value or None)

    def lengths(self) -> list[int]:
        return [len(part) for part in (self.name, self.value) if part]

    def shortened(self, limit: int) -> str:
        key = self.role + (f' "{_cut(self.name, limit)}"' if self.name is not None else "") + self.attributes
        if self.quoted:
            key = "'" + key.replace("'", "''") + "'"
        value = f" {_cut(self.value, limit)}" if self.value else ""
        return self.indent + key + (":" + value if self.colon else "")


def _cut(part: str, limit: int) -> str:
    """The text cut after `limit` characters, with an ellipsis; a YAML-quoted value stays quoted."""
    quote = part[0] if len(part) > 1 and part[0] == part[-1] and part[0] in "\"'" else ""
    inner = part[1:-1] if quote else part
    if len(inner) <= limit + 1:
        return part
    return quote + inner[:limit].rstrip("\\'") + "…" + quote  # never end inside an escape sequence


def _is_property(text: str) -> bool:
    return text.lstrip().startswith("- /")


def _text_lengths(text: str) -> list[int]:
    """The lengths of the line's name and value, the parts `_shorten` may cut."""
    parts = _TextParts.of(text)
    return parts.lengths() if parts is not None else []


def _shorten(text: str, limit: int) -> str:
    parts = _TextParts.of(text)
    return parts.shortened(limit) if parts is not None else text


def _parse(raw: str) -> list[_Line]:
    lines: list[_Line] = []
    stack: list[int] = []  # indexes of the open ancestors
    offsets: dict[int, float] = {}  # iframe line index -> its top, added to the boxes of its content
    iframes: set[int] = set()
    for raw_line in raw.splitlines():
        depth = (len(raw_line) - len(raw_line.lstrip(" "))) // 2
        while stack and lines[stack[-1]].depth >= depth:
            stack.pop()
        parent = stack[-1] if stack else None
        offset = next((offsets[i] for i in reversed(stack) if i in offsets), 0.0)
        box = _BOX.search(raw_line)
        top = bottom = None
        own_box = None
        if box is not None:
            x, y, width, height = (float(value) for value in box.groups())
            if height > 0:
                top, bottom = offset + y, offset + y + height
                if not iframes.intersection(stack):
                    own_box = (x, y, width, height)
        match = _ROLE_NAME.match(raw_line)
        role = match.group(1) if match else ""
        lines.append(_Line(_BOX.sub("", raw_line), depth, parent, top, bottom, role in KEPT_ROLES, own_box))
        if role == "iframe":
            iframes.add(len(lines) - 1)
            if top is not None:
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
