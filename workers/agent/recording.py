"""A run's recording: the screencast's JPEG frames encoded to a VP8 WebM on a thread of its own.

The step loop only appends a frame to a queue; decoding, scaling and encoding happen on the encoder
thread, at a lower CPU priority, with PyAV (libav releases the GIL while it works). Frames carry their
arrival time as the presentation time (milliseconds), so an idle page adds nothing to encode and still
lasts as long in the video as it did in the run. A frame that repeats the last picture byte for byte
is dropped, and of frames that come faster than ten a second only the newest is encoded (an animated
page sends up to 60 a second, ~6 ms of a core each), never the last of a burst. Closing repeats the
last frame at the closing time, so the video covers the whole run, and writes the cues a player needs
to seek.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from workers.agent.screencast import Frame

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

MILLISECONDS = Fraction(1, 1000)
MAX_BACKLOG = 50  # frames waiting for the encoder; beyond it the oldest waiting ones are skipped
MIN_FRAME_INTERVAL_S = 0.1  # at most ~10 pictures a second are encoded (each ~6 ms of a core at 800 x 450)
ENCODER_NICENESS = 10
VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "b": "1M", "crf": "10", "lag-in-frames": "0"}
KEYFRAME_EVERY = 60  # frames; a seek decodes at most this many
MAX_VIDEO_SIDE = 800  # as Playwright's recorder: the video fits in 800 x 800, keeping the page's shape


class WebmRecorder:
    """Call `add` (a screencast sink) from the event loop, then `close()` once; `close()` returns the
    file, or None when no frame ever came."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path = path
        self.width, self.height = video_size(width, height)
        self._frames: queue.SimpleQueue[Frame | float] = queue.SimpleQueue()  # a float: the end time
        self._thread = threading.Thread(target=self._encode, name=f"recorder-{path.stem}", daemon=True)
        self._started_at: float | None = None
        self._last_jpeg = b""
        self._closed = False
        self._end_at: float | None = None  # close()'s end time, once the encoder thread took it
        self.error: str | None = None

    @property
    def started(self) -> bool:
        """Whether a frame has come."""
        return self._started_at is not None

    def add(self, frame: Frame) -> None:
        if self._closed or frame.jpeg == self._last_jpeg:  # the same picture again: the last one lasts
            return
        self._last_jpeg = frame.jpeg
        if self._started_at is None:
            self._started_at = frame.at
            self._thread.start()
        self._frames.put(frame)

    async def close(self) -> Path | None:
        if self._closed or self._started_at is None:
            self._closed = True
            return None
        self._closed = True
        self._frames.put(time.monotonic())
        await asyncio.to_thread(self._thread.join)
        if self.error is not None:
            log.warning("recording %s failed: %s", self.path, self.error)
            return None
        return self.path if self.path.is_file() and self.path.stat().st_size > 0 else None

    def _encode(self) -> None:
        with contextlib.suppress(OSError):  # best effort: only lowers this thread's priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ENCODER_NICENESS)
        try:
            self._encode_frames()
        except Exception as exc:  # the run goes on without a recording; close() reports it
            self.error = f"{type(exc).__name__}: {exc}"
            while self._end_at is None:  # drain until close() came
                item = self._frames.get()
                self._end_at = item if isinstance(item, float) else None

    def _encode_frames(self) -> None:
        import av  # here, on the encoder thread: a process that records nothing never loads libav

        assert self._started_at is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        decoder = av.CodecContext.create("mjpeg", "r")
        with av.open(str(self.path), "w", format="webm") as container:
            stream = container.add_stream("libvpx")
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            stream.time_base = MILLISECONDS
            stream.codec_context.time_base = MILLISECONDS  # without it mux() fails with EINVAL
            stream.codec_context.gop_size = KEYFRAME_EVERY
            stream.codec_context.thread_count = 1
            stream.codec_context.options = VP8_OPTIONS
            last: av.VideoFrame | None = None
            last_pts = -1
            for frame in self._thinned():
                decoded = decoder.decode(av.Packet(frame.jpeg))
                if not decoded:
                    continue
                last = decoded[-1].reformat(self.width, self.height, "yuv420p")
                last_pts = self._write(container, stream, last, frame.at, last_pts)
            if last is not None and self._end_at is not None:  # the last picture lasts until the end
                self._write(container, stream, last, self._end_at, last_pts)
            for packet in stream.encode(None):
                container.mux(packet)

    def _thinned(self) -> Iterator[Frame]:
        """The frames to encode, until close()'s end time comes (then in `_end_at`). Of frames that come
        less than MIN_FRAME_INTERVAL_S after the last one given out only the newest is kept; it is given
        out when a frame comes after that interval, or when the interval is over."""
        pending: Frame | None = None
        last_at = -math.inf  # when the last frame given out came
        while True:
            timeout = None if pending is None else max(0.0, last_at + MIN_FRAME_INTERVAL_S - time.monotonic())
            try:
                item: Frame | float | None = self._frames.get(timeout=timeout)
            except queue.Empty:
                item = None  # the interval is over and no newer frame came
            while isinstance(item, Frame) and self._frames.qsize() > MAX_BACKLOG:
                item = self._frames.get()  # far behind: skip ahead (the frame before shows longer)
            if isinstance(item, float):
                self._end_at = item
            due = not isinstance(item, Frame) or item.at >= last_at + MIN_FRAME_INTERVAL_S
            if pending is not None and due:
                yield pending
                last_at = pending.at
            pending = item if isinstance(item, Frame) else None  # a newer frame replaces an older one
            if pending is not None and pending.at >= last_at + MIN_FRAME_INTERVAL_S:
                yield pending
                last_at, pending = pending.at, None
            if self._end_at is not None:
                return

    def _write(self, container: av.container.OutputContainer, stream: av.video.stream.VideoStream,
               picture: av.VideoFrame, at: float, last_pts: int) -> int:
        assert self._started_at is not None
        pts = max(int((at - self._started_at) * 1000), last_pts + 1)
        picture.pts = pts
        for packet in stream.encode(picture):
            container.mux(packet)
        return pts


def video_size(width: int, height: int) -> tuple[int, int]:
    """The recording's size for a `width` x `height` page: scaled down to fit MAX_VIDEO_SIDE, as even
    numbers (4:2:0 needs them)."""
    scale = min(1.0, MAX_VIDEO_SIDE / max(width, height))
    scaled_width, scaled_height = int(width * scale), int(height * scale)
    return scaled_width - scaled_width % 2, scaled_height - scaled_height % 2
