"""A RunStore that keeps everything in memory, for assertions (tests) and measurements (bench)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.agent.browser import BrowserRun
from workers.agent.contract import StepUsage


@dataclass
class Artifact:
    step_id: str | None
    artifact_type: str
    data: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class MemoryStore:
    """A RunStore that keeps everything in lists, for assertions."""

    steps: list[tuple[str, int, str]] = field(default_factory=list)  # (step_id, index, url)
    artifacts: list[Artifact] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[str, tuple[StepUsage, int]] = field(default_factory=dict)
    browser: BrowserRun | None = None  # the run's browser, for tests that break it

    async def start_step(self, index: int, url: str) -> str:
        step_id = f"stp_{index}"
        self.steps.append((step_id, index, url))
        return step_id

    async def save_artifact(self, step_id: str | None, artifact_type: str, data: bytes,
                            content_type: str, filename: str | None = None) -> str:
        self.artifacts.append(Artifact(step_id, artifact_type, data, content_type))
        return f"a_{len(self.artifacts)}"

    async def save_artifact_file(self, step_id: str | None, artifact_type: str, path: Path,
                                 content_type: str, filename: str | None = None) -> str:
        return await self.save_artifact(step_id, artifact_type, path.read_bytes(), content_type, filename)

    async def record_action(self, step_id: str, index: int, action_type: str, arguments: dict[str, Any],
                            reasoning: str | None, succeeded: bool, outcome: str,
                            replay: str | None = None) -> None:
        self.actions.append({"step_id": step_id, "index": index, "action_type": action_type,
                             "arguments": arguments, "succeeded": succeeded, "outcome": outcome,
                             "replay": replay})

    async def finish_step(self, step_id: str, usage: StepUsage, harness_ms: int) -> None:
        self.finished[step_id] = (usage, harness_ms)

    async def verification_code(self) -> str | None:
        return None

    def reveal(self, text: str) -> str:
        return text

    def of_type(self, artifact_type: str) -> list[Artifact]:
        return [artifact for artifact in self.artifacts if artifact.artifact_type == artifact_type]
