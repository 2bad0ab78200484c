"""Whether this process can do its work: the database answers and, with Redis, the queue does.
Shared by the API's GET /readyz and `wayfarer health` (which a worker's healthcheck runs, adding the
browser check)."""

from __future__ import annotations

from sqlalchemy import text

from app.db.engine import session_scope
from app.db.migrate import describe
from app.platform.settings import Settings

QUEUE_TIMEOUT_SECONDS = 3.0


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_database(settings: Settings) -> str | None:
    """None when the database answers; else what is wrong (naming it without its password)."""
    try:
        with session_scope(settings.database_url) as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return f"the database {describe(settings.database_url)} does not answer: {_first_line(exc)}"
    return None


def check_queue(settings: Settings) -> str | None:
    """None when Redis answers (or there is no queue: embedded); else what is wrong."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=QUEUE_TIMEOUT_SECONDS,
                                  socket_connect_timeout=QUEUE_TIMEOUT_SECONDS)
    try:
        client.ping()
    except Exception as exc:
        host = client.connection_pool.connection_kwargs.get("host")
        return f"the queue (Redis at {host}) does not answer: {_first_line(exc)}"
    finally:
        client.close()
    return None


def readiness(settings: Settings) -> dict[str, str | None]:
    """Each dependency and its problem (None: fine)."""
    return {"database": check_database(settings), "queue": check_queue(settings)}
