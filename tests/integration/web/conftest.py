"""The API app per module (SQLite and PostgreSQL) of the API tests, reached as the viewer's pages are."""

from tests.integration.api.conftest import api, database_url, redis_url

__all__ = ["api", "database_url", "redis_url"]
