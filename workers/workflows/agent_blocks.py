"""The blocks the browser agent runs — task, navigation, extraction, action, login, file_download,
validation — each one `drive()` of the task agent loop (workers/agent/) with its own goal, in the run's
shared browser context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.credentials.vault import CredentialValues, find_credential, placeholder, reveal_credential
from app.db.engine import session_scope
from app.runs.kinds import DOWNLOAD_GOAL, LOGIN_GOAL
from app.schemas.workflows import (
    ActionBlockYAML,
    AgentBlockYAML,
    ExtractionBlockYAML,
    FileDownloadBlockYAML,
    LoginBlockYAML,
    ValidationBlockYAML,
)
from app.scripts.parameters import References, outputs_by_path
from app.workflows.templates import LOOP_NAMES, render
from workers.agent.contract import RunOutcome, TaskSpec
from workers.agent.loop import drive
from workers.agent.planner import Planner
from workers.scripted import CodeRun, drive_code, save_script_run
from workers.workflows.context import BlockResult, WorkflowContext

AgentBlock = AgentBlockYAML | ValidationBlockYAML


async def run_agent_block(wf: WorkflowContext, block: AgentBlock, block_id: str,
                          values: dict[str, Any]) -> BlockResult:
    def text(value: str | None) -> str | None:
        return render(value, values) if value else None

    goal = _goal(block, text)
    if isinstance(block, LoginBlockYAML):
        credential = await asyncio.to_thread(_credential, wf, block)
        if credential is None:
            return BlockResult("failed", failure_reason=(
                "a login block needs a credential: name a credential parameter (or a credential_id "
                "parameter) in its parameter_keys"))
        wf.store.use_credential(credential)
    url = text(getattr(block, "url", None))
    schema = getattr(block, "data_schema", None)
    max_steps = wf.max_steps_override or block.max_steps_per_run or wf.settings.default_max_steps
    task = replace(wf.base_task, prompt=goal, url=url, max_steps=max_steps,
                   data_extraction_schema=schema if isinstance(schema, dict | list) else None,
                   error_code_mapping=block.error_code_mapping)
    downloads_before = wf.browser.downloads_started
    if isinstance(block, FileDownloadBlockYAML):  # this block's download options, for this block only
        wf.browser.configure_downloads(replace(
            wf.base_task.browser, download_suffix=block.download_suffix,
            download_timeout_s=block.download_timeout or wf.base_task.browser.download_timeout_s))
    wf.store.begin_block(block_id)
    planner = Planner(wf.settings, task)
    try:
        if wf.code is None or isinstance(block, ValidationBlockYAML):  # a verdict must be judged anew
            outcome = await drive(task, wf.browser, planner, wf.store, wf.steering)
        else:
            outcome = await _drive_code(wf, wf.code, block.label, block_id, task, planner, values)
    finally:
        await planner.aclose()
        wf.store.begin_block(None)
        wf.browser.configure_downloads(wf.base_task.browser)
    result = BlockResult(outcome.status, outcome.output, outcome.failure_reason)
    if isinstance(block, FileDownloadBlockYAML) and result.succeeded:
        return await _downloaded(wf, downloads_before, result)
    return result


async def _drive_code(wf: WorkflowContext, code: CodeRun, label: str, block_id: str, task: TaskSpec,
                      planner: Planner, values: dict[str, Any]) -> RunOutcome:
    """run_with "code": the block replays or records its own script, keyed by the run's cache key and
    the block's label; the run's script_run (summed over its blocks) is stored after each one. The
    script's references: the workflow's parameters, the loop's values, earlier blocks' outputs."""
    block_code = replace(code, cache_key=f"{code.cache_key}/{label}", title=f"{code.title} / {label}")
    parameters = {key: values[key] for key in (*wf.parameter_keys, *LOOP_NAMES) if key in values}
    for name in wf.output_keys:
        if name in values:  # only blocks that ran before this one, in its scope, have one
            parameters.update(outputs_by_path(name, values[name]))
    references = References(parameters, frozenset((*wf.parameter_keys, *LOOP_NAMES, *wf.output_keys)))
    outcome, script_run = await drive_code(wf.settings, block_code, task, wf.browser, planner, wf.store,
                                           wf.steering, references)
    wf.script_runs.append({"label": label, "workflow_run_block_id": block_id, **script_run})
    await asyncio.to_thread(save_script_run, wf.settings, task.run_id, workflow_script_run(wf.script_runs))
    return outcome


def workflow_script_run(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow run's script_run: the first block script's ids, the counts summed, each block's own."""
    first = next((block for block in blocks if block["script_id"]), blocks[0])
    summed = {name: sum(block[name] for block in blocks) for name in (
        "steps_replayed", "steps_healed", "llm_calls", "tokens_saved_estimate")}
    return {"script_id": first["script_id"], "script_revision_id": first["script_revision_id"],
            "ai_fallback_triggered": any(block["ai_fallback_triggered"] for block in blocks), **summed,
            "blocks": blocks}


def _goal(block: AgentBlock, text: Callable[[str | None], str | None]) -> str:
    if isinstance(block, ValidationBlockYAML):
        parts = ["Check the current page without changing it."]
    elif isinstance(block, LoginBlockYAML):
        parts = [LOGIN_GOAL.format(username=placeholder("username"), password=placeholder("password"))]
        if block.navigation_goal:
            parts.append(f"Additional instructions: {text(block.navigation_goal)}")
    elif isinstance(block, FileDownloadBlockYAML):
        parts = [DOWNLOAD_GOAL.format(goal=text(block.navigation_goal))]
    elif isinstance(block, ExtractionBlockYAML):
        parts = [f"Extract from the current page: {text(block.data_extraction_goal)}",
                 "Do not change the page unless the data is not visible; then call complete with the "
                 "extracted data as output."]
    elif isinstance(block, ActionBlockYAML):
        parts = [f"Take this one action on the page, then call complete: {text(block.navigation_goal)}"]
    else:
        parts = [text(block.navigation_goal) or ""]
        if block.data_extraction_goal:
            parts.append(f"Then extract: {text(block.data_extraction_goal)}, and call complete with it as "
                         "output.")
    if block.complete_criterion:
        parts.append(f"Call complete when this holds: {text(block.complete_criterion)}")
    if block.terminate_criterion:
        parts.append(f"Call terminate when this holds: {text(block.terminate_criterion)}")
    return "\n".join(part for part in parts if part)


def _credential(wf: WorkflowContext, block: LoginBlockYAML) -> CredentialValues | None:
    """The credential a login block names in parameter_keys (or the workflow's only credential)."""
    credential_ids = wf.credentials
    named = [credential_ids[key] for key in block.parameter_keys or [] if key in credential_ids]
    only = next(iter(credential_ids.values())) if len(credential_ids) == 1 else None
    chosen = named[0] if named else only
    if chosen is None:
        return None
    with session_scope(wf.settings.database_url) as s:
        row = find_credential(s, wf.organization_id, chosen)
        if row is None:
            raise ValueError(f"the credential {chosen} was deleted after the run was created")
        return reveal_credential(wf.settings, row)


async def _downloaded(wf: WorkflowContext, before: int, result: BlockResult) -> BlockResult:
    """A file_download block succeeds only once a file it started has been saved."""
    if wf.browser.downloads_started <= before:
        return BlockResult("failed", result.output, failure_reason=(
            "the model reported the download done, but no file was downloaded; check that the "
            "navigation goal leads to a download link or button"))
    names = []
    for index in range(before, wf.browser.downloads_started):
        path = await wf.browser.download_after(index, 1)
        if path is not None:
            names.append(path.name)
    return BlockResult("completed", {"downloaded_files": names, "output": result.output})
