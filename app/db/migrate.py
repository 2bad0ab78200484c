"""Upgrade a database to the newest schema with Alembic (the only way the schema is made)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    url = make_url(database_url)
    database = url.database if url.get_backend_name() == "sqlite" and url.database != ":memory:" else None
    with _one_at_a_time(Path(database) if database else None):
        command.upgrade(alembic_config(database_url), revision)


@contextlib.contextmanager
def _one_at_a_time(sqlite_file: Path | None) -> Iterator[None]:
    """`serve --workers N` starts N processes that each upgrade the SQLite file: one at a time, so the
    others find it current instead of creating the same tables again."""
    if sqlite_file is None:
        yield
        return
    sqlite_file.parent.mkdir(parents=True, exist_ok=True)  # a fresh data dir has no folder yet
    with open(sqlite_file.with_name(sqlite_file.name + ".migrate-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
