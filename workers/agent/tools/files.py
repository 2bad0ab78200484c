"""Tools that move files: upload_file (into a file input) and download_file (kept as an artifact)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from playwright.async_api import ElementHandle, Locator
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from app.artifacts.names import safe_filename
from app.platform.url_policy import fetch
from workers.agent.browser import BrowserRun, DownloadTooSlow
from workers.agent.tools.elements import ElementArgs, element
from workers.agent.tools.registry import ActionError, Done, Ref, Text, ToolArgs, ToolContext, tool
from workers.agent.tools.settle import NavigationWatch

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class UploadArgs(ToolArgs):
    ref: Ref
    file_url: Text


@tool("upload_file", "Upload the file at file_url via a file input or the button that opens it.")
async def upload_file(ctx: ToolContext, args: UploadArgs) -> Done:
    run = ctx.browser
    target = await element(ctx, args.ref)
    locator, label = target.locator, target.label
    uploaded = run.upload_files.get(args.file_url.strip())  # a file_ids id
    path = uploaded or await _fetch_upload(args.file_url, run)
    if target.tag == "input" and target.kind == "file":
        await locator.set_input_files(path)
    else:
        file_input = await _associated_file_input(locator)
        if file_input is not None:
            await file_input.set_input_files(path)
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
    found = handle.as_element()
    if found is None:
        await handle.dispose()
    return found


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
    return safe_filename(name, "upload")


@tool("download_file", "Click what downloads a file and keep the file.")
async def download_file(ctx: ToolContext, args: ElementArgs) -> Done:
    run = ctx.browser
    target = await element(ctx, args.ref)
    before = run.downloads_started
    watch = NavigationWatch(run.active_page)
    try:
        await target.locator.click()
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
    return Done(f"download_file {target.label}", f"downloaded '{path.name}' ({path.stat().st_size} bytes)")


async def _slow_download(run: BrowserRun, before: int) -> Path | None:
    try:
        return await run.download_after(before, (run.navigation_timeout_ms - run.action_timeout_ms) / 1000)
    except DownloadTooSlow as exc:
        raise ActionError(str(exc)) from None
    except TimeoutError:
        raise ActionError(f"no download started within {run.navigation_timeout_ms // 1000} s.") from None


