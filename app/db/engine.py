"""Engine and session factory, one per process and database URL."""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import before_sleep_log, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

# For the writes a run cannot do without (its records, heartbeat, final status): a dropped connection
# (database restart, failover, a killed backend) fails the statement that was on it, the pool replaces
# the connection (the checkout check drops the others), and the same work succeeds when tried again.
retry_transient = retry(retry=retry_if_exception_type((OperationalError, OSError)), reraise=True,
                        stop=stop_after_attempt(5), wait=wait_exponential(multiplier=0.2, max=5),
                        before_sleep=before_sleep_log(log, logging.WARNING))


NEW_CONNECTION = "wayfarer_new"  # in a pool record's info: made since its last checkout
RECYCLE_SECONDS = 1800  # connections a firewall or NAT dropped silently (no FIN) go within this time


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=RECYCLE_SECONDS)
    event.listen(engine, "connect", _mark_new)
    event.listen(engine, "checkout", _drop_if_closed)
    return engine


def _mark_new(_dbapi_conn: Any, record: Any) -> None:
    record.info[NEW_CONNECTION] = True


def _drop_if_closed(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """The liveness check on checkout, in place of pool_pre_ping's SELECT 1 round trip: a pooled, idle
    connection with something to read has been closed by the server (a restart, a failover, a killed
    backend: PostgreSQL sends its FATAL and closes), so the pool drops it and connects anew.

    A connection made for this checkout is not checked: the pool gives up after a second failed check
    with an InvalidRequestError (a 500), while a query on a connection lost meanwhile fails with an
    OperationalError, which callers retry and the API answers as a 503."""
    if record.info.pop(NEW_CONNECTION, False):
        return
    try:
        fd = dbapi_conn.fileno()
    except Exception as exc:  # psycopg raises once the connection is closed
        raise DisconnectionError("pooled connection already closed") from exc
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed this pooled connection")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@lru_cache(maxsize=8)
def _read_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url).execution_options(isolation_level="AUTOCOMMIT"),
                        expire_on_commit=False)


@contextmanager
def read_session_scope(url: str) -> Iterator[Session]:
    """A session for reads only, each statement on its own: no BEGIN and COMMIT round trips."""
    session = _read_factory(url)()
    try:
        yield session
    finally:
        session.close()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
