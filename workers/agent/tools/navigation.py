"""Tools that move between pages and tabs, or wait for one: goto_url, go_back, switch_tab, wait."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from app.platform.url_policy import check_navigation
from workers.agent.browser import BrowserRun
from workers.agent.tools.registry import ActionError, Done, Number, Text, ToolArgs, ToolContext, Whole, tool

MAX_WAIT_SECONDS = 10.0


class UrlArgs(ToolArgs):
    url: Text


class NoArgs(ToolArgs):
    pass


class TabArgs(ToolArgs):
    index: Whole


class WaitArgs(ToolArgs):
    seconds: Number


@tool("goto_url", "Open a URL in the current tab.")
async def goto_url(ctx: ToolContext, args: UrlArgs) -> Done:
    run = ctx.browser
    url = args.url.strip()
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


@tool("go_back", "Go back one page in the current tab.")
async def go_back(ctx: ToolContext, args: NoArgs) -> Done:
    run = ctx.browser
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


@tool("switch_tab", "Switch to a tab (0-based, in opening order).")
async def switch_tab(ctx: ToolContext, args: TabArgs) -> Done:
    index = args.index
    try:
        page = ctx.browser.switch_tab(index)
    except IndexError as exc:
        raise ActionError(str(exc) + ".") from None
    await page.bring_to_front()
    return Done(f"switch_tab {index}", f"now on tab {index} ({page.url})", stale=True)


@tool("wait", "Wait for the page to change (at most 10 s).")
async def wait(ctx: ToolContext, args: WaitArgs) -> Done:
    seconds = min(max(args.seconds, 0.0), MAX_WAIT_SECONDS)
    await asyncio.sleep(seconds)
    return Done(f"wait {seconds:g}s", stale=True)
