"""Step time with 0 and 3 live viewers: the run is not slower for being watched.

Runs the step-overhead tasks through the real step loop (drive(), fake LLM answering at once) with the
run's live publisher on as in production (workers/live.py, the embedded in-process bus), once unwatched
and once with three viewers, taking turns task by task so both see the same load. Each viewer is what
the API does per socket: on its own event loop thread (like uvicorn's), it takes the newest frame from
the bus and writes it to a real socket that a reader drains. Prints the median harness time per step
for each, their ratio, and the frames each viewer got. Not a test: run it and read the figures.

    .venv/bin/python -m bench.live_viewers [--repeats N] [--viewers N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/live_viewers.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.live.bus import LOCAL_BUS
from bench.common import Spread, agent_pool, machine, ratio, token_encoding
from bench.step_overhead import TASKS, agent_steps
from tests.sites.server import serve_sites
from workers.agent.browser import BrowserRun
from workers.live import LivePublisher


class Viewers:
    """Viewer tasks on an event loop thread of their own (the API's loop in the embedded server)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="viewers", daemon=True)
        self._thread.start()
        self.frames: list[int] = []

    async def _view(self, topic: str, slot: int) -> None:
        sender, receiver = socket.socketpair()
        sender.setblocking(False)
        drain = threading.Thread(target=_drain, args=(receiver,), daemon=True)
        drain.start()
        try:
            async with LOCAL_BUS.frames(topic) as newest:
                while True:
                    frame = await newest.get()
                    await self.loop.sock_sendall(sender, frame)
                    self.frames[slot] += 1
        finally:
            sender.close()

    def watching(self, count: int) -> Callable[[BrowserRun], AbstractAsyncContextManager[None]]:
        @contextlib.asynccontextmanager
        async def watch(run: BrowserRun) -> AsyncIterator[None]:
            publisher = LivePublisher(LOCAL_BUS, f"run:{run.run_id}", run)
            publisher.start()
            slots = range(len(self.frames), len(self.frames) + count)
            self.frames += [0] * count
            views = [asyncio.run_coroutine_threadsafe(self._view(publisher.topic, slot), self.loop)
                     for slot in slots]
            try:
                yield
            finally:
                for view in views:
                    view.cancel()
                await publisher.stop()
        return watch

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def _drain(receiver: socket.socket) -> None:
    with receiver:
        while receiver.recv(1 << 20):
            pass


async def measure(data_dir: Path, repeats: int, viewers: int) -> dict[int, list[int]]:
    encoding, _ = token_encoding()
    harness: dict[int, list[int]] = {0: [], viewers: []}
    watchers = Viewers()
    try:
        with serve_sites() as sites:
            async with agent_pool(data_dir) as (fake, settings, pool):
                for repeat in range(repeats):
                    for name, (path, script) in TASKS.items():
                        for count in (0, viewers):
                            workdir = data_dir / f"{repeat}-{count}-{name.replace(' ', '-')}"
                            steps = await agent_steps(pool, settings, fake, sites.url(path), workdir, name,
                                                      script, encoding, watch=watchers.watching(count))
                            harness[count] += [step.harness_ms for step in steps]
    finally:
        watchers.stop()
    print(f"frames per viewer: {Spread.of(watchers.frames).show()}")
    return harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each task (default 3)")
    parser.add_argument("--viewers", type=int, default=3, help="viewers of the watched runs (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wayfarer-bench-") as tmp:
        harness = asyncio.run(measure(Path(tmp), args.repeats, args.viewers))
    print(f"machine: {machine()}")
    unwatched = Spread.of(harness[0])
    watched = Spread.of(harness[args.viewers])
    print(f"harness per step, 0 viewers: {unwatched.show()} ms")
    print(f"harness per step, {args.viewers} viewers: {watched.show()} ms "
          f"({ratio(watched.median, unwatched.median)} unwatched)")


if __name__ == "__main__":
    main()
