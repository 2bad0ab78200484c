"""Alembic migrations on SQLite and PostgreSQL: up from empty, one step down and back, no drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from app.db.migrate import alembic_config, upgrade
from app.db.models import Base
from tests.support.services import throwaway_postgres

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wayfarer.db'}"
    else:
        with throwaway_postgres() as url:
            yield url


def _state(url: str) -> tuple[set[str], str | None]:
    """The application tables present and the revision the database is at."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
            return tables, MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_one_step_down_and_back(empty_database: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(empty_database))
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert _state(empty_database) == (set(), None)

    upgrade(empty_database)
    assert _state(empty_database) == (MODEL_TABLES, head)

    command.downgrade(alembic_config(empty_database), "-1")
    tables, revision = _state(empty_database)
    assert revision == previous
    if previous is None:
        assert tables == set()

    upgrade(empty_database)
    assert _state(empty_database) == (MODEL_TABLES, head)


def test_models_and_migrations_do_not_drift(empty_database: str) -> None:
    upgrade(empty_database)
    engine = create_engine(empty_database, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], ("app/db/models.py and migrations/ differ; regenerate "
                        f"migrations/versions/0001_initial_schema.py: {diff}")
