"""What recording a run costs a step: Playwright's video recorder against the CDP screencast recorder.

Runs the step-overhead tasks' pages and actions in a bare Playwright loop (snapshot, act: the floor)
three ways, taking turns task by task so all see the same load: no recording; Playwright's
record_video_dir (ffmpeg at a fixed 25 frames/s); and the screencast (workers/agent/screencast.py)
encoded by workers/agent/recording.py on its own thread, as a run records. Prints the median step time
of each, their ratios to the bare floor, and checks each screencast recording with ffprobe. Not a test:
run it and read the figures.

    .venv/bin/python -m bench.recording [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/recording.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.common import Spread, bare_chromium, machine, ratio
from bench.step_overhead import TASKS, floor_steps
from tests.sites.server import serve_sites
from tests.support.browser import browser_settings
from workers.agent.browser import link_playwright_ffmpeg

VARIANTS = ("bare", "playwright video", "screencast")


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return {"codec": data["streams"][0]["codec_name"], "seconds": float(data["format"]["duration"])}


async def measure(repeats: int, data_dir: Path) -> dict[str, list[int]]:
    settings = browser_settings(data_dir)
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(link_playwright_ffmpeg(data_dir / "playwright"))
    figures: dict[str, list[int]] = {variant: [] for variant in VARIANTS}
    probes: list[dict[str, Any]] = []
    with serve_sites() as sites:
        async with bare_chromium(settings) as browser:
            for repeat in range(repeats):
                for name, (path, script) in TASKS.items():
                    workdir = data_dir / f"{repeat}-{name.replace(' ', '-')}"
                    url = sites.url(path)
                    figures["bare"] += await floor_steps(browser, url, script, None)
                    figures["playwright video"] += await floor_steps(browser, url, script, None,
                                                                     workdir / "video")
                    recording = workdir / "screencast.webm"
                    figures["screencast"] += await floor_steps(browser, url, script, recording)
                    if recording.exists():
                        probes.append(probe(recording))
    codecs = sorted({p["codec"] for p in probes})
    print(f"screencast recordings: {len(probes)}, codecs {codecs}, "
          f"durations {Spread.of(p['seconds'] for p in probes).show(2)} s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each task (default 3)")
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        figures = asyncio.run(measure(repeats, Path(tmp)))
    print(f"machine: {machine()}")
    bare = Spread.of(figures["bare"])
    for variant, timings in figures.items():
        spread = Spread.of(timings)
        print(f"{variant:<18} step {spread.show()} ms  ({ratio(spread.median, bare.median)} bare)")


if __name__ == "__main__":
    main()
