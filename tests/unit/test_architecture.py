"""The house's structure, checked: no import circles, and the agent's tool list is the documented one."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

from workers.agent.tools import tool_schemas

PLANNER_DOC = Path(__file__).resolve().parents[2] / "docs" / "planner.md"


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("app", "workers")
    circles = [(module, other) for module in sorted(graph.modules)
               for other in graph.find_modules_directly_imported_by(module)
               if graph.chain_exists(importer=other, imported=module)]
    assert circles == []


def documented_tools() -> dict[str, list[tuple[str, bool]]]:
    """docs/planner.md's tool table: tool -> [(argument, optional)], in the table's order."""
    section = PLANNER_DOC.read_text().split("## Tools", 1)[1].split("\n### ", 1)[0]
    tools: dict[str, list[tuple[str, bool]]] = {}
    for name, arguments in re.findall(r"^\| `(\w+)` \| (.*?) \| .* \|$", section, re.MULTILINE):
        notes = re.findall(r"`(\w+)`(?: \(([^)]*)\))?", arguments)  # `ref` (optional), `keys` (list of ...)
        tools[name] = [(arg, "optional" in note) for arg, note in notes]
    return tools


def test_the_generated_tool_list_is_the_documented_one() -> None:
    generated = {}
    for entry in tool_schemas():
        function = entry["function"]
        properties = [name for name in function["parameters"]["properties"] if name != "reasoning"]
        required = function["parameters"]["required"]
        generated[function["name"]] = [(name, name not in required) for name in properties]
    assert generated == documented_tools()
