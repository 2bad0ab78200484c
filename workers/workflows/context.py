"""What every block of a workflow run shares, and what a block returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.platform.settings import Settings
from workers.agent.browser import BrowserRun
from workers.agent.contract import OutcomeStatus, TaskSpec
from workers.control import RunSteering
from workers.run_store import DbRunStore
from workers.scripted import CodeRun
from workers.workflows.records import BlockRecorder


@dataclass
class WorkflowContext:
    """One run's shared state: its browser context (cookies carry from block to block), its store, the
    person steering it, and the values templates read (parameters, earlier outputs, run names)."""

    settings: Settings
    organization_id: str
    base_task: TaskSpec  # the run's browser options, files and model; each agent block adds its goal
    browser: BrowserRun
    store: DbRunStore
    steering: RunSteering
    recorder: BlockRecorder
    values: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # parameter key -> credential id (login)
    code: CodeRun | None = None  # run_with "code": each agent block replays or records its own script
    parameter_keys: tuple[str, ...] = ()  # the workflow parameters a script stores as references
    output_keys: tuple[str, ...] = ()  # the names blocks' outputs take in values (script references)
    script_runs: list[dict[str, Any]] = field(default_factory=list)  # each code block's script_run
    outputs: dict[str, Any] = field(default_factory=dict)  # each finished block's output, by label
    finally_started: bool = False  # the finally_block_label block runs once (engine.run_finally_block)
    max_steps_override: int | None = None  # the run's (x-max-steps-override): each agent block's step limit


@dataclass
class BlockResult:
    status: OutcomeStatus
    output: Any = None
    failure_reason: str | None = None
    next_label: str | None = None  # a conditional's chosen branch: where the sequence continues

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"
