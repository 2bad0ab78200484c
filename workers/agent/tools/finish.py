"""The tools that end a run: complete (its output checked against data_extraction_schema) and terminate."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo, field_validator, model_validator

from app.schemas.extraction import output_problem
from workers.agent.contract import RunOutcome
from workers.agent.tools.registry import ActionError, Done, Text, ToolArgs, ToolContext, tool


class CompleteArgs(ToolArgs):
    output: Any
    summary: Text | None

    @model_validator(mode="before")
    @classmethod
    def _bare_call_is_fine(cls, data: Any) -> Any:
        """Both are asked for; a bare complete() still completes (output checked against the schema)."""
        return {"output": None, "summary": None, **data} if isinstance(data, dict) else data


class TerminateArgs(ToolArgs):
    reason: Text
    error_code: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _code_given_or_none(cls, data: Any) -> Any:
        return {**data, "error_code": data.get("error_code") or None} if isinstance(data, dict) else data

    @field_validator("error_code")
    @classmethod
    def _a_task_code(cls, code: str | None, info: ValidationInfo) -> str | None:
        codes = (info.context or {}).get("error_codes")
        if code is not None and codes and code not in codes:
            raise ValueError(f"error_code {code!r} is not one of the task's error codes "
                             f"({', '.join(sorted(codes))}); pick one of them or leave it out.")
        return code


@tool("complete", "The task is done. output: the requested data, matching the output schema "
      "(null if none is asked); summary: what you did.", finishes=True)
async def complete(ctx: ToolContext, args: CompleteArgs) -> Done:
    problem = output_problem(ctx.task.data_extraction_schema if ctx.task else None, args.output)
    if problem is not None:
        raise ActionError(problem)
    return Done("complete", "the run completed",
                ends_run=RunOutcome("completed", output=args.output, summary=args.summary))


@tool("terminate", "The task cannot be done. reason: why; error_code: one of the error codes, "
      "if one applies.", finishes=True)
async def terminate(ctx: ToolContext, args: TerminateArgs) -> Done:
    reason = args.reason.strip() or "The model ended the run without giving a reason."
    errors = [{"error_code": args.error_code, "reasoning": reason, "confidence_float": 1.0,
               "error_type": "USER_DEFINED_ERROR"}] if args.error_code else []
    return Done("terminate", reason, ends_run=RunOutcome("terminated", failure_reason=reason, summary=reason,
                                                         errors=errors))
