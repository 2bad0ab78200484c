"""verification_code: types the run's current one-time (2FA) code, which the model never sees."""

from __future__ import annotations

from workers.agent.tools.elements import ElementArgs, element, fill
from workers.agent.tools.registry import ActionError, Done, ToolContext, tool


@tool("verification_code", "Type the current one-time (2FA) code into a field.")
async def verification_code(ctx: ToolContext, args: ElementArgs) -> Done:
    target = await element(ctx, args.ref)
    code = await ctx.store.verification_code()
    if not code:
        raise ActionError("no verification code arrived for this run; terminate if the site insists.")
    await fill(target, code)
    return Done(f"verification_code {target.label}", f"typed the code ({len(code)} characters)")
