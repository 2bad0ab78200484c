"""Parameter references in a workflow block's script: a recorded value that came from a run parameter or
an earlier block's output is stored as `{{ key }}`, never the literal, and a replay puts the run's own
value back in its place.

A parameter counts when its value is a string of at least MIN_LENGTH characters (shorter ones, numbers
and booleans would match by chance); every occurrence of it in a step's arguments and intent, and in the
recorded output and summary, becomes the reference, longest values first. An output is taken apart into
its values by path (`extract_output.code`, `extract_output.items.0`: `outputs_by_path`). Rendering
replaces exactly those `{{ key }}` references (not Jinja: a credential placeholder such as
`{{credential.password}}` stays as it is, to be revealed only when typed). A reference this run has no
value for (an earlier block's output without that path, or null) stays, and `References.unfilled` names
it, so a replay never types it as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.scripts.document import ScriptDoc

MIN_LENGTH = 3
_NAME = re.compile(r"\w+")  # a path part a reference can hold (and the export can name an argument after)
REFERENCE = re.compile(r"\{\{ (\w+(?:\.\w+)*) \}\}")  # as `reference` writes it; group 1 is the key


def reference(key: str) -> str:
    return "{{ " + key + " }}"


@dataclass(frozen=True)
class References:
    """What a workflow block's script may refer to in this run: the value of each parameter key and output
    path (`outputs_by_path`), and every name a reference may start with (the workflow's parameters, the
    loop's values, the blocks' outputs), whether this run has a value for it or not."""

    values: Mapping[str, Any] = field(default_factory=dict)
    names: frozenset[str] = frozenset()

    def unfilled(self, value: Any) -> list[str]:
        """The references to one of `names` still in `value` (strings inside dicts and lists, after
        with_values): those this run has no value for. Other `{{ … }}` text was typed as such."""
        found: dict[str, None] = {}

        def collect(text: str) -> str:
            found.update((reference(key), None) for key in REFERENCE.findall(text)
                         if key.split(".", 1)[0] in self.names)
            return text

        _walk(value, collect)
        return list(found)


def outputs_by_path(name: str, output: Any) -> dict[str, Any]:
    """An output's values under their paths from `name` (an object's keys and a list's indexes, joined by
    dots); a value under a key that is not a plain name is left out."""
    if isinstance(output, dict):
        return {path: value for key, item in output.items() if isinstance(key, str) and _NAME.fullmatch(key)
                for path, value in outputs_by_path(f"{name}.{key}", item).items()}
    if isinstance(output, list):
        return {path: value for index, item in enumerate(output)
                for path, value in outputs_by_path(f"{name}.{index}", item).items()}
    return {name: output}


def with_references(script: ScriptDoc, parameters: Mapping[str, Any]) -> ScriptDoc:
    """`script` with each parameter's value written as a reference to the parameter."""
    pairs = sorted(((value, reference(key)) for key, value in parameters.items()
                    if isinstance(value, str) and len(value) >= MIN_LENGTH), key=lambda pair: -len(pair[0]))
    return _mapped(script, lambda text: _substituted(text, pairs))


def with_values(script: ScriptDoc, parameters: Mapping[str, Any]) -> ScriptDoc:
    """`script` with each reference to a parameter replaced by the parameter's value in this run."""
    pairs = [(reference(key), str(value)) for key, value in parameters.items() if value is not None]
    return _mapped(script, lambda text: _substituted(text, pairs))


def _substituted(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def _mapped(script: ScriptDoc, change: Callable[[str], str]) -> ScriptDoc:
    steps = [replace(step, args=_walk(step.args, change),
                     intent=change(step.intent) if step.intent is not None else None)
             for step in script.steps]
    return replace(script, steps=steps, output=_walk(script.output, change),
                   summary=change(script.summary) if script.summary is not None else None)


def _walk(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _walk(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, change) for item in value]
    return value
