"""A small demo-like platform on a real Dagster instance, served by `dagster-webserver` and `mlflow server`.

What a person opening `make dev` after `make demo` would find, in under a minute and a half: a
temporary ``CLAIMS_HOME`` (warehouse, Parquet storage, MLflow) and ``DAGSTER_HOME`` (runs and
events), three months simulated and ingested as one backfill run, March's candidate trained and
made the first champion, April's model in force, and five days of April scored (with their drift
decisions) as one single-run backfill. Evidently's reports are left out: importing Evidently alone
would add a quarter of the time, for nothing the browser test looks at. Then the two servers run as subprocesses in their own process
groups, on free loopback ports, with the same environment as `make dev`, and are stopped with their
children at the end.

Used by the browser test (``test_ui.py``) and by ``make screenshots`` (``screenshots.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from claims_platform.core import settings
from claims_platform.definitions import build_definitions
from claims_platform.models.registry import ModelRegistry
from claims_platform_tests.models.loopback import stop_group
from claims_platform_tests.platform_world import PlatformWorld

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `.ci/run` installs it when missing

FIRST_DAY, LAST_DAY = date(2025, 1, 1), date(2025, 4, 5)
TRAINING_MONTH = "2025-03-01"  # Jan and Feb labelled before April: March's candidate is the first champion
SCORING_MONTH = "2025-04-01"
SCORED_FIRST, SCORED_LAST = "2025-04-01", "2025-04-05"
STARTUP_SECONDS = 120
# Like the repo's dagster.yaml, no welcome screen over the first page and no telemetry; storage
# under DAGSTER_HOME (the temporary one).
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


@dataclass
class UIWorld(PlatformWorld):
    """A :class:`PlatformWorld` whose metadata links to the MLflow UI at ``mlflow_ui_url``."""

    mlflow_ui_url: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # The same registry resource the code location builds from CLAIMS_MLFLOW_UI_URL.
        self.resources["registry"] = ModelRegistry(
            tracking_uri=self.tracking_uri,
            model_name=settings.REGISTERED_MODEL_NAME,
            ui_url=self.mlflow_ui_url,
        )
        self.defs = build_definitions(self.resources)


@dataclass
class DemoInstance:
    """The built world and where its servers listen (``dagster_url`` / ``mlflow_url`` once served)."""

    world: UIWorld
    dagster_home: Path
    mlflow_port: int
    seconds_to_build: float = 0.0
    seconds_to_serve: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    dagster_url: str | None = None
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def claims_home(self) -> Path:
        return self.world.home

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def storage(self) -> Path:
        return self.world.home / "storage"

    def env(self) -> dict[str, str]:
        """The environment of `make dev` on this world: embedded defaults under CLAIMS_HOME."""
        env = {
            k: v
            for k, v in os.environ.items()
            # Anything pointing elsewhere (a developer's own settings) would not be this world.
            if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_", "AWS_")) and k != "PYTEST_CURRENT_TEST"
        }
        bin_dir = str(Path(sys.executable).parent)
        env.update(
            {
                settings.ENV_HOME: str(self.claims_home),
                "DAGSTER_HOME": str(self.dagster_home),
                settings.ENV_MLFLOW_TRACKING_URI: self.world.tracking_uri,
                settings.ENV_MLFLOW_UI_URL: self.mlflow_url,
                "DO_NOT_TRACK": "1",
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build(base: Path) -> DemoInstance:
    """Simulate, ingest, train, decide, score and report a small world on a persistent instance."""
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        return time.perf_counter()

    home, dagster_home = base / "claims", base / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    port = free_port()
    world = UIWorld(home, instance=instance, mlflow_ui_url=f"http://127.0.0.1:{port}")
    now = step("setup", started)
    world.simulate(FIRST_DAY, LAST_DAY)
    now = step("simulate", now)
    assert world.run_range("daily_ingestion", FIRST_DAY.isoformat(), LAST_DAY.isoformat()).success
    now = step("ingest", now)
    world.training = world.train(TRAINING_MONTH)
    decision = world.training.output_for_node("champion_decision")
    assert decision["outcome"] == "first champion", decision["reason"]
    now = step("train", now)
    assert world.materialize_in_force(SCORING_MONTH, SCORING_MONTH).success
    world.scoring = world.run_range("nightly_scoring", SCORED_FIRST, SCORED_LAST)
    assert world.scoring.success
    step("score", now)
    demo = DemoInstance(world, dagster_home, port, seconds_to_build=time.perf_counter() - started)
    demo.timings = timings
    return demo


def _default_signals() -> None:
    """A server must stop on SIGTERM even when started from a shell that ignores it (CI runners may)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def _wait_for(url: str, process: subprocess.Popen, log: Path, name: str, deadline: float) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{name}: no answer from {url} within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def serve(demo: DemoInstance) -> Iterator[DemoInstance]:
    """`mlflow server` on the world's tracking store and `dagster-webserver` on its instance, both stopped after."""
    bin_dir = Path(sys.executable).parent
    env = demo.env()
    dagster_port = free_port()
    commands = {
        "mlflow": [
            str(bin_dir / "mlflow"), "server", "--backend-store-uri", demo.world.tracking_uri,
            "--host", "127.0.0.1", "--port", str(demo.mlflow_port), "--workers", "1",
        ],
        "dagster": [
            str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(dagster_port),
            "-w", str(REPO_ROOT / "workspace.yaml"),
        ],
    }  # fmt: skip
    envs = {
        # MLflow 3's server also starts a job runner with a pool of worker processes (GenAI evaluation
        # jobs): not needed to browse runs and models, and heavy on a 2-core machine.
        "mlflow": {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        "dagster": env,
    }
    processes: dict[str, subprocess.Popen] = {}
    started = time.perf_counter()
    try:
        for name, command in commands.items():
            demo.logs[name] = demo.dagster_home.parent / f"{name}.log"
            with open(demo.logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    command,
                    env=envs[name],
                    # Not the repo: Dagster reads the working directory's .env, and `make demo`
                    # writes its own world's CLAIMS_FIRST_DAY there.
                    cwd=demo.dagster_home.parent,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped with every process it starts
                    preexec_fn=_default_signals,
                )
        deadline = time.monotonic() + STARTUP_SECONDS
        demo.dagster_url = f"http://127.0.0.1:{dagster_port}"
        _wait_for(
            f"{demo.mlflow_url}/health", processes["mlflow"], demo.logs["mlflow"], "mlflow server", deadline
        )
        _wait_for(
            f"{demo.dagster_url}/server_info",
            processes["dagster"],
            demo.logs["dagster"],
            "dagster-webserver",
            deadline,
        )
        demo.seconds_to_serve = time.perf_counter() - started
        yield demo
    finally:
        for process in processes.values():
            stop_group(process)
        demo.dagster_url = None
        left = [name for name, process in processes.items() if _group_alive(process.pid)]
        if left:
            raise RuntimeError(f"processes of {left} still running after they were stopped")


def _group_alive(pgid: int, wait: float = 10.0) -> bool:
    """Whether a live (not zombie) process of the group is left, after ``wait`` seconds at most."""
    deadline = time.monotonic() + wait
    while True:
        if not _live_members(pgid):
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)


def _live_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
                members.append(int(stat.parent.name))
    return members
