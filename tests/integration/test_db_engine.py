"""The PostgreSQL engine's pool when the server kills connections: a killed connection is a retryable
OperationalError (the API's 503), never the pool's InvalidRequestError (a 500)."""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from app.db.engine import get_engine
from tests.support.services import throwaway_postgres


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _wait_closed_by_server(dbapi_conn: Any) -> None:
    poller = select.poll()
    poller.register(dbapi_conn.fileno(), select.POLLIN)
    assert poller.poll(5000), "the server never closed the connection"


def test_a_connection_killed_as_soon_as_it_is_made_fails_its_query_not_the_checkout() -> None:
    """A burst of pg_terminate_backend (a failover, an operator) can kill the pooled connection and then
    the one made to replace it; CI saw the API answer that with a 500."""
    with throwaway_postgres() as url:
        engine = get_engine(url)
        try:
            with engine.connect() as conn:
                pooled = conn.connection.dbapi_connection
                assert pooled is not None
                _terminate(url, pooled.info.backend_pid)
                _wait_closed_by_server(pooled)

            def killed_at_birth(dbapi_conn: Any, _record: Any) -> None:
                _terminate(url, dbapi_conn.info.backend_pid)
                _wait_closed_by_server(dbapi_conn)

            event.listen(engine, "connect", killed_at_birth)
            try:
                with pytest.raises(OperationalError), engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            finally:
                event.remove(engine, "connect", killed_at_birth)
            time.sleep(0.1)
            with engine.connect() as conn:  # and the pool recovers by itself
                assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        finally:
            engine.dispose()
