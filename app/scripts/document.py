"""The recorded script: what a replay needs to repeat a run without the model, kept as JSON.

A step is one tool call as the registry knows it (`tool`, `args` without the snapshot ref) plus, for a
call on an element, the `Target` saying how to find that element again. Typed values are kept as given;
credential placeholders (`{{credential.password}}`) stay placeholders and one-time codes are never
recorded (verification_code fetches its code when it runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = "wayfarer-script/1"


class ScriptFormatError(ValueError):
    """A script.json that is not a script this version can replay; the message says what is wrong."""


@dataclass(frozen=True)
class Target:
    """How a replay finds an element: its role and accessible name in the aria snapshot and its position
    among elements with the same role and name in the same frame, then the fallbacks."""

    role: str
    name: str = ""
    nth: int = 0  # position among equals (same role, name and frame), in document order
    equals: int = 1  # how many equals the recording saw; another count makes `nth` ambiguous
    frame: str = ""  # the snapshot's frame prefix of the ref ("" main frame, "f1" an iframe)
    frames: tuple[str, ...] = ()  # CSS selectors of the iframes leading to it, outermost first (export)
    fallbacks: tuple[str, ...] = ()  # CSS selectors from stable attributes: id, name, data-testid, label
    css: str | None = None  # the element's CSS path, the last resort

    @property
    def label(self) -> str:
        """As the snapshot's element labels write it: "button 'Sign'"."""
        return f"{self.role} '{self.name}'" if self.name else self.role


@dataclass(frozen=True)
class ScriptStep:
    tool: str
    args: dict[str, Any]  # the call's arguments without `ref`
    target: Target | None = None
    url: str | None = None  # the page the step was taken on: its URL and title
    title: str | None = None
    intent: str | None = None  # what the step did when recorded ("click button 'Sign'"), for a heal prompt


@dataclass
class ScriptDoc:
    start_url: str | None
    steps: list[ScriptStep] = field(default_factory=list)
    output: Any = None  # complete's output and summary, reused when the final page still shows it
    summary: str | None = None
    llm_calls: int = 0  # what the recording run spent, for tokens_saved_estimate
    tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> ScriptDoc:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ScriptFormatError(f"script.json must be an object with \"format\": \"{FORMAT}\".")
        try:
            steps = [ScriptStep(tool=str(step["tool"]), args=dict(step.get("args") or {}),
                                target=_target(step.get("target")), url=step.get("url"),
                                title=step.get("title"), intent=step.get("intent"))
                     for step in data.get("steps") or []]
            return cls(start_url=data.get("start_url"), steps=steps, output=data.get("output"),
                       summary=data.get("summary"), llm_calls=int(data.get("llm_calls") or 0),
                       tokens=int(data.get("tokens") or 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ScriptFormatError(f"script.json has a malformed step: {exc!r}.") from None


def _target(data: Any) -> Target | None:
    if data is None:
        return None
    return Target(role=str(data["role"]), name=str(data.get("name") or ""), nth=int(data.get("nth") or 0),
                  equals=int(data.get("equals") or 1), frame=str(data.get("frame") or ""),
                  frames=tuple(data.get("frames") or ()), fallbacks=tuple(data.get("fallbacks") or ()),
                  css=data.get("css"))
