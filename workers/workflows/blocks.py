"""The blocks that are not the browser agent: goto_url, wait, text_prompt, http_request, send_email,
file_url_parser, code. Each is `async (wf, block, values) -> BlockResult`; templates are rendered here."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import smtplib
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

from app.platform.url_policy import UrlDenied, fetch, parse_policy
from app.schemas.workflows import (
    CodeBlockYAML,
    FileParserBlockYAML,
    HttpRequestBlockYAML,
    SendEmailBlockYAML,
    TextPromptBlockYAML,
    UrlBlockYAML,
    WaitBlockYAML,
)
from app.workflows.templates import render, render_value
from workers.agent.contract import ToolCall
from workers.agent.planner import Planner
from workers.agent.tools import ToolContext, apply
from workers.workflows.context import BlockResult, WorkflowContext

MAX_FETCH_BYTES = 20 * 1024 * 1024


async def goto_url(wf: WorkflowContext, block: UrlBlockYAML, values: dict[str, Any]) -> BlockResult:
    url = render(block.url, values)
    opened = await apply(ToolContext(wf.browser, wf.store, task=wf.base_task),
                         ToolCall("goto_url", {"url": url}))
    if not opened.succeeded:
        return BlockResult("failed",
                           failure_reason=f"{url} could not be opened: {opened.problem or opened.outcome}")
    return BlockResult("completed", {"url": wf.browser.active_page.url})


async def wait(wf: WorkflowContext, block: WaitBlockYAML, values: dict[str, Any]) -> BlockResult:
    await asyncio.sleep(block.wait_sec)
    return BlockResult("completed")


async def text_prompt(wf: WorkflowContext, block: TextPromptBlockYAML, values: dict[str, Any]) -> BlockResult:
    planner = Planner(wf.settings, wf.base_task)
    try:
        output, usage = await planner.answer_text(render(block.prompt, values), block.json_schema)
    finally:
        await planner.aclose()
    wf.store.tokens_used += usage.prompt_tokens + usage.completion_tokens
    return BlockResult("completed", output)


async def http_request(wf: WorkflowContext, block: HttpRequestBlockYAML,
                       values: dict[str, Any]) -> BlockResult:
    """One request under the server's URL policy (WAYFARER_URL_POLICY), as the browser is."""
    if not block.url:
        return BlockResult("failed", failure_reason="url: an http_request block needs a url")
    url = render(block.url, values)
    body = render_value(block.body, values) if block.body is not None else None
    headers = render_value(block.headers or {}, values)
    try:
        async with httpx.AsyncClient(timeout=block.timeout) as client:
            response = await fetch(client, block.method, url, parse_policy(wf.settings.url_policy),
                                   follow_redirects=block.follow_redirects, headers=headers, json=body)
    except (UrlDenied, httpx.HTTPError) as exc:
        return BlockResult("failed", failure_reason=f"{block.method} {url} failed: {exc}")
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text
    output = {"status_code": response.status_code, "headers": dict(response.headers), "body": payload}
    if response.is_error:
        return BlockResult("failed", output, f"{block.method} {url} answered HTTP {response.status_code}")
    return BlockResult("completed", output)


async def send_email(wf: WorkflowContext, block: SendEmailBlockYAML, values: dict[str, Any]) -> BlockResult:
    settings = wf.settings
    host = block.custom_smtp_host or settings.smtp_host
    if not host:
        return BlockResult("failed", failure_reason=(
            "no SMTP server: set WAYFARER_SMTP_HOST (and _PORT, _USERNAME, _PASSWORD) or the block's "
            "custom_smtp_host"))
    message = EmailMessage()
    message["From"] = render(block.sender, values)
    recipients = [render(recipient, values) for recipient in block.recipients]
    message["To"] = ", ".join(recipients)
    message["Subject"] = render(block.subject, values)
    message.set_content(render(block.body, values))
    for name in block.file_attachments or []:
        path = _downloaded_file(wf, render(name, values))
        if path is None:
            return BlockResult("failed",
                               failure_reason=f"file_attachments: this run downloaded no file {name!r}")
        message.add_attachment(path.read_bytes(), maintype="application", subtype="octet-stream",
                               filename=path.name)
    port = block.custom_smtp_port or settings.smtp_port
    username = block.custom_smtp_username or settings.smtp_username
    password = block.custom_smtp_password or settings.smtp_password

    def deliver() -> None:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            if settings.smtp_starttls and smtp.has_extn("starttls"):
                smtp.starttls()
            if username and password:
                smtp.login(username, password)
            smtp.send_message(message)

    try:
        await asyncio.to_thread(deliver)
    except (OSError, smtplib.SMTPException) as exc:
        return BlockResult("failed",
                           failure_reason=f"the mail could not be sent through {host}:{port}: {exc}")
    return BlockResult("completed", {"recipients": recipients, "subject": message["Subject"]})


async def file_url_parser(wf: WorkflowContext, block: FileParserBlockYAML,
                          values: dict[str, Any]) -> BlockResult:
    """CSV (rows as objects), JSON, or a PDF's text, from an http(s) URL or a file this run downloaded."""
    source = render(block.file_url, values)
    path = _downloaded_file(wf, source)
    if path is not None:
        data = path.read_bytes()
    else:
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                response = await fetch(client, "GET", source, parse_policy(wf.settings.url_policy),
                                       follow_redirects=True)
            response.raise_for_status()
        except (UrlDenied, httpx.HTTPError) as exc:
            return BlockResult("failed", failure_reason=f"file_url {source} could not be fetched: {exc}")
        data = response.content[:MAX_FETCH_BYTES]
    kind = block.file_type if block.file_type != "auto_detect" else _detect(source, data)
    try:
        if kind == "csv":
            return BlockResult("completed", list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")))))
        if kind == "pdf":
            reader = PdfReader(io.BytesIO(data))
            return BlockResult("completed", "\n".join(page.extract_text() or "" for page in reader.pages))
        if kind == "json":
            return BlockResult("completed", json.loads(data))
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        return BlockResult("failed", failure_reason=f"file_url {source} is not valid {kind}: {exc}")
    return BlockResult("failed",
                       failure_reason=f"file_type {kind!r}: only csv, json and pdf files are parsed")


def _detect(source: str, data: bytes) -> str:
    if data.startswith(b"%PDF"):
        return "pdf"
    if source.lower().split("?")[0].endswith(".json") or data.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "csv"


def _downloaded_file(wf: WorkflowContext, name: str) -> Path | None:
    """A file this run's browser downloaded, by its stored name."""
    folder = wf.browser.workdir / "downloads"
    candidate = folder / Path(name).name
    return candidate if name and candidate.is_file() else None


_CODE_RUNNER = """
import json, sys
parameters = json.load(sys.stdin)
scope = dict(parameters)
exec(compile(sys.argv[1], "<code block>", "exec"), scope)
print(json.dumps(scope.get("result"), default=str))
"""


async def code(wf: WorkflowContext, block: CodeBlockYAML, values: dict[str, Any]) -> BlockResult:
    """Python in a subprocess (only with WAYFARER_ALLOW_CODE_BLOCKS): the workflow's values as globals,
    the output is what it assigns to `result`; killed after WAYFARER_CODE_BLOCK_TIMEOUT_SECONDS."""
    if not wf.settings.allow_code_blocks:
        return BlockResult("failed", failure_reason="code blocks are refused on this server "
                                                    "(WAYFARER_ALLOW_CODE_BLOCKS=true allows them)")
    with tempfile.TemporaryDirectory(prefix="wayfarer-code-") as workdir:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", _CODE_RUNNER, block.code, cwd=workdir, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(wf.settings.code_block_timeout_seconds):
                stdout, stderr = await process.communicate(json.dumps(values, default=str).encode())
        except TimeoutError:
            process.kill()
            await process.wait()
            return BlockResult("failed", failure_reason=(
                f"the code ran longer than {wf.settings.code_block_timeout_seconds:g} s "
                "(WAYFARER_CODE_BLOCK_TIMEOUT_SECONDS) and was stopped"))
    if process.returncode != 0:
        return BlockResult("failed",
                           failure_reason=f"the code failed: {stderr.decode(errors='replace')[-500:]}")
    return BlockResult("completed", json.loads(stdout.decode().strip().splitlines()[-1]))
