"""Upgrade a database to the newest schema with Alembic (the only way the schema is made), and check
that a database is there and current before anything else touches it (which creates nothing)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

_ROOT = Path(__file__).resolve().parents[2]


class DatabaseNotReady(Exception):
    """The database is missing, unreachable or not at the newest schema; the message says what to run."""


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def describe(database_url: str) -> str:
    """The database as it may be shown: the URL without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


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


def require_current_schema(database_url: str) -> None:
    """DatabaseNotReady unless the database exists, answers and is at the newest schema revision."""
    url = make_url(database_url)
    shown = describe(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(str(url.database)).is_file():
        raise DatabaseNotReady(
            f"there is no database at {Path(str(url.database)).resolve()} ({shown}). Point "
            "WAYFARER_DATA_DIR or WAYFARER_DATABASE_URL at the server's database (the folder the server "
            "was started in holds wayfarer-data/), or create this one with `wayfarer migrate`.")
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    expected = scripts.get_current_head()
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseNotReady(f"cannot open the database {shown}: {reason}") from None
    finally:
        engine.dispose()
    if found == expected:
        return
    if found is None:
        raise DatabaseNotReady(
            f"the database {shown} has no Wayfarer schema (schema revision found: none; expected: "
            f"{expected}). Run `wayfarer migrate` with the same WAYFARER_DATABASE_URL, then start again.")
    known = {script.revision for script in scripts.walk_revisions()}
    if found in known:
        raise DatabaseNotReady(
            f"the database {shown} is at schema revision {found}; this version of Wayfarer needs "
            f"{expected}. Run `wayfarer migrate` with the same WAYFARER_DATABASE_URL, then start again.")
    raise DatabaseNotReady(
        f"the database {shown} is at schema revision {found}, which this version of Wayfarer does not know "
        f"(it expects {expected}): a newer Wayfarer migrated it. Run that version.")


def prepare_for_serving(database_url: str) -> None:
    """What `serve` does before it opens: the embedded SQLite database is made or upgraded in place; any
    other database must have been migrated (`wayfarer migrate`, run once per release, not per process)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        upgrade(database_url)
    else:
        require_current_schema(database_url)
