"""The agent's tools: `registry` declares them, one module per family holds their argument models and
handlers, `execute.apply` runs a call. The families are imported here in the order the model sees them;
a new tool is a `@tool` function in one of them (or in a new family module listed here)."""

# isort: off
# Registration order is the order of the tool list the model sees: keep these in this order.
from workers.agent.tools import elements, files, gestures, navigation, verification, human, finish
# isort: on
from workers.agent.tools.execute import apply
from workers.agent.tools.registry import (
    ActionError,
    Done,
    Tool,
    ToolArgs,
    ToolArgsError,
    ToolContext,
    get_tool,
    tool,
    tool_names,
    tool_schemas,
    validate,
)

FAMILIES = (elements, files, gestures, navigation, verification, human, finish)

__all__ = ["FAMILIES", "ActionError", "Done", "Tool", "ToolArgs", "ToolArgsError", "ToolContext", "apply",
           "get_tool", "tool", "tool_names", "tool_schemas", "validate"]
