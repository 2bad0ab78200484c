"""The CDP screencast and the recording made from it: frames on change, acked so they keep coming,
following the tab it is pointed at, and a VP8 WebM that lasts the whole time and can be seeked."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from tests.sites.server import SiteServer
from workers.agent.browser import BrowserPool
from workers.agent.contract import BrowserOptions
from workers.agent.recording import WebmRecorder
from workers.agent.screencast import Frame, Screencast

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

WIDTH, HEIGHT = 1280, 720
VIDEO_WIDTH, VIDEO_HEIGHT = 800, 450  # the page scaled down to fit 800 x 800, as Playwright records


async def _next_frame(frames: asyncio.Queue[Frame]) -> Frame:
    async with asyncio.timeout(10):
        return await frames.get()


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_name,width,height:format=format_name,duration", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


async def test_frames_follow_the_tab_and_the_recording_covers_the_whole_run(
        pool: BrowserPool, sites: SiteServer, tmp_path: Path) -> None:
    run = await pool.open_run("tsk_screencast", BrowserOptions(), tmp_path)
    screencast = Screencast(run.context, WIDTH, HEIGHT)
    recorder = WebmRecorder(tmp_path / "recording.webm", WIDTH, HEIGHT)
    frames: asyncio.Queue[Frame] = asyncio.Queue()
    screencast.add_sink(recorder.add)
    screencast.add_sink(frames.put_nowait)
    try:
        await run.active_page.goto(sites.url("/guestbook.html"))
        await screencast.follow(run.active_page)
        first = await _next_frame(frames)
        assert first.jpeg[:2] == b"\xff\xd8" and (first.width, first.height) == (WIDTH, HEIGHT)
        for text in ("Ada", "Ada Lovelace", "Ada Lovelace, Countess"):  # every frame acked: more come
            await run.active_page.get_by_role("textbox", name="Name").fill(text)
            await _next_frame(frames)
        other = await run.context.new_page()
        await other.goto(sites.url("/tab-target.html"))
        await screencast.follow(other)
        while not frames.empty():
            frames.get_nowait()
        await other.evaluate("document.body.style.background = 'rgb(200, 30, 30)'")
        assert screencast.page is other
        await _next_frame(frames)
        await other.close()
        await screencast.follow(run.active_page)
        assert screencast.page is run.active_page
        await asyncio.sleep(1.5)  # an idle page: no frames, yet the video lasts
        assert screencast.latest is not None
    finally:
        await screencast.stop()
        path = await recorder.close()
        await run.close()
    assert path is not None
    probe = _ffprobe(path)
    stream, container = probe["streams"][0], probe["format"]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("vp8", VIDEO_WIDTH, VIDEO_HEIGHT)
    assert "webm" in container["format_name"]
    assert float(container["duration"]) >= 1.5
    with av.open(str(path)) as video:  # seeking to the middle lands on a picture
        stream_ = video.streams.video[0]
        video.seek(int(float(container["duration"]) / 2 * 1000), stream=stream_)
        assert next(video.decode(stream_)).width == VIDEO_WIDTH


async def test_a_recorder_that_never_got_a_frame_makes_no_file(tmp_path: Path) -> None:
    recorder = WebmRecorder(tmp_path / "empty.webm", WIDTH, HEIGHT)
    assert await recorder.close() is None
    assert not (tmp_path / "empty.webm").exists()


async def test_a_screencast_started_during_the_first_navigation_still_gets_frames(
        pool: BrowserPool, sites: SiteServer, tmp_path: Path) -> None:
    """Chromium refuses Page.startScreencast while a new tab's first navigation commits ("Not attached to
    an active page"); a run starts its screencast just then, and without trying again about half of the
    runs had no live view and no recording."""
    for attempt in range(8):
        run = await pool.open_run(f"tsk_screencast_{attempt}", BrowserOptions(), tmp_path / str(attempt))
        screencast = Screencast(run.context, WIDTH, HEIGHT)
        frames: asyncio.Queue[Frame] = asyncio.Queue()
        screencast.add_sink(frames.put_nowait)
        try:
            following = asyncio.ensure_future(screencast.follow(run.active_page))
            await run.active_page.goto(sites.url("/guestbook.html"))
            await following
            assert (await _next_frame(frames)).jpeg[:2] == b"\xff\xd8", f"attempt {attempt}"
        finally:
            await screencast.stop()
            await run.close()


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    """A WIDTH x HEIGHT JPEG of one colour, as the screencast sends."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    picture = av.VideoFrame(WIDTH, HEIGHT, "rgb24")
    picture.planes[0].update(bytes(rgb) * (picture.planes[0].buffer_size // 3))
    return b"".join(bytes(packet) for packet in encoder.encode(picture.reformat(format="yuvj420p")))


def _colour(picture: av.VideoFrame) -> tuple[int, int, int]:
    red, green, blue = bytes(picture.to_rgb().planes[0])[:3]
    return red, green, blue


async def test_a_burst_of_frames_is_recorded_up_to_its_newest_picture(tmp_path: Path) -> None:
    """Frames closer together than the recorder encodes are thinned, never the last of a burst: the
    video ends on the newest picture, however long the page then stays idle."""
    recorder = WebmRecorder(tmp_path / "burst.webm", WIDTH, HEIGHT)
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    started = time.monotonic()
    for index, colour in enumerate(colours):
        recorder.add(Frame(_jpeg(colour), started + index * 0.02, WIDTH, HEIGHT))
    await asyncio.sleep(0.5)
    path = await recorder.close()
    assert path is not None
    with av.open(str(path)) as video:
        pictures = [(picture.time, _colour(picture)) for picture in video.decode(video=0)]
    assert all(abs(a - b) < 40 for a, b in zip(pictures[0][1], colours[0], strict=True))
    assert all(abs(a - b) < 40 for a, b in zip(pictures[-1][1], colours[-1], strict=True))
    assert pictures[-1][0] is not None and pictures[-1][0] >= 0.45  # the last picture lasts until close()
