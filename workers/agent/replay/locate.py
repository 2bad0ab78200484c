"""Finding a recorded element again, and describing one for the recording.

A target is resolved against a fresh capture's element labels (ref -> "role 'name'", in document order):
by role and accessible name first, taking the recorded position among equals when their count is the
recorded one; then by the fallbacks (stable attributes, the CSS path) among the elements of that role.
Anything else — no candidate, or several the recording cannot tell apart — is a miss.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from app.scripts.document import Target

_FRAME = re.compile(r"^(f\d+)?e\d+$")

# The element's stable attributes as CSS selectors, its CSS path, and the iframes it sits in.
_DESCRIBE_JS = """e => {
  const esc = v => CSS.escape(v);
  const path = el => {
    const parts = [];
    while (el && el.nodeType === 1 && el !== el.ownerDocument.documentElement) {
      let part = el.tagName.toLowerCase();
      if (el.id) { parts.unshift(part + '#' + esc(el.id)); break; }
      const parent = el.parentElement;
      if (!parent) { parts.unshift(part); break; }
      const same = [...parent.children].filter(c => c.tagName === el.tagName);
      if (same.length > 1) part += `:nth-of-type(${same.indexOf(el) + 1})`;
      parts.unshift(part);
      el = parent;
    }
    return parts.join(' > ');
  };
  const tag = e.tagName.toLowerCase();
  const fallbacks = [];
  if (e.id) fallbacks.push('#' + esc(e.id));
  for (const attr of ['data-testid', 'name']) {
    const value = e.getAttribute(attr);
    if (value) fallbacks.push(`${tag}[${attr}="${value.replace(/["\\\\]/g, '\\\\$&')}"]`);
  }
  const frames = [];
  try {
    for (let w = e.ownerDocument.defaultView; w && w.frameElement; w = w.parent) {
      frames.unshift(path(w.frameElement));
    }
  } catch (_) {}
  return {fallbacks, css: path(e), frames};
}"""

_MATCHES_JS = ("(e, selectors) => selectors.map(s => { try { return e.matches(s); } "
               "catch (_) { return false; } })")


def same_page(recorded_url: str | None, recorded_title: str | None, url: str, title: str) -> bool:
    """Whether the page is the one a step was recorded on: the same URL or the same title, each with
    numbers taken as wildcards (an order number in a path or title is not another page). A step
    recorded without them matches any page."""
    if recorded_url is None or recorded_title is None:
        return True
    return _url_pattern(recorded_url) == _url_pattern(url) or _numbers(recorded_title) == _numbers(title)


def _url_pattern(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{_numbers(parts.path.rstrip('/'))}"


def _numbers(text: str) -> str:
    return re.sub(r"\d+", "#", text.strip())


async def page_title(page: Page) -> str | None:
    try:
        return await page.title()
    except PlaywrightError:  # the page is navigating or gone: the step is kept without it
        return None


def frame_of(ref: str) -> str:
    """The frame prefix of a snapshot ref: "" for "e3", "f1" for "f1e3"."""
    match = _FRAME.match(ref)
    return (match.group(1) or "") if match else ""


def frame_in(ref: str, labels: Mapping[str, str]) -> str:
    """The frame of a ref as a script keeps it: "" for the main frame, else its prefix. Playwright gives
    the main frame a prefix too once it has navigated ("f2e5"); the snapshot's first ref, the page's
    root, says which prefix that is."""
    frame = frame_of(ref)
    first = next(iter(labels), None)
    return "" if first is not None and frame == frame_of(first) else frame


def role_and_name(label: str) -> tuple[str, str]:
    """ "button 'Sign'" -> ("button", "Sign"), with the snapshot's escapes undone."""
    role, _, rest = label.partition(" ")
    raw = rest[1:-1] if rest.startswith("'") and rest.endswith("'") else rest
    try:
        name = json.loads(f'"{raw}"')
    except ValueError:
        name = raw
    return role, str(name)


def equals(labels: Mapping[str, str], role: str, name: str, frame: str) -> list[str]:
    """The refs with this role and name in this frame, in document order."""
    return [ref for ref, label in labels.items()
            if frame_in(ref, labels) == frame and role_and_name(label) == (role, name)]


async def describe(page: Page, ref: str, labels: Mapping[str, str]) -> Target | None:
    """The recording's target for the element `ref` names; None when the element is gone already."""
    label = labels.get(ref)
    if label is None:
        return None
    role, name = role_and_name(label)
    frame = frame_in(ref, labels)
    same = equals(labels, role, name, frame)
    try:
        found = await page.locator(f"aria-ref={ref}").evaluate(_DESCRIBE_JS)
    except PlaywrightError:
        found = {"fallbacks": [], "css": None, "frames": []}
    return Target(role=role, name=name, nth=same.index(ref) if ref in same else 0, equals=max(len(same), 1),
                  frame=frame, frames=tuple(found["frames"]), fallbacks=tuple(found["fallbacks"]),
                  css=found["css"])


async def resolve(page: Page, labels: Mapping[str, str], target: Target) -> str | None:
    """The ref of the recorded element in the current capture, or None (a miss)."""
    same = equals(labels, target.role, target.name, target.frame)
    if len(same) == 1:
        return same[0]
    if same and len(same) == target.equals:
        return same[target.nth]
    selectors = [*target.fallbacks, *([target.css] if target.css else [])]
    if not selectors:
        return None
    of_role = [ref for ref, label in labels.items()
               if frame_in(ref, labels) == target.frame and role_and_name(label)[0] == target.role]
    hits: list[list[bool]] = []
    for ref in of_role:
        try:
            hits.append(await page.locator(f"aria-ref={ref}").evaluate(_MATCHES_JS, selectors))
        except PlaywrightError:
            hits.append([False] * len(selectors))
    for index in range(len(selectors)):
        matched = [ref for ref, hit in zip(of_role, hits, strict=True) if hit[index]]
        if len(matched) == 1:
            return matched[0]
    return None
