"""Jinja2 templates in workflow fields (`{{ param }}`, `{{ label_output }}`): one sandboxed environment
for checking a definition and for rendering at run time, where an undefined name is an error naming it."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment

ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# Names every field may use besides parameters and earlier outputs.
RUN_NAMES = ("workflow_run_id", "workflow_id", "workflow_permanent_id", "workflow_title")
LOOP_NAMES = ("current_value", "current_index", "current_item")


class TemplateInvalid(ValueError):
    """A template that does not parse, or names something that is not defined."""


def names_in(text: str) -> set[str]:
    """The free names a template reads (Jinja's own globals such as `range` excluded)."""
    if "{" not in text:
        return set()
    try:
        parsed = ENVIRONMENT.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"is not a valid template: {exc.message}") from exc
    return set(meta.find_undeclared_variables(parsed)) - set(ENVIRONMENT.globals)


def render(text: str, context: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    try:
        return ENVIRONMENT.from_string(text).render(context)
    except UndefinedError as exc:
        raise TemplateInvalid(f"{exc.message} in {text!r}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"is not a valid template: {exc.message}") from exc


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Every string inside `value` (dicts and lists walked) rendered."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    return value


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """The value of a lone `{{ expression }}` as a Python object (the list a loop runs over, a
    condition); any other text is rendered to a string."""
    text = expression.strip()
    if not (text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1):
        return render(expression, context)
    inner = text[2:-2].strip()
    try:
        value = ENVIRONMENT.compile_expression(inner, undefined_to_none=False)(**context)
    except UndefinedError as exc:
        raise TemplateInvalid(f"{exc.message} in {expression!r}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(f"is not a valid template: {exc.message}") from exc
    if isinstance(value, Undefined):
        raise TemplateInvalid(f"{inner!r} is undefined in {expression!r}")
    return value
