"""Tokens per step of what we send the model, over the test pages and a corpus of big real pages.

Every page of tests/sites/pages and bench/pages is opened in a real run context (workers.agent.browser),
captured the way a step captures it (workers.agent.page_state.capture) and turned into the exact request the
planner sends (workers.agent.planner.Planner.build_request). Per page it prints the snapshot tokens, the
baseline (the untrimmed aria snapshot, boxes stripped, measured on the same page), and whether every
interactive element of the raw snapshot survived trimming or is reachable through the scroll hint (a
sample of the left-out ones is scrolled to, as the hint says, and must then appear).
The fixed prompt (system message + tool schemas) is the same for every step and printed once.

    .venv/bin/python bench/prompt_tokens.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/prompt_tokens.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BENCH_PAGES,
    Spread,
    bench_pages,
    machine,
    print_table,
    ratio,
    serve_directory,
    token_encoding,
    verdict,
)
from tests.integration.agent.memory_store import MemoryStore
from tests.sites.server import PAGES, serve_sites
from tests.support.browser import browser_settings
from workers.agent.browser import BrowserPool
from workers.agent.contract import BrowserOptions, TaskSpec, ToolCall
from workers.agent.page_state import capture, refs_in
from workers.agent.planner import TOOLS, Planner, system_prompt
from workers.agent.tools import ToolContext, apply

TASK_PROMPT = "Find the section about the main options on this page and report its first sentence."
INTERACTIVE_ROLES = frozenset({
    "button", "link", "textbox", "searchbox", "combobox", "listbox", "option", "checkbox", "radio",
    "switch", "slider", "spinbutton", "menuitem", "menuitemcheckbox", "menuitemradio", "tab", "treeitem",
})
FIXED_TARGET, TEST_TARGET, BIG_TARGET = 1500, 2000, 4000
SCROLL_HINT = "scroll up/down to see them"
BOX = re.compile(r" \[box=[^\]]*\]")
BOX_Y = re.compile(r"\[box=-?[\d.]+,(-?[\d.]+),")
REF = re.compile(r"\[ref=([^\]]+)\]")
PANEL_REF = re.compile(r"\d+ in \[ref=([^\]]+)\]")  # a panel the scroll hint names
PROBES = 6  # left-out elements checked per page
MAX_PANEL_SCROLLS = 30


@dataclass
class PageFigures:
    corpus: str
    page: str
    raw_tokens: int  # baseline: the whole aria snapshot, boxes stripped
    snapshot_tokens: int
    request_tokens: int  # everything sent: system + user message + tool schemas
    interactive: int
    kept: int
    reachable: int  # not in the snapshot, but the snapshot says to scroll for the rest
    probed: int  # left-out elements scrolled to and captured again
    found: int  # ... of which the new snapshot really showed


def count(encoding: Any, text: str) -> int:
    return len(encoding.encode(text, disallowed_special=()))


def request_tokens(request: dict[str, Any], encoding: Any) -> int:
    texts = [str(message["content"]) for message in request["messages"]]
    return sum(count(encoding, text) for text in texts) + count(encoding, json.dumps(request["tools"]))


async def measure(pages: list[tuple[str, str, str]], encoding: Any, data_dir: Path) -> list[PageFigures]:
    settings = browser_settings(data_dir).model_copy(update={
        "llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": "bench"})  # never called
    task = TaskSpec("tsk_bench", TASK_PROMPT, None, 10)
    planner = Planner(settings, task)
    pool = BrowserPool(settings)
    await pool.start()
    figures: list[PageFigures] = []
    try:
        for corpus, name, url in pages:
            number = len(figures)
            run = await pool.open_run(f"bench-{number}", BrowserOptions(), data_dir / f"p{number}")
            try:
                page = run.active_page
                with contextlib.suppress(Exception):  # a page that never finishes loading: as it stands
                    await page.goto(url, wait_until="load", timeout=15_000)
                raw = await page.aria_snapshot(mode="ai", boxes=True, timeout=30_000)
                state = await capture(run, screenshot=False)
                labels = dict(state.labels)
                raw_refs = {ref for ref, label in labels.items()
                            if label.split(" ", 1)[0] in INTERACTIVE_ROLES}
                shown = refs_in(state.snapshot)
                probed, missed = await probe_scroll_hint(run, raw, sorted(raw_refs - shown))
                for ref in missed:
                    print(f"scroll hint missed on {name}: {labels[ref]} [{ref}]", file=sys.stderr)
            finally:
                await run.close()
            kept = len(raw_refs & shown)
            missing = len(raw_refs - shown)
            request = planner.build_request(state, [], None)
            figures.append(PageFigures(
                corpus, name, count(encoding, BOX.sub("", raw)), count(encoding, state.snapshot),
                request_tokens(request, encoding), len(raw_refs), kept,
                missing if SCROLL_HINT in state.snapshot else 0, probed, probed - len(missed)))
    finally:
        await pool.stop()
        await planner.aclose()
    return figures


async def probe_scroll_hint(run: Any, raw: str, missing: list[str]) -> tuple[int, list[str]]:
    """Scroll to a sample of the left-out elements the way the note says and capture again: is each
    then in the snapshot? First the window, to where the raw snapshot placed the element; failing that,
    inside each scrollable panel the note names (the scroll tool with that ref, down then up, as a model
    would). Returns (probed, refs not shown)."""
    tops: dict[str, float] = {}
    for line in raw.splitlines():
        ref_match, box = REF.search(line), BOX_Y.search(line)
        if ref_match and box:
            tops[ref_match.group(1)] = float(box.group(1))
    sample = [ref for ref in missing if ref in tops]
    sample = sample[:: max(1, len(sample) // PROBES)][:PROBES]
    missed = []
    for ref in sample:
        await run.active_page.evaluate("y => window.scrollTo(0, y)", max(0.0, tops[ref] - 100))
        snapshot = (await capture(run, screenshot=False)).snapshot
        if ref not in refs_in(snapshot) and not await scroll_panels_until_shown(run, snapshot, ref):
            missed.append(ref)
    return len(sample), missed


async def scroll_panels_until_shown(run: Any, snapshot: str, ref: str) -> bool:
    store = MemoryStore()
    for panel in PANEL_REF.findall(snapshot.split("\n", 1)[0]):
        for direction in ("down", "up"):
            for _ in range(MAX_PANEL_SCROLLS):
                call = ToolCall("scroll", {"ref": panel, "direction": direction})
                result = await apply(ToolContext(run, store), call)
                if not result.page_changed:
                    break
                if ref in refs_in((await capture(run, screenshot=False)).snapshot):
                    return True
    return False


def fixed_tokens(encoding: Any) -> tuple[int, int]:
    """(system message, tool schemas) tokens for a typical task prompt."""
    system = system_prompt(TaskSpec("tsk_bench", TASK_PROMPT, None, 10))
    return count(encoding, system), count(encoding, json.dumps(TOOLS))


def main() -> None:
    encoding, encoding_name = token_encoding()
    test_pages = sorted(path.name for path in PAGES.glob("*.html"))
    with serve_sites() as sites, serve_directory(BENCH_PAGES) as corpus_url, \
            tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        pages = [("test", name, sites.url(f"/{name}")) for name in test_pages]
        pages += [("big", name, f"{corpus_url}/{name}") for name in bench_pages()]
        figures = asyncio.run(measure(pages, encoding, Path(tmp)))
    system, tools = fixed_tokens(encoding)
    print(f"machine: {machine()}")
    print(f"tokenizer: {encoding_name}\n")
    print_table(
        ("corpus", "page", "raw tokens", "snapshot tokens", "vs raw", "request tokens", "interactive",
         "kept", "via scroll", "probed→found"),
        [(f.corpus, f.page, f.raw_tokens, f.snapshot_tokens, ratio(f.snapshot_tokens, f.raw_tokens),
          f.request_tokens, f.interactive, f.kept, f.reachable, f"{f.probed}→{f.found}" if f.probed else "")
         for f in figures])
    fixed = system + tools
    print(f"\nfixed prompt: {fixed} tokens (system {system} + tools {tools}) — target ≤ {FIXED_TARGET}: "
          f"{verdict(fixed <= FIXED_TARGET)}")
    for corpus, target in (("test", TEST_TARGET), ("big", BIG_TARGET)):
        rows = [f for f in figures if f.corpus == corpus]
        snapshot = Spread.of(f.snapshot_tokens for f in rows)
        raw = Spread.of(f.raw_tokens for f in rows)
        total = Spread.of(f.request_tokens for f in rows)
        interactive = sum(f.interactive for f in rows)
        kept = sum(f.kept for f in rows)
        reachable = sum(f.reachable for f in rows)
        share = (kept + reachable) / interactive if interactive else 1.0
        probed, found = sum(f.probed for f in rows), sum(f.found for f in rows)
        print(f"{corpus} pages ({len(rows)}): median snapshot {snapshot.show()} tokens, "
              f"{ratio(snapshot.median, raw.median)} the untrimmed baseline ({raw.median:.0f}); "
              f"median request {total.median:.0f} tokens; target ≤ {target}: "
              f"{verdict(snapshot.median <= target)}")
        print(f"  interactive elements: {interactive}, kept {kept}, reachable via scroll hint {reachable} "
              f"({share:.1%}) — target 100%: {verdict(share >= 1.0 and found == probed)}")
        if probed:
            print(f"  scroll-hint check: scrolled to {probed} left-out elements, {found} then appeared "
                  f"({found / probed:.0%})")


if __name__ == "__main__":
    main()
