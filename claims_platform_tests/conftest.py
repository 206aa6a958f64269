"""The suite's own environment, and shared fixtures: a throw-away PostgreSQL database and a warehouse URL
on each engine.

Hermetic: before anything is collected, the session gets an environment and working directory of its
own (:mod:`claims_platform_tests.hermetic`), so no test reads the checkout's ``.env`` or ``.local/``,
whatever ran there before (``make demo``, ``make dev``, an import).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from claims_platform_tests.hermetic import enter, isolate
from claims_platform_tests.postgres import admin_connection, admin_url, drop_all_tables

_HERMETIC_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The session's own environment (before collection: the settings read it at import)."""
    base = Path(tempfile.mkdtemp(prefix="claims-tests-"))
    config.stash[_HERMETIC_HOME] = base
    isolate(base, chdir=False)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The session's own working directory, once the arguments (relative to the invocation's) are collected."""
    enter(session.config.stash[_HERMETIC_HOME])


def pytest_unconfigure(config: pytest.Config) -> None:
    base = config.stash.get(_HERMETIC_HOME, None)
    if base is not None:
        os.chdir(config.invocation_params.dir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, uniquely named PostgreSQL database, dropped after the session.

    On the server :func:`claims_platform_tests.postgres.admin_url` names: the machine's, or one the suite
    starts itself when none answers (never skipped).
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
