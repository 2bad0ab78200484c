"""Executes the planner's tool calls on the page (every design.md tool but complete/terminate).

Liberal in what it accepts from a model, strict in what it executes: a bad ref, tool or argument comes
back as a failed ActionResult whose outcome says what to do instead; it never raises for model mistakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import httpx
from playwright.async_api import ElementHandle, Locator, Page, Request
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from app.platform.url_policy import UrlDenied, check_navigation, fetch
from workers.agent import ActionResult, RunStore, ToolCall
from workers.browser import BrowserRun, DownloadTooSlow
from workers.page_state import SCROLLABLE_JS

MAX_WAIT_SECONDS = 10.0
DOM_QUIET_MS = 150
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_REF = re.compile(r"(?:f\d+)?e\d+")

# Resolves after the next frame when the DOM did not change meanwhile (an action whose effect has
# already landed costs one frame); while it keeps changing, once it has been quiet for `quiet` ms, or
# after `cap` ms. The timeout stands in for a frame in a hidden tab, where rAF does not fire.
_DOM_SETTLED_JS = """([quiet, cap]) => new Promise(resolve => {
  const started = performance.now();
  let last = 0;
  const observer = new MutationObserver(() => { last = performance.now(); });
  observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  const check = () => {
    const now = performance.now();
    if (!last || now - last >= quiet || now - started >= cap) { observer.disconnect(); resolve(); }
    else setTimeout(check, Math.min(quiet - (now - last), cap - (now - started)));
  };
  let framed = false;
  const afterFrame = () => { if (!framed) { framed = true; setTimeout(check, 0); } };
  requestAnimationFrame(afterFrame);
  setTimeout(afterFrame, 100);
})"""


class ActionError(Exception):
    """A model mistake or a page refusal, phrased so the model can act on it."""


@dataclass
class Done:
    """What a tool did: `label` names the action and its target, `detail` its effect when no navigation."""

    label: str
    detail: str = "done"
    stale: bool = False  # later refs may no longer match the page (new elements, menus, scrolling)


Handler = Callable[[BrowserRun, dict[str, Any], RunStore], Awaitable[Done]]


async def apply(run: BrowserRun, call: ToolCall, store: RunStore) -> ActionResult:
    handler = _HANDLERS.get(call.name)
    if handler is None:
        return ActionResult(False, f"{call.name} -> unknown tool; use one of: {', '.join(_HANDLERS)}.")
    if run.crashed:
        return ActionResult(False, f"{call.name} -> the browser is gone ({run.crash_reason}).")
    page_before, url_before, tabs_before = run.active_page, run.active_page.url, len(run.pages)
    with _NavigationWatch(page_before) as watch:
        try:
            done = await handler(run, call.args, store)
        except (ActionError, UrlDenied) as exc:
            return ActionResult(False, f"{_describe(run, call)} -> {exc}",
                                page_changed=_navigated(run, url_before))
        except PlaywrightError as exc:
            return ActionResult(False, f"{_describe(run, call)} -> {_explain(exc)}",
                                page_changed=_navigated(run, url_before))
        await _settle(run, watch, run.settle_timeout_ms)
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


def _navigated(run: BrowserRun, url_before: str) -> bool:
    return run.active_page.url != url_before


def _describe(run: BrowserRun, call: ToolCall) -> str:
    raw = call.args.get("ref")
    ref = _normalize_ref(raw) if raw is not None else None
    if ref is None:
        return call.name
    return f"{call.name} {run.element_labels.get(ref, ref)}"


# ---- refs and arguments -------------------------------------------------------------------------

def _normalize_ref(raw: Any) -> str | None:
    """Accepts "e5", "#e5", "ref=e5", "[ref=e5]", "f1e2" or 5."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"e{raw}"
    if not isinstance(raw, str):
        return None
    text = raw.strip().strip("[]#").removeprefix("ref=").removeprefix("aria-ref=").strip()
    if text.isdigit():
        return f"e{text}"
    return text if _REF.fullmatch(text) else None


async def _element(run: BrowserRun, args: dict[str, Any]) -> tuple[Locator, str]:
    raw = args.get("ref")
    ref = _normalize_ref(raw)
    if ref is None:
        raise ActionError(f"'{raw}' is not an element ref; pass a ref from the snapshot such as e5.")
    locator = run.active_page.locator(f"aria-ref={ref}")
    if await locator.count() == 0:
        raise ActionError(f"no element with ref {ref} on the current page; the page has changed since, "
                          "use a ref from the latest snapshot.")
    return locator, run.element_labels.get(ref, ref)


def _text_arg(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if value is None or isinstance(value, (dict, list)):
        raise ActionError(f"the '{name}' argument is missing; pass it as a string.")
    return str(value)


def _bool_arg(args: dict[str, Any], name: str) -> bool:
    value = args.get(name, True)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on", "checked"}:
        return True
    if text in {"false", "0", "no", "off", "unchecked"}:
        return False
    raise ActionError(f"'{name}' must be true or false, not '{value}'.")


def _number_arg(args: dict[str, Any], name: str) -> float:
    try:
        return float(args.get(name))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ActionError(f"'{name}' must be a number, not '{args.get(name)}'.") from None


async def _tag_and_type(locator: Locator) -> tuple[str, str]:
    tag, kind = await locator.evaluate(
        "e => [e.tagName.toLowerCase(), (e.getAttribute('type') || '').toLowerCase()]")
    return str(tag), str(kind)


# ---- tools --------------------------------------------------------------------------------------

# A link whose target opens another browsing context: the new tab's page event can arrive after the
# click and one frame of settling, so such a click waits for the tab itself.
_OPENS_TAB_JS = """element => {
  const link = element.closest('a[href], area[href]');
  const target = (link && link.target || '').toLowerCase();
  return target !== '' && !['_self', '_parent', '_top'].includes(target);
}"""


async def _click(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    if not await locator.evaluate(_OPENS_TAB_JS):
        await locator.click()
        return Done(f"click {label}", stale=True)
    new_tab = asyncio.ensure_future(run.context.wait_for_event("page", timeout=run.settle_timeout_ms))
    try:
        await locator.click()
    except BaseException:
        new_tab.cancel()
        raise
    with contextlib.suppress(PlaywrightTimeoutError):  # a named target may reuse an open tab
        await new_tab
    return Done(f"click {label}", stale=True)


@runtime_checkable
class RevealsSecrets(Protocol):
    """A store holding the run's credential: turns `{{credential.password}}` placeholders into values."""

    def reveal(self, text: str) -> str: ...


async def _input_text(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    text = _text_arg(args, "text")
    if isinstance(store, RevealsSecrets):  # the value is typed, never recorded: args keep the placeholder
        try:
            text = store.reveal(text)
        except ValueError as exc:
            raise ActionError(str(exc)) from None
    await _fill(locator, text)
    return Done(f"input_text {label}", f"typed {len(text)} character(s)")


async def _fill(locator: Locator, text: str) -> None:
    _, kind = await _tag_and_type(locator)
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


async def _select_option(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    wanted = _text_arg(args, "option")
    tag, _ = await _tag_and_type(locator)
    if tag == "select":
        chosen = await _select_native(locator, wanted)
        return Done(f"select_option {label}", f"selected '{chosen}'")
    await _select_aria(run.active_page, locator, wanted)
    return Done(f"select_option {label}", f"picked '{wanted}'", stale=True)


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


async def _select_aria(page: Page, locator: Locator, wanted: str) -> None:
    """Custom ARIA combobox/listbox: open it if needed, then click the option with that name."""
    role = await locator.evaluate("e => e.getAttribute('role') || ''")
    if role == "option":
        await locator.click()
        return
    if role != "listbox":
        if await locator.get_attribute("aria-expanded") != "true":
            await locator.click()
        if await locator.evaluate("e => e.tagName === 'INPUT' && !e.readOnly"):
            await locator.fill(wanted)  # an editable combobox filters its options as the user types
    controlled = await locator.get_attribute("aria-controls") or await locator.get_attribute("aria-owns")
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


async def _checkbox(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    checked = _bool_arg(args, "checked")
    await locator.set_checked(checked)
    return Done(f"checkbox {label}", "checked" if checked else "unchecked")


async def _upload_file(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    uploaded = run.upload_files.get(str(args.get("file_url") or "").strip())  # a file_ids id
    path = uploaded or await _fetch_upload(_text_arg(args, "file_url"), run)
    tag, kind = await _tag_and_type(locator)
    if tag == "input" and kind == "file":
        await locator.set_input_files(path)
    else:
        target = await _associated_file_input(locator)
        if target is not None:
            await target.set_input_files(path)
        else:
            try:
                async with run.active_page.expect_file_chooser(timeout=run.action_timeout_ms) as chooser:
                    await locator.click()
            except PlaywrightTimeoutError:
                raise ActionError("clicking it opened no file chooser; pass the file input or the button "
                                  "that opens the file dialog.") from None
            await (await chooser.value).set_files(path)
    return Done(f"upload_file {label}", f"attached '{path.name}' ({path.stat().st_size} bytes)", stale=True)


async def _associated_file_input(locator: Locator) -> ElementHandle | None:
    """The file input the element labels or contains (label[for=...], a nested input)."""
    handle = await locator.evaluate_handle(
        "e => (e.control && e.control.type === 'file' && e.control) || e.querySelector('input[type=file]')")
    element = handle.as_element()
    if element is None:
        await handle.dispose()
    return element


async def _fetch_upload(file_url: str, run: BrowserRun) -> Path:
    folder = run.workdir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    scheme = urlsplit(file_url).scheme.lower()
    if scheme in {"http", "https"}:
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await fetch(client, "GET", file_url, run.url_policy, follow_redirects=True)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ActionError(f"could not download file_url {file_url}: {exc}") from None
        if len(response.content) > MAX_UPLOAD_BYTES:
            raise ActionError(f"file_url {file_url} is larger than {MAX_UPLOAD_BYTES // 2**20} MiB.")
        name = _filename(response.headers.get("content-disposition"), file_url)
        path = Path(tempfile.mkdtemp(dir=folder)) / name
        path.write_bytes(response.content)
        return path
    if scheme in {"", "file"} and not run.allow_local_files:
        raise ActionError("file_url names a file on the worker, and uploading the worker's own files is "
                          "off (WAYFARER_ALLOW_LOCAL_FILES); use an http(s) URL such as an upload's "
                          "presigned_url.")
    local = Path(unquote(urlsplit(file_url).path) if scheme == "file" else file_url)
    if scheme in {"", "file"} and local.is_file():
        return local
    raise ActionError(f"file_url must be an http(s) URL or an existing local file, not '{file_url}'.")


def _filename(disposition: str | None, url: str) -> str:
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition or "")
    name = unquote(match.group(1)) if match else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return re.sub(r"[/\\\x00]", "_", name).strip(". ") or "upload"


async def _download_file(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    before = run.downloads_started
    watch = _NavigationWatch(run.active_page)
    try:
        await locator.click()
        path = await run.download_after(before, run.action_timeout_ms / 1000)
    except DownloadTooSlow as exc:
        raise ActionError(str(exc)) from None
    except TimeoutError:
        if not (watch.requested and watch.page.url == watch.url_before):
            raise ActionError("clicking it started no download; pick the link or button that downloads "
                              "the file.") from None
        path = await _slow_download(run, before)  # the server is still answering the click's request
    finally:
        watch.stop()
    if path is None:
        raise ActionError("the download started but failed.")
    return Done(f"download_file {label}", f"downloaded '{path.name}' ({path.stat().st_size} bytes)")


async def _slow_download(run: BrowserRun, before: int) -> Path | None:
    try:
        return await run.download_after(before, (run.navigation_timeout_ms - run.action_timeout_ms) / 1000)
    except DownloadTooSlow as exc:
        raise ActionError(str(exc)) from None
    except TimeoutError:
        raise ActionError(f"no download started within {run.navigation_timeout_ms // 1000} s.") from None


async def _hover(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    await locator.hover()
    return Done(f"hover {label}", stale=True)


async def _keypress(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    keys = args.get("keys", args.get("key"))
    if isinstance(keys, str):
        keys = [keys]
    if not keys or not isinstance(keys, list) or not all(isinstance(key, str) and key for key in keys):
        raise ActionError("'keys' must be a list of Playwright key names such as [\"Enter\"].")
    if args.get("ref") is not None:
        locator, _ = await _element(run, args)
        await locator.focus()
    page = run.active_page
    for key in keys:
        try:
            await page.keyboard.press(key)
        except PlaywrightError as exc:
            if "Unknown key" in str(exc):
                raise ActionError(f"'{key}' is not a key name; use names like Enter, Tab, Escape, "
                                  "ArrowDown, Control+a.") from None
            raise
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


async def _scroll(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    if args.get("ref") is not None and args.get("direction") is None:
        locator, label = await _element(run, args)
        await locator.scroll_into_view_if_needed()
        return Done(f"scroll to {label}", stale=True)
    direction = str(args.get("direction", "down")).strip().lower()
    if direction not in {"up", "down"}:
        raise ActionError(f"direction must be 'up' or 'down', not '{direction}'.")
    if args.get("ref") is not None:
        return await _scroll_panel(run, args, direction)
    page = run.active_page
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


async def _scroll_panel(run: BrowserRun, args: dict[str, Any], direction: str) -> Done:
    locator, label = await _element(run, args)
    moved = await locator.evaluate(_SCROLL_PANEL_JS, direction == "down")
    if moved is None:
        raise ActionError(f"{label} is not a scrollable panel nor inside one; scroll without a ref to "
                          "move the page.")
    before, after = moved
    detail = (f"already at the {'bottom' if direction == 'down' else 'top'} of the panel" if after == before
              else f"scrolled to {after}px of the panel")
    return Done(f"scroll {direction} in {label}", detail, stale=after != before)


async def _scroll_y(page: Page) -> int:
    return int(await page.evaluate("() => Math.round(window.scrollY)"))


async def _goto_url(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    url = _text_arg(args, "url").strip()
    if "://" not in url and not url.lower().startswith(("javascript:", "data:", "about:", "file:",
                                                        "chrome:", "view-source:")):
        local = re.match(r"^(localhost|127\.|\[::1\])", url)
        url = ("http://" if local else "https://") + url
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise ActionError(f"only http(s) URLs can be opened, not {scheme}: URLs.")
    await check_navigation(url, run.url_policy)
    await _navigate(run, url, lambda page: page.goto(url, wait_until="domcontentloaded"))
    return Done(f"goto_url {url}", stale=True)


async def _go_back(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    page = run.active_page
    before = page.url
    await _navigate(run, "the previous page", lambda tab: tab.go_back(wait_until="domcontentloaded"))
    if page.url == before:
        raise ActionError("there is no earlier page in this tab.")
    return Done("go_back", stale=True)


async def _navigate(run: BrowserRun, url: str, go: Callable[[Page], Awaitable[Any]]) -> None:
    page = run.active_page
    try:
        await go(page)
    except PlaywrightTimeoutError:
        if page.url in ("about:blank", ""):
            seconds = run.navigation_timeout_ms // 1000
            raise ActionError(f"{url} did not respond within {seconds} s.") from None
        # the document arrived but is still loading (a slow resource): usable, so carry on
    except PlaywrightError as exc:
        net = re.search(r"net::ERR_[A-Z_]+", str(exc))
        if net is None:
            raise
        raise ActionError(f"could not load {url}: {net.group(0)}.") from None


async def _switch_tab(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    try:
        index = int(str(args.get("index", "")).strip())
    except ValueError:
        raise ActionError(f"'index' must be a tab number, not '{args.get('index')}'.") from None
    try:
        page = run.switch_tab(index)
    except IndexError as exc:
        raise ActionError(str(exc) + ".") from None
    await page.bring_to_front()
    return Done(f"switch_tab {index}", f"now on tab {index} ({page.url})", stale=True)


async def _wait(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    seconds = min(max(_number_arg(args, "seconds") if "seconds" in args else 2.0, 0.0), MAX_WAIT_SECONDS)
    await asyncio.sleep(seconds)
    return Done(f"wait {seconds:g}s", stale=True)


async def _verification_code(run: BrowserRun, args: dict[str, Any], store: RunStore) -> Done:
    locator, label = await _element(run, args)
    code = await store.verification_code()
    if not code:
        raise ActionError("no verification code arrived for this run; terminate if the site insists.")
    await _fill(locator, code)
    return Done(f"verification_code {label}", f"typed the code ({len(code)} characters)")


_HANDLERS: dict[str, Handler] = {
    "click": _click, "input_text": _input_text, "select_option": _select_option, "checkbox": _checkbox,
    "upload_file": _upload_file, "download_file": _download_file, "hover": _hover, "keypress": _keypress,
    "scroll": _scroll, "goto_url": _goto_url, "go_back": _go_back, "switch_tab": _switch_tab,
    "wait": _wait, "verification_code": _verification_code,
}


# ---- settling and error text --------------------------------------------------------------------

class _NavigationWatch:
    """What an action set off on its page: a main-frame navigation request (settling waits for the new
    document) and fetch/XHR requests still unanswered (settling waits for their answers)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.url_before = page.url
        self.requested = False
        self.in_flight: set[Request] = set()
        self._answered = asyncio.Event()
        self._answered.set()
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_request_done)
        page.on("requestfailed", self._on_request_done)

    def _on_request(self, request: Request) -> None:
        with contextlib.suppress(PlaywrightError):
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                self.requested = True
            elif request.resource_type in ("fetch", "xhr"):
                self.in_flight.add(request)
                self._answered.clear()

    def _on_request_done(self, request: Request) -> None:
        self.in_flight.discard(request)
        if not self.in_flight:
            self._answered.set()

    async def answered(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), timeout_s)

    def __enter__(self) -> _NavigationWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.page.remove_listener("request", self._on_request)
        self.page.remove_listener("requestfinished", self._on_request_done)
        self.page.remove_listener("requestfailed", self._on_request_done)


async def _settle(run: BrowserRun, watch: _NavigationWatch, cap_ms: int) -> None:
    """Wait (at most cap_ms) for what the action set off: a navigation (its document's load event), a
    tab it opened (its load event), fetch/XHR requests it sent, then DOM updates still under way.
    An action that set nothing off costs one frame."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap_ms / 1000

    def left_ms() -> float:
        return max(1.0, (deadline - loop.time()) * 1000)

    settled: Page | None = None
    while run.active_page is not settled and loop.time() < deadline:
        page = settled = run.active_page
        with contextlib.suppress(PlaywrightError):
            if page is watch.page and watch.requested and page.url == watch.url_before:
                with contextlib.suppress(PlaywrightTimeoutError):  # e.g. a download: no new document
                    await page.wait_for_url(lambda current: current != watch.url_before,
                                            timeout=left_ms(), wait_until="commit")
            if page is not watch.page or watch.requested:
                await page.wait_for_load_state("load", timeout=left_ms())
        await _dom_settled(page, watch if page is watch.page else None, left_ms)


async def _dom_settled(page: Page, watch: _NavigationWatch | None, left_ms: Callable[[], float]) -> None:
    """Until the page's requests are answered and its DOM has settled, again while answers bring more
    requests; a second round when the document was replaced while we watched it."""
    for _ in range(2):
        try:
            while True:
                if watch is not None:
                    await watch.answered(left_ms() / 1000)
                await page.evaluate(_DOM_SETTLED_JS, [DOM_QUIET_MS, int(left_ms())])
                if watch is None or not watch.in_flight or left_ms() <= 1.0:
                    return
        except PlaywrightError:
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_load_state("load", timeout=left_ms())


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
