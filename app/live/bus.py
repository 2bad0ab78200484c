"""How live frames and a holder's input travel between the process that runs a browser and the API
processes that serve viewers.

With Redis configured (WAYFARER_REDIS_URL) it is Redis pub/sub: the worker publishes each run's newest
frame on `wayfarer:live:<topic>:frames` (and keeps it under `...:latest`, so a viewer arriving on an idle
page sees it at once) and listens on `...:input`; any API process relays them, so workers open no port and
viewers need no sticky sessions. Embedded (no Redis), the runs live in the API process and `LocalBus`
hands frames across threads in memory. A topic is "run:<id>" or "session:<id>".

Frames are never queued for a viewer: a subscriber holds only the newest one (`Newest`). Input events
are queued in order (bounded), since dropping a key press would change what the person typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Protocol

from app.platform.settings import Settings

LATEST_TTL_SECONDS = 3600
MAX_PENDING_INPUT = 1000


class Newest:
    """A one-slot mailbox: put() replaces what was not taken yet; get() waits for something. put() may
    be called from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._item: bytes | None = None
        self._ready = asyncio.Event()

    def put(self, item: bytes) -> None:
        self._item = item
        with contextlib.suppress(RuntimeError):  # the subscriber's loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> bytes:
        while self._item is None:
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        return item


class LiveBus(Protocol):
    async def publish_frame(self, topic: str, frame: bytes) -> int:
        """Publish a topic's newest frame; returns how many subscribers got it (0: nobody watches)."""
        ...

    async def latest_frame(self, topic: str) -> bytes | None: ...

    def frames(self, topic: str) -> contextlib.AbstractAsyncContextManager[Newest]:
        """The topic's frames as they come, newest only."""
        ...

    async def publish_input(self, topic: str, event: bytes) -> int: ...

    def inputs(self, topic: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def forget(self, topic: str) -> None:
        """The topic ended (the run finished): drop its latest frame."""
        ...

    async def close(self) -> None: ...


class LocalBus:
    """In-process bus for the embedded server: one per process, shared by its API and its RunHost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, bytes] = {}
        self._frame_subscribers: dict[str, set[Newest]] = {}
        self._input_subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes]]]] = {}

    async def publish_frame(self, topic: str, frame: bytes) -> int:
        with self._lock:
            self._latest[topic] = frame
            subscribers = list(self._frame_subscribers.get(topic, ()))
        for subscriber in subscribers:
            subscriber.put(frame)
        return len(subscribers)

    async def latest_frame(self, topic: str) -> bytes | None:
        with self._lock:
            return self._latest.get(topic)

    @contextlib.asynccontextmanager
    async def frames(self, topic: str) -> AsyncIterator[Newest]:
        newest = Newest()
        with self._lock:
            self._frame_subscribers.setdefault(topic, set()).add(newest)
        try:
            yield newest
        finally:
            with self._lock:
                self._frame_subscribers.get(topic, set()).discard(newest)

    async def publish_input(self, topic: str, event: bytes) -> int:
        with self._lock:
            subscribers = list(self._input_subscribers.get(topic, ()))
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(_offer, queue, event)
        return len(subscribers)

    @contextlib.asynccontextmanager
    async def inputs(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING_INPUT)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._input_subscribers.setdefault(topic, set()).add(entry)
        try:
            yield _drain(queue)
        finally:
            with self._lock:
                self._input_subscribers.get(topic, set()).discard(entry)

    async def forget(self, topic: str) -> None:
        with self._lock:
            self._latest.pop(topic, None)

    async def close(self) -> None:
        pass


def _offer(queue: asyncio.Queue[bytes], event: bytes) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a holder flooding input loses the excess
        queue.put_nowait(event)


async def _drain(queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
    while True:
        yield await queue.get()


class RedisBus:
    """Redis pub/sub. One instance per event loop (its connections belong to the loop that made them)."""

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(redis_url)

    @staticmethod
    def _key(topic: str, part: str) -> str:
        return f"wayfarer:live:{topic}:{part}"

    async def publish_frame(self, topic: str, frame: bytes) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key(topic, "latest"), frame, ex=LATEST_TTL_SECONDS)
            pipe.publish(self._key(topic, "frames"), frame)
            _, receivers = await pipe.execute()
        return int(receivers)

    async def latest_frame(self, topic: str) -> bytes | None:
        value = await self._redis.get(self._key(topic, "latest"))
        return value if isinstance(value, bytes) else None

    @contextlib.asynccontextmanager
    async def frames(self, topic: str) -> AsyncIterator[Newest]:
        newest = Newest()
        async with self._subscription(self._key(topic, "frames")) as messages:
            reader = asyncio.ensure_future(_fill(messages, newest))
            try:
                yield newest
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def publish_input(self, topic: str, event: bytes) -> int:
        return int(await self._redis.publish(self._key(topic, "input"), event))

    @contextlib.asynccontextmanager
    async def inputs(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self._subscription(self._key(topic, "input")) as messages:
            yield messages

    @contextlib.asynccontextmanager
    async def _subscription(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        try:
            yield _messages(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(channel)
            await pubsub.aclose()

    async def forget(self, topic: str) -> None:
        await self._redis.delete(self._key(topic, "latest"))

    async def close(self) -> None:
        await self._redis.aclose()


async def _messages(pubsub: object) -> AsyncIterator[bytes]:
    async for message in pubsub.listen():  # type: ignore[attr-defined]
        if message.get("type") == "message":
            yield bytes(message["data"])


async def _fill(messages: AsyncIterator[bytes], newest: Newest) -> None:
    async for message in messages:
        newest.put(message)


LOCAL_BUS = LocalBus()


def make_live_bus(settings: Settings) -> LiveBus:
    """The bus for the calling event loop: Redis when configured, else this process's LocalBus."""
    return RedisBus(settings.redis_url) if settings.redis_url else LOCAL_BUS
