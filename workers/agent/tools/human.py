"""ask_human: what only a person can do (a CAPTCHA, a confirmation only the owner may give). The run
pauses at the next step boundary with the reason shown on its page, and goes on once the person who took
control gives it back (or ends terminated when nobody comes within WAYFARER_MAX_PAUSE_SECONDS)."""

from __future__ import annotations

from workers.agent.tools.registry import ActionError, Done, Text, ToolArgs, ToolContext, tool


class AskHumanArgs(ToolArgs):
    reason: Text


@tool("ask_human", "A person must act (a CAPTCHA, the owner's approval); the run waits for them. "
      "reason: what they should do.")
async def ask_human(ctx: ToolContext, args: AskHumanArgs) -> Done:
    reason = args.reason.strip()
    if not reason:
        raise ActionError("say what the person should do (reason).")
    if ctx.steering is None:
        raise ActionError("no person can be asked in this run; carry on or terminate.")
    await ctx.steering.ask_human(reason)
    # stale: nothing else runs this step; the next step boundary waits for the person
    return Done("ask_human", f"waiting for a person: {reason}", stale=True)
