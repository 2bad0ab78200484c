"""The tool registry: every tool the model can call, declared once — its arguments as one pydantic model,
its description, its handler — and the only place their arguments are validated and repaired.

A tool family module declares its tools with `@tool(...)`; `workers.agent.tools` imports the families in
the order the model sees them. Everything else reads the registry:

- `tool_schemas()` — the OpenAI `tools` list the planner sends (generated from the argument models);
- `tool_names()`, `get_tool(name)` — what exists;
- `validate(name, raw_args, refs=..., error_codes=...)` — the call's arguments as the tool's model, or
  `ToolArgsError` saying what to fix (the planner turns it into feedback, `apply` into a failed action);
- `workers.agent.tools.execute.apply(ctx, call)` — runs a call on the page and settles.

A handler is `async def handler(ctx: ToolContext, args: TheArgsModel) -> Done`. It raises `ActionError`
with a sentence the model can act on when the page refuses; Playwright errors are explained by `apply`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Generic, TypeVar, get_type_hints

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo

from workers.agent.browser import BrowserRun
from workers.agent.contract import RunOutcome, RunStore, Steering, TaskSpec
from workers.agent.page_state import parse_ref


class ActionError(Exception):
    """A model mistake or a page refusal, phrased so the model can act on it."""


class ToolArgsError(ValueError):
    """A call's arguments do not fit its tool. `message` names the tool (planner feedback); `detail`
    does not (the outcome of a failed action, which names the call already)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class ToolContext:
    """What a handler works with: the run's browser, its store, the labels of the snapshot the call was
    planned on (ref -> "button 'Save'"), the task (complete checks output against its schema), and who
    may take the browser over (ask_human)."""

    browser: BrowserRun
    store: RunStore
    labels: Mapping[str, str] = field(default_factory=dict)
    task: TaskSpec | None = None
    steering: Steering | None = None

    def label(self, ref: str) -> str:
        return self.labels.get(ref, ref)


@dataclass
class Done:
    """What a tool did: `label` names the action and its target, `detail` its effect when no navigation."""

    label: str
    detail: str = "done"
    stale: bool = False  # later refs may no longer match the page (new elements, menus, scrolling)
    ends_run: RunOutcome | None = None  # complete/terminate: how the run ends


class ToolArgs(BaseModel):
    """Base of every tool's argument model. Unknown arguments are dropped; `reasoning` is taken apart
    by the planner and never reaches a handler."""

    model_config = ConfigDict(extra="ignore")


A = TypeVar("A", bound=ToolArgs)
Handler = Callable[[ToolContext, A], Awaitable[Done]]


@dataclass(frozen=True)
class Tool(Generic[A]):
    name: str
    description: str
    args: type[A]
    handler: Handler[A]
    finishes: bool = False  # ends the run (complete, terminate): runs without touching the page
    idle: bool = False  # acts on nothing (wait): repeating it on an unchanged page is not a loop


_TOOLS: dict[str, Tool[Any]] = {}


def tool(name: str, description: str, *, finishes: bool = False,
         idle: bool = False) -> Callable[[Handler[A]], Handler[A]]:
    """Register the decorated handler as tool `name`; its arguments model is the handler's `args`
    annotation."""

    def register(handler: Handler[A]) -> Handler[A]:
        if name in _TOOLS:
            raise ValueError(f"tool {name!r} is registered twice")
        model = get_type_hints(handler)["args"]
        _TOOLS[name] = Tool(name, description, model, handler, finishes, idle)
        tool_schemas.cache_clear()
        return handler

    return register


def tool_names() -> tuple[str, ...]:
    return tuple(_TOOLS)


def get_tool(name: str) -> Tool[Any] | None:
    return _TOOLS.get(name)


@cache
def tool_schemas() -> list[dict[str, Any]]:
    """The tools as the OpenAI `tools` request field, in registration order. Only what the model needs:
    no titles or defaults, and an optional argument shown as its type, not anyOf [type, null]."""
    return [_schema(entry) for entry in _TOOLS.values()]


def _schema(entry: Tool[Any]) -> dict[str, Any]:
    schema = entry.args.model_json_schema()
    properties = {name: _lean(prop) for name, prop in schema.get("properties", {}).items()}
    properties["reasoning"] = {"type": "string"}
    return {"type": "function", "function": {
        "name": entry.name, "description": entry.description,
        "parameters": {"type": "object", "properties": properties, "required": schema.get("required", [])}}}


def _lean(prop: dict[str, Any]) -> dict[str, Any]:
    prop = {key: value for key, value in prop.items() if key not in ("title", "default")}
    options = [option for option in prop.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        prop = {**options[0], **prop}
    elif options:
        prop["anyOf"] = options
    return {"type": prop["type"], **prop} if "type" in prop else prop


def validate(name: str, raw_args: Mapping[str, Any], *, refs: set[str] | None = None,
             error_codes: set[str] | None = None) -> ToolArgs:
    """The arguments as tool `name`'s model, repaired where the intent is clear ("#e5" -> "e5",
    "Enter" -> ["Enter"], "2" -> 2). With `refs` (the snapshot's) a ref must be one of them; with
    `error_codes` (the task's) terminate's error_code must be one of them. Raises ToolArgsError."""
    entry = _TOOLS.get(name)
    if entry is None:
        raise ToolArgsError(f"unknown tool {name!r}; the tools are: {', '.join(_TOOLS)}.",
                            f"unknown tool; use one of: {', '.join(_TOOLS)}.")
    try:
        return entry.args.model_validate(dict(raw_args), context={"refs": refs, "error_codes": error_codes})
    except ValidationError as exc:
        raise _explain(name, exc) from None


def _explain(name: str, exc: ValidationError) -> ToolArgsError:
    missing = [str(error["loc"][0]) for error in exc.errors()
               if error["type"] == "missing" or error["input"] is None]  # null counts as left out
    if missing:
        return ToolArgsError(f"{name} needs the argument(s) {', '.join(missing)}.",
                             f"the argument(s) {', '.join(repr(arg) for arg in missing)} are missing.")
    error = exc.errors()[0]
    reason = error.get("ctx", {}).get("error")
    detail = str(reason) if reason is not None else f"'{error['loc'][0]}': {error['msg']}."
    return ToolArgsError(f"{name}: {detail}", detail)


# ---- argument types: liberal in what they take from a model, exact in what a handler gets ----------

def _ref(raw: Any, info: ValidationInfo) -> str:
    ref = parse_ref(raw)
    refs = (info.context or {}).get("refs")  # the snapshot's, when the planner checks a call
    if refs is not None and ref not in refs:
        raise ValueError(f"{raw!r} is not a ref in the current snapshot; use one shown as [ref=eN].")
    if ref is None:
        raise ValueError(f"{raw!r} is not an element ref; pass a ref from the snapshot such as e5.")
    return ref


def _text(raw: Any, info: ValidationInfo) -> Any:
    if isinstance(raw, dict | list):
        raise ValueError(f"the '{info.field_name}' argument must be a string.")
    return raw if raw is None else str(raw)


def _flag(raw: Any, info: ValidationInfo) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes", "on", "checked"}:
        return True
    if text in {"false", "0", "no", "off", "unchecked"}:
        return False
    raise ValueError(f"'{info.field_name}' must be true or false, not '{raw}'.")


def _number(raw: Any, info: ValidationInfo) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"'{info.field_name}' must be a number, not '{raw}'.") from None


def _whole(raw: Any, info: ValidationInfo) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{info.field_name} must be a whole number, not {raw!r}.") from None


Ref = Annotated[str, BeforeValidator(_ref)]
Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Number = Annotated[float, BeforeValidator(_number)]
Whole = Annotated[int, BeforeValidator(_whole)]
