"""Workflow engine overhead: what each block costs on top of its own work, with blocks that do nothing
(`wait` of 0 s), so the figure is the engine's: the block's row written at start and end, templates,
the output stored. Measured on the embedded server (SQLite), as a run's started_at..finished_at.

The baseline, in the same run, is a workflow of one such block; the figures are per extra block, for
blocks in a row and for a for_loop's iterations (one row per iteration's block, plus the loop's).

    .venv/bin/python bench/workflow_blocks.py [--blocks 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/workflow_blocks.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Spread, machine, print_table
from tests.support.stack import Stack, running_stack

PAUSE = {"block_type": "wait", "wait_sec": 0}


def run_seconds(stack: Stack, blocks: list[dict[str, Any]], parameters: list[dict[str, Any]]) -> float:
    with stack.client() as client:
        created = client.post("/v1/agents", json={"title": "bench", "workflow_definition": {
            "parameters": parameters, "blocks": blocks}})
        created.raise_for_status()
        started = client.post("/v1/run/agents", json={"agent_id": created.json()["workflow_permanent_id"]})
        started.raise_for_status()
    run = stack.wait_final(started.json()["run_id"], timeout=300)
    assert run["status"] == "completed", run.get("failure_reason")
    elapsed = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])
    return elapsed.total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.blocks
    in_a_row = [{**PAUSE, "label": f"pause_{i}"} for i in range(n)]
    loop = [{"block_type": "for_loop", "label": "each", "loop_over_parameter_key": "items",
             "loop_blocks": [{**PAUSE, "label": "pause"}]}]
    items = [{"key": "items", "workflow_parameter_type": "json", "default_value": list(range(n))}]
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), llm_base_url=None) as stack:
        run_seconds(stack, in_a_row[:1], [])  # the browser's start-up is not measured
        one, row, looped = [], [], []
        for _ in range(args.repeats):
            one.append(run_seconds(stack, in_a_row[:1], []))
            row.append(run_seconds(stack, in_a_row, []))
            looped.append(run_seconds(stack, loop, items))
    base = Spread.of(one).median
    print(f"workflow engine overhead per block, {args.repeats} runs each; {machine()}")
    print_table(("workflow", "run (s, median)", "per extra block (ms)"), [
        ("1 wait block (baseline)", f"{base:.2f}", "-"),
        (f"{n} wait blocks in a row", f"{Spread.of(row).median:.2f}",
         f"{(Spread.of(row).median - base) * 1000 / (n - 1):.1f}"),
        (f"for_loop over {n} items, 1 wait block each", f"{Spread.of(looped).median:.2f}",
         f"{(Spread.of(looped).median - base) * 1000 / n:.1f}"),
    ])


if __name__ == "__main__":
    main()
