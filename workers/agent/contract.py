"""The agent's contract: what a run asks of the agent, what the agent asks of its store, what it returns.

Every part of the agent (loop, planner, tools, page state, browser) shares these types and nothing else
of one another's; `workers.runner` wires them to the database, storage and lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

OutcomeStatus = Literal["completed", "failed", "terminated", "timed_out", "canceled"]
ReplayMark = Literal["replayed", "healed"]


@dataclass(frozen=True)
class BrowserOptions:
    viewport_width: int = 1280
    viewport_height: int = 720
    locale: str | None = None
    timezone_id: str | None = None
    user_agent: str | None = None
    extra_http_headers: dict[str, str] | None = None
    storage_state: dict[str, Any] | None = None  # a browser profile's cookies and localStorage
    browser_address: str | None = None  # the user's own Chromium (CDP) instead of the pool's
    cdp_connect_headers: dict[str, str] | None = None
    download_timeout_s: float | None = None  # how long a started download may take to finish
    download_suffix: str | None = None  # downloaded files are stored with names ending in it
    proxy: dict[str, str] | None = None  # Playwright's proxy settings (server, username, password, bypass)


@dataclass(frozen=True)
class RunFile:
    """A file uploaded with POST /v1/upload_file that the run's upload_file actions may use."""

    file_id: str
    filename: str


@dataclass(frozen=True)
class TaskSpec:
    run_id: str
    prompt: str
    url: str | None
    max_steps: int
    data_extraction_schema: Any = None
    error_code_mapping: dict[str, str] | None = None
    model: str | None = None  # overrides the configured model name
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    files: tuple[RunFile, ...] = ()
    max_repeated_actions: int = 3  # the same action on an unchanged page: told, then ended (repetition.py)


@dataclass
class StepUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_ms: int = 0


@dataclass
class RunOutcome:
    status: OutcomeStatus
    output: Any = None
    summary: str | None = None
    failure_reason: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class RunStore(Protocol):
    """Where the agent records what it does. Every method may touch the database or storage."""

    async def start_step(self, index: int, url: str) -> str:
        """Record a new step; returns its step id."""
        ...

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        """Store bytes as an artifact of the run (step_id None = run-level); returns the artifact id."""
        ...

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str: ...

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str,
                            replay: ReplayMark | None = None) -> None:
        """`replay`: how a replay did the action ("replayed" from its script, or "healed" by the model)."""
        ...

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None: ...

    async def verification_code(self) -> str | None:
        """The freshest unused one-time code for this run (pushed, pulled from totp_url, or generated),
        waiting up to the configured time; None if none came."""
        ...

    def reveal(self, text: str) -> str:
        """`text` with the run's credential placeholders (`{{credential.password}}`) replaced by their
        values, for typing only (records keep the placeholder); ValueError naming a placeholder the
        run has no value for. A store without a credential returns `text` as it is."""
        ...


class Steering(Protocol):
    """Whether a person has the browser: asked at every step boundary, so no action starts while
    someone holds control."""

    async def wait_if_paused(self) -> str | None:
        """None at once when nobody asked for control; else waits until control is given back and
        returns why the run paused (a person took control, or ask_human's reason)."""
        ...

    async def ask_human(self, reason: str) -> None:
        """Pause at the next step boundary until a person has done what `reason` says."""
        ...


@dataclass(frozen=True)
class ToolCall:
    """One tool call from the planner, already parsed: name is a registered tool's name."""

    name: str
    args: dict[str, Any]
    reasoning: str | None = None
    call_id: str = ""


@dataclass(frozen=True)
class ActionResult:
    succeeded: bool
    outcome: str  # one line for the history, e.g. "click 'Save' -> navigated to /done"
    page_changed: bool = False  # navigation, new tab, or DOM changed enough that later refs are stale
    ends_run: RunOutcome | None = None  # set by complete and terminate: how the run ends
    problem: str | None = None  # why a call failed, without the call's description (sent back to the model)


class ActionRecorder(Protocol):
    """Watches the calls the step loop applies (the replay package's Recorder writes them down as a
    script): `before` sees a call and the labels of the snapshot it was planned on, `after` its result."""

    async def before(self, call: ToolCall, labels: Mapping[str, str]) -> None: ...

    def after(self, call: ToolCall, result: ActionResult) -> None: ...


class PlannerError(Exception):
    """The LLM endpoint cannot be used (not configured, unreachable, refusing); the message is a
    sentence that tells the user what to fix. `request` is what was being sent, if anything."""

    def __init__(self, message: str, request: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.request = request
