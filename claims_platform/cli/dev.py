"""`make dev`: the Dagster UI and the MLflow UI together, on loopback, stopped together.

    python -m claims_platform.cli.dev [--host 127.0.0.1] [--dagster-port 3000] [--mlflow-port 5000]

Starts ``dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml`` (webserver and daemon, on the instance of
``DAGSTER_HOME``, the repo root by default as in the Makefile) and ``mlflow server`` on the SAME
tracking store the platform writes to (:func:`claims_platform.core.settings.default_mlflow_tracking_uri`:
SQLite under ``.local/`` unless ``MLFLOW_TRACKING_URI`` says otherwise), with the artifact folder
of the embedded defaults, so runs, models and their files all show. When ``MLFLOW_TRACKING_URI``
is a tracking server, that server is the MLflow UI and only Dagster is started.

The working directory's ``.env`` (the repo's, under `make`) is read first, over the environment, as
``dagster dev`` reads it there (both are started in that directory): both servers see the same settings, so MLflow serves the store the code location tracks to. The Dagster side gets
``CLAIMS_MLFLOW_UI_URL`` and ``CLAIMS_DAGSTER_UI_URL`` pointing at what this serves (unless they
are set), so metadata links and MLflow's links back match the ports.

Each server runs in its own process group. Ctrl-C (SIGINT) or SIGTERM stops both: each group gets
SIGTERM, which Dagster's processes take as a Ctrl-C and uvicorn (MLflow's server) as a graceful
stop (a SIGINT makes it print a traceback). When either server exits, the other is stopped too.
Whatever is still running after the grace period, or at a second Ctrl-C, is killed: nothing is
left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from claims_platform.core import links, project_env, settings

GRACE_SECONDS = 30.0  # dagster dev waits up to 10 s for each of its webserver and daemon
POLL_SECONDS = 0.2


def _executable(name: str) -> str:
    """The venv's own command (beside this Python), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def dagster_command(host: str, port: int) -> list[str]:
    return [
        _executable("dagster"),
        "dev",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        str(settings.REPO_ROOT / "workspace.yaml"),
    ]


def mlflow_command(host: str, port: int, tracking_uri: str, artifact_location: str) -> list[str]:
    """``mlflow server`` on the platform's tracking (and registry) store.

    Runs keep the artifact location their experiment was created with (``file://`` under ``.local/``
    or ``s3://``), which the server reads directly; experiments created in the UI get the same root.
    """
    return [
        _executable("mlflow"), "server",
        "--backend-store-uri", tracking_uri,
        "--default-artifact-root", artifact_location,
        "--artifacts-destination", artifact_location,
        "--host", host, "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def _prepare_local_store(tracking_uri: str) -> None:
    """The folder of a SQLite tracking store must exist before the server creates the database in it."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def commands(
    host: str, dagster_port: int, mlflow_port: int, environ: Mapping[str, str]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What to start (name → command) and the environment they share.

    The tracking store and artifact location are ``environ``'s, else the embedded defaults (which
    follow ``CLAIMS_HOME`` in the process environment).
    """
    env = dict(environ)
    env.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT))
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # what a browser on this machine opens
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # mlflow server looks for `uvicorn`
    env.setdefault(links.ENV_DAGSTER_UI_URL, f"http://{url_host}:{dagster_port}")
    tracking_uri = env.get(settings.ENV_MLFLOW_TRACKING_URI) or settings.default_mlflow_tracking_uri()
    started = {"dagster": dagster_command(host, dagster_port)}
    if not links.is_tracking_server(tracking_uri):
        _prepare_local_store(tracking_uri)
        artifacts = (
            env.get(settings.ENV_MLFLOW_ARTIFACT_LOCATION) or settings.default_mlflow_artifact_location()
        )
        started["mlflow"] = mlflow_command(host, mlflow_port, tracking_uri, artifacts)
        # MLflow's job runner (GenAI evaluation jobs: seven more processes) serves nothing of the platform's,
        # and its workers outlive a Ctrl-C by more than the grace period.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env.setdefault(links.ENV_MLFLOW_UI_URL, f"http://{url_host}:{mlflow_port}")
    return started, env


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader if it has exited
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _stop_all(
    processes: Mapping[str, subprocess.Popen], signum: int, hurry: Callable[[], bool] = lambda: False
) -> None:
    """``signum`` to every group; after the grace period (or sooner if ``hurry()``), SIGKILL to whatever is left."""
    for process in processes.values():
        _signal_group(process, signum)
    deadline = time.monotonic() + GRACE_SECONDS
    while any(_group_alive(p) for p in processes.values()) and time.monotonic() < deadline and not hurry():
        time.sleep(POLL_SECONDS)
    for name, process in processes.items():
        if _group_alive(process):
            print(
                f"dev: {name} did not stop within {GRACE_SECONDS:.0f} s; killing it",
                file=sys.stderr,
                flush=True,
            )
            _signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def run(started: Mapping[str, Sequence[str]], env: Mapping[str, str]) -> int:
    """Start every command in its own process group; stop all on SIGINT/SIGTERM or when one exits.

    Returns 0 after a requested stop, else the exit status of the server that died (1 if it was 0).
    """
    requested: list[int] = []

    def request_stop(signum: int, _frame) -> None:
        requested.append(signum)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in started.items():
            processes[name] = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
            print(f"dev: started {name} (pid {processes[name].pid}): {' '.join(command)}", flush=True)
        died = None
        while not requested and died is None:
            died = next((name for name, p in processes.items() if p.poll() is not None), None)
            time.sleep(POLL_SECONDS)
        if died is not None:
            print(
                f"dev: {died} exited with status {processes[died].returncode}; stopping the rest",
                file=sys.stderr,
                flush=True,
            )
        else:
            print("dev: stopping both (Ctrl-C again to kill them now)", file=sys.stderr, flush=True)
        # A second Ctrl-C (or SIGTERM) while they shut down: kill what is left at once.
        _stop_all(processes, signal.SIGTERM, hurry=lambda: len(requested) > 1)
    finally:
        if any(
            _group_alive(p) for p in processes.values()
        ):  # an error in this function: leave nothing running
            _stop_all(processes, signal.SIGTERM)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if requested:
        return 0
    code = processes[died].returncode
    return 128 - code if code < 0 else (code or 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claims_platform.cli.dev",
        description="The Dagster UI and the MLflow UI together (Ctrl-C stops both).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface both servers listen on (default: loopback)"
    )
    parser.add_argument("--dagster-port", type=int, default=links.DEFAULT_DAGSTER_PORT)
    parser.add_argument("--mlflow-port", type=int, default=links.DEFAULT_MLFLOW_PORT)
    args = parser.parse_args(argv)
    project_env.load_env_file()  # before the defaults are resolved: CLAIMS_HOME may be in .env
    started, env = commands(args.host, args.dagster_port, args.mlflow_port, os.environ)
    mlflow_ui = env.get(links.ENV_MLFLOW_UI_URL) or links.mlflow_ui_url(
        env.get(settings.ENV_MLFLOW_TRACKING_URI)
    )
    print(
        f"dev: Dagster UI {env[links.ENV_DAGSTER_UI_URL]} (DAGSTER_HOME={env['DAGSTER_HOME']})\n"
        f"dev: MLflow UI  {mlflow_ui}"
        + ("" if "mlflow" in started else " (the tracking server; not started here)")
        + "\ndev: Ctrl-C stops both.",
        flush=True,
    )
    return run(started, env)


if __name__ == "__main__":
    sys.exit(main())
