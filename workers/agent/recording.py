"""A run's recording: the screencast's JPEG frames encoded to a VP8 WebM on a thread of its own.

The step loop only appends a frame to a queue; decoding, scaling and encoding happen on the encoder
thread, at a lower CPU priority, with PyAV (libav releases the GIL while it works). Frames carry their
arrival time as the presentation time (milliseconds), so an idle page adds nothing to encode and still
lasts as long in the video as it did in the run. Closing repeats the last frame at the closing time,
so the video covers the whole run, and writes the cues a player needs to seek.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from workers.agent.screencast import Frame

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

MILLISECONDS = Fraction(1, 1000)
MAX_BACKLOG = 50  # frames waiting for the encoder; beyond it the oldest waiting ones are skipped
ENCODER_NICENESS = 10
VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "b": "1M", "crf": "10", "lag-in-frames": "0"}
KEYFRAME_EVERY = 60  # frames; a seek decodes at most this many


class WebmRecorder:
    """Call `add` (a screencast sink) from the event loop, then `close()` once; `close()` returns the
    file, or None when no frame ever came."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path = path
        self.width, self.height = width - width % 2, height - height % 2  # 4:2:0 needs even sizes
        self._frames: queue.SimpleQueue[Frame | float] = queue.SimpleQueue()  # a float: the end time
        self._thread = threading.Thread(target=self._encode, name=f"recorder-{path.stem}", daemon=True)
        self._started_at: float | None = None
        self._closed = False
        self._ended = False  # the encoder thread took close()'s end time
        self.error: str | None = None

    @property
    def started(self) -> bool:
        """Whether a frame has come."""
        return self._started_at is not None

    def add(self, frame: Frame) -> None:
        if self._closed:
            return
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
            while not self._ended:  # drain until close() came
                self._ended = isinstance(self._frames.get(), float)

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
            while True:
                item = self._frames.get()
                while not isinstance(item, float) and self._frames.qsize() > MAX_BACKLOG:
                    item = self._frames.get()  # far behind: skip ahead (the frame before shows longer)
                if isinstance(item, float):
                    self._ended = True
                    break
                decoded = decoder.decode(av.Packet(item.jpeg))
                if not decoded:
                    continue
                last = decoded[-1].reformat(self.width, self.height, "yuv420p")
                last_pts = self._write(container, stream, last, item.at, last_pts)
            if last is not None:  # the last picture lasts until the end of the run
                self._write(container, stream, last, item, last_pts)
            for packet in stream.encode(None):
                container.mux(packet)

    def _write(self, container: av.container.OutputContainer, stream: av.video.stream.VideoStream,
               picture: av.VideoFrame, at: float, last_pts: int) -> int:
        assert self._started_at is not None
        pts = max(int((at - self._started_at) * 1000), last_pts + 1)
        picture.pts = pts
        for packet in stream.encode(picture):
            container.mux(packet)
        return pts
