"""Shared fixtures: a throw-away PostgreSQL database and a warehouse URL on each engine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

# The server's maintenance database, reached as a superuser (trust auth on loopback by default).
ENV_POSTGRES_ADMIN_URL = "CLAIMS_TEST_POSTGRES_ADMIN_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, uniquely named PostgreSQL database, dropped after the session.

    Skips when PostgreSQL is unreachable, except on CI (``CI`` set), where it fails: there the
    PostgreSQL tests must run.
    """
    import psycopg2
    import sqlalchemy as sa

    admin_url = os.environ.get(ENV_POSTGRES_ADMIN_URL, DEFAULT_POSTGRES_ADMIN_URL)
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=5)
    except psycopg2.OperationalError as error:
        message = f"PostgreSQL unreachable at {admin_url}: {error}".strip()
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"claims_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(admin_url).set(drivername="postgresql+psycopg2", database=name)
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
    import sqlalchemy as sa

    url = request.getfixturevalue("postgres_url")
    yield url
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()
