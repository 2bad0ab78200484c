"""The API app per module on SQLite and PostgreSQL, as tests/integration/api sets it up."""

from tests.integration.api.conftest import api, database_url, redis_url

__all__ = ["api", "database_url", "redis_url"]
