"""The production profile on loopback: every service a real subprocess, as `deploy/` runs them on one host.

- PostgreSQL (the machine's server): three fresh, uniquely named databases per stack (Dagster's
  storage, the warehouse, MLflow's backend store), dropped ``WITH (FORCE)`` at the end.
- An S3 API server (`moto_server`, a process of its own) behind :class:`TcpProxy`, a TCP proxy in the
  test process that can stop and start forwarding: "S3 is down" while moto keeps its data in memory.
  The platform, MLflow and Dagster's compute log manager all reach S3 through the proxy.
- `mlflow server` on PostgreSQL with artifacts proxied to ``s3://<bucket>/mlflow`` (``mlflow-artifacts:/``).
- `dagster code-server start -m claims_platform.definitions`, `dagster-webserver` and
  `dagster-daemon run`, the last two with ``deploy/workspace.yaml`` and a temporary DAGSTER_HOME holding a
  copy of ``deploy/dagster.yaml`` (PostgreSQL storage, S3 compute logs, the code-server run launcher,
  the queued coordinator, run monitoring and retries).

Each process runs in its own process group, in the stack's folder (Dagster's processes read ``.env`` from
their working directory: never the repo's, which `make demo` writes), logs to a file there, and is stopped
with everything it started. :meth:`Stack.tails` gives the logs' last lines for failure messages.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

from claims_platform_tests.models.loopback import alive, descendants, free_port, stop_group, wait_for_ok
from claims_platform_tests.postgres import admin_connection, admin_url
from claims_platform_tests.production.graphql import DagsterGraphQL

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOY = REPO_ROOT / "deploy"
ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"
STORAGE_PREFIX = "claims-platform"
MLFLOW_PREFIX = "mlflow"
STARTUP_SECONDS = 180
# What the daemon must run for the tests: the queue, schedules, sensors, backfills, monitoring, retries.
DAEMONS = ("QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR", "BACKFILL", "MONITORING", "ASSET")


def pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    import sqlalchemy as sa

    return (
        sa.engine.make_url(admin_url())
        .set(drivername=driver, database=database)
        .render_as_string(hide_password=False)
    )


# -- S3 that can go down -------------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` (threads in this process). :meth:`down` closes the
    listening socket and every open connection (clients then get "connection refused"); :meth:`up`
    listens on the same port again. The upstream server (and its data) is untouched."""

    def __init__(self, upstream_port: int, port: int | None = None):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 30
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        listener.listen(128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True, name="s3-proxy")
        self._thread.start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._connections |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                if a.fileno() < 0 or b.fileno() < 0:
                    return
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            with self._lock:
                self._connections -= {a, b}
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


# -- the stack -----------------------------------------------------------------------------------------


@dataclass
class World:
    """The simulated days and the months the tests train and score."""

    first_day: date
    last_day: date

    @property
    def days(self) -> list[str]:
        return [
            (self.first_day + timedelta(days=i)).isoformat()
            for i in range((self.last_day - self.first_day).days + 1)
        ]


@dataclass
class Stack:
    base: Path
    world: World
    nightly_scoring_time: str  # "HH:MM", UTC
    token: str = field(default_factory=lambda: f"{os.getpid()}_{secrets.token_hex(3)}")
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    proxy: TcpProxy | None = None
    timings: dict[str, float] = field(default_factory=dict)

    # -- names and settings ---------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return f"claims-{self.token.replace('_', '-')}"

    @property
    def claims_home(self) -> Path:
        return self.base / "claims_home"

    @property
    def dagster_home(self) -> Path:
        return self.base / "dagster_home"

    @property
    def s3_url(self) -> str:
        assert self.proxy is not None
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    @property
    def warehouse_url(self) -> str:
        return pg_url(self.databases["warehouse"])

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/{STORAGE_PREFIX}"

    def graphql(self) -> DagsterGraphQL:
        return DagsterGraphQL(self.dagster_url, tails=self.tails)

    def s3(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.s3_url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )  # fmt: skip

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def base_env(self) -> dict[str, str]:
        """This process's environment without anything that would point elsewhere, the venv's bin first."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_", "AWS_")) and k != "PYTEST_CURRENT_TEST"
        }
        env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env["DO_NOT_TRACK"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(
            {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}
        )
        return env

    def env(self) -> dict[str, str]:
        """The platform's environment (code server, webserver, daemon, a CLI run), as in production."""
        import sqlalchemy as sa

        admin = sa.engine.make_url(admin_url())
        env = self.base_env()
        env.update(
            {
                "DAGSTER_HOME": str(self.dagster_home),
                "DAGSTER_PG_HOST": admin.host or "127.0.0.1",
                "DAGSTER_PG_PORT": str(admin.port or 5432),
                "DAGSTER_PG_USER": admin.username or "postgres",
                "DAGSTER_PG_PASSWORD": admin.password or "",
                "DAGSTER_PG_DB": self.databases["dagster"],
                "DAGSTER_COMPUTE_LOGS_BUCKET": self.bucket,
                "CLAIMS_CODE_SERVER_HOST": "127.0.0.1",
                "CLAIMS_CODE_SERVER_PORT": str(self.ports["code_server"]),
                "CLAIMS_HOME": str(self.claims_home),
                "CLAIMS_FIRST_DAY": self.world.first_day.isoformat(),
                "CLAIMS_WAREHOUSE_URL": self.warehouse_url,
                "CLAIMS_STORAGE_URL": self.storage_url,
                "CLAIMS_S3_ENDPOINT_URL": self.s3_url,
                "CLAIMS_EVIDENTLY_WORKSPACE": str(self.claims_home / "evidently"),
                "CLAIMS_NIGHTLY_SCORING_TIME": self.nightly_scoring_time,
                "MLFLOW_TRACKING_URI": self.mlflow_url,
                "CLAIMS_MLFLOW_UI_URL": self.mlflow_url,
            }
        )
        return env

    def mlflow_env(self) -> dict[str, str]:
        env = self.base_env()
        env["MLFLOW_S3_ENDPOINT_URL"] = self.s3_url
        # MLflow 3's job runner (GenAI evaluation workers) is not needed and heavy on 2 cores.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        return env

    # -- processes --------------------------------------------------------------------------------------

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.logs.setdefault(name, self.base / "logs" / f"{name}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n=== {datetime.now(UTC).isoformat()} starting: {' '.join(command)}\n".encode())
            out.flush()
            process = subprocess.Popen(
                command, env=env, cwd=self.base, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_default_signals,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a service with every process below it (its process group and any group its children lead)."""
        process = self.processes.get(name)
        if process is None:
            return
        below = descendants(process.pid)
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        else:
            stop_group(process)
        for pid in alive(below):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def tails(self, lines: int = 25) -> str:
        """The last lines of every service's log (for failure messages)."""
        parts = []
        for name, path in self.logs.items():
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name} ({path}) ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- each service -----------------------------------------------------------------------------------

    def create_databases(self) -> None:
        connection = admin_connection()
        try:
            with connection.cursor() as cursor:
                for role in ("dagster", "warehouse", "mlflow"):
                    name = f"claims_prod_{role}_{self.token}"
                    cursor.execute(f'CREATE DATABASE "{name}"')
                    self.databases[role] = name
        finally:
            connection.close()

    def drop_databases(self) -> None:
        connection = admin_connection()
        try:
            with connection.cursor() as cursor:
                for name in self.databases.values():
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()

    def start_s3(self) -> None:
        self.ports["moto"] = free_port()
        process = self.start(
            "s3",
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports["moto"])],
            self.base_env(),
        )
        wait_for_ok(f"http://127.0.0.1:{self.ports['moto']}/moto-api/", process, self.logs["s3"], 60)
        self.proxy = TcpProxy(self.ports["moto"])
        self.proxy.up()
        self.s3().create_bucket(Bucket=self.bucket)

    def mlflow_command(self) -> list[str]:
        return [
            str(BIN / "mlflow"), "server",
            "--backend-store-uri", pg_url(self.databases["mlflow"]),
            "--artifacts-destination", f"s3://{self.bucket}/{MLFLOW_PREFIX}",
            "--serve-artifacts", "--host", "127.0.0.1", "--port", str(self.ports["mlflow"]), "--workers", "1",
        ]  # fmt: skip

    def start_mlflow(self, wait: bool = True) -> None:
        self.ports.setdefault("mlflow", free_port())
        process = self.start("mlflow", self.mlflow_command(), self.mlflow_env())
        if wait:
            self.wait_mlflow(process)

    def wait_mlflow(self, process: subprocess.Popen | None = None) -> None:
        wait_for_ok(
            f"{self.mlflow_url}/health",
            process or self.processes["mlflow"],
            self.logs["mlflow"],
            STARTUP_SECONDS,
        )

    def start_code_server(self) -> None:
        self.ports.setdefault("code_server", free_port())
        self.start(
            "code_server",
            [
                str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(self.ports["code_server"]),
                "-m", "claims_platform.definitions", "--location-name", "claims_platform",
            ],
            self.env(),
        )  # fmt: skip

    def redeploy(self, nightly_scoring_time: str | None = None) -> None:
        """What a deploy does: the daemon stops, the code server restarts (optionally with a new nightly
        scoring time), the webserver reloads the location (the UI's "Reload"), the daemon starts again on it.
        A schedule tick whose time passed while the daemon was down is launched when it is back."""
        if nightly_scoring_time is not None:
            self.nightly_scoring_time = nightly_scoring_time
        self.stop("daemon")
        self.stop("code_server")
        self.start_code_server()
        self.graphql().reload_until_loaded(STARTUP_SECONDS)
        self.start_daemon()

    def start_webserver(self) -> None:
        self.ports.setdefault("webserver", free_port())
        command = [
            str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.ports["webserver"]),
            "-w", str(DEPLOY / "workspace.yaml"),
        ]  # fmt: skip
        process = self.start("webserver", command, self.env())
        wait_for_ok(f"{self.dagster_url}/server_info", process, self.logs["webserver"], STARTUP_SECONDS)
        self.graphql().wait_for_location(STARTUP_SECONDS)

    def start_daemon(self) -> None:
        self.start(
            "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.yaml")], self.env()
        )
        self.graphql().wait_for_daemons(DAEMONS, STARTUP_SECONDS)

    def simulate(self) -> subprocess.Popen:
        """`claims-platform simulate` of the world into the warehouse (a subprocess: it overlaps the services' start)."""
        return self.start(
            "simulate",
            [
                str(BIN / "claims-platform"), "simulate", "--start", self.world.first_day.isoformat(),
                "--end", self.world.last_day.isoformat(), "--warehouse-url", self.warehouse_url,
            ],
            self.base_env(),
        )  # fmt: skip

    # -- whole stack --------------------------------------------------------------------------------------

    def up(self) -> None:
        began = time.perf_counter()
        self.claims_home.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.create_databases()
        self.start_s3()
        self.ports["mlflow"] = free_port()
        self.ports["code_server"] = free_port()
        simulation = self.simulate()
        self.start_mlflow(wait=False)
        self.start_code_server()
        self.wait_mlflow()
        self.start_webserver()
        self.start_daemon()
        if simulation.wait(timeout=600) != 0:
            raise AssertionError(f"simulate failed:\n{self.tails()}")
        self.timings["stack_up"] = round(time.perf_counter() - began, 1)

    def down(self) -> None:
        for name in ("daemon", "webserver", "code_server", "mlflow", "simulate", "s3"):
            with contextlib.suppress(Exception):
                self.stop(name)
        if self.proxy is not None:
            self.proxy.down()
        self.drop_databases()

    # -- the run worker -----------------------------------------------------------------------------------

    def run_workers(self) -> list[int]:
        """The run worker processes below the code server: `dagster api execute_run`, or (Dagster 1.13's
        gRPC server) a ``multiprocessing`` spawn child of the server running the run (not its resource tracker)."""
        found = []
        for pid in descendants(self.processes["code_server"].pid):
            try:
                command = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if "execute_run" in command or "spawn_main" in command:
                found.append(pid)
        return found


def _default_signals() -> None:
    """A server must stop on SIGTERM even when started from a shell that ignores it (CI runners may)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


@contextlib.contextmanager
def running_stack(base: Path, world: World, nightly_scoring_time: str) -> Iterator[Stack]:
    """A whole stack, up, and taken down with its databases afterwards (also when starting failed)."""
    stack = Stack(base, world, nightly_scoring_time)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def mlflow_get(stack: Stack, path: str, **params) -> dict:
    """A GET on the MLflow tracking server's REST API (``/api/2.0/mlflow/...``)."""
    response = requests.get(f"{stack.mlflow_url}/api/2.0/mlflow/{path}", params=params, timeout=30)
    assert response.status_code == 200, f"MLflow {path}: HTTP {response.status_code} {response.text[:1000]}"
    return response.json()
