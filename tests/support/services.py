"""Real services for tests: throwaway PostgreSQL databases, private Redis db indexes, free ports."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis

PG_ADMIN_URL = os.environ.get("WAYFARER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("WAYFARER_TEST_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A fresh database for one test session; yields its SQLAlchemy URL and drops it after."""
    name = f"wf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis db index nobody else uses now (flushed before and after)."""
    for _ in range(50):
        index = random.randint(1, 15)
        client = redis.Redis.from_url(f"{REDIS_BASE}/{index}")
        if client.set("wayfarer-test-lock", "1", nx=True, ex=3600):
            break
    else:
        raise RuntimeError("no free Redis db index for the test")
    client.flushdb()
    client.set("wayfarer-test-lock", "1", ex=3600)
    try:
        yield f"{REDIS_BASE}/{index}"
    finally:
        client.flushdb()
