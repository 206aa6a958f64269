"""The machine's PostgreSQL for the tests: the admin connection (fail on CI, skip elsewhere) and emptying a database."""

from __future__ import annotations

import os

import pytest

# The server's maintenance database, reached as a superuser (trust auth on loopback by default).
ENV_POSTGRES_ADMIN_URL = "CLAIMS_TEST_POSTGRES_ADMIN_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get(ENV_POSTGRES_ADMIN_URL, DEFAULT_POSTGRES_ADMIN_URL)


def admin_connection():
    """An autocommit psycopg2 connection to the maintenance database.

    Unreachable PostgreSQL fails the test on CI (``CI`` set), where the PostgreSQL tests must run,
    and skips it elsewhere.
    """
    import psycopg2

    url = admin_url()
    try:
        connection = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.OperationalError as error:
        message = f"PostgreSQL unreachable at {url}: {error}".strip()
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    connection.autocommit = True
    return connection


def drop_all_tables(url: str) -> None:
    """Drop every table of the database at SQLAlchemy ``url``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()
