"""Shared fixtures: a throw-away PostgreSQL database and a warehouse URL on each engine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from claims_platform_tests.postgres import admin_connection, admin_url, drop_all_tables


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, uniquely named PostgreSQL database, dropped after the session.

    Skips when PostgreSQL is unreachable, except on CI (``CI`` set), where it fails: there the
    PostgreSQL tests must run.
    """
    import sqlalchemy as sa

    admin = admin_connection()
    name = f"claims_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(admin_url()).set(drivername="postgresql+psycopg2", database=name)
        yield url.render_as_string(hide_password=False)
        with admin.cursor() as cursor:
            # FORCE: a test that leaked a pooled connection must not keep the database alive.
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty warehouse URL: a SQLite file under ``tmp_path``, or the session's PostgreSQL database.

    The PostgreSQL database is shared by the session, so its tables are dropped after each test.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    drop_all_tables(url)
