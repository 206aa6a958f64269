"""`make dev` (:mod:`claims_platform.cli.dev`): both UIs up on loopback, on the platform's stores; Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from claims_platform.cli import dev
from claims_platform.core import settings
from claims_platform_tests.models.loopback import alive, descendants, free_port, stop_group, wait_for_ok

pytestmark = pytest.mark.slow  # `make dev`'s servers started and stopped: `make test`, not `make test-fast`

STARTUP_SECONDS = 120
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


@pytest.mark.integration
def test_make_dev_serves_both_uis_on_the_platform_stores_and_ctrl_c_stops_everything(tmp_path):
    home, dagster_home = tmp_path / "claims", tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_", "PYTEST_"))
    }
    env.update({settings.ENV_HOME: str(home), "DAGSTER_HOME": str(dagster_home), "DO_NOT_TRACK": "1"})
    dagster_port, mlflow_port = free_port(), free_port()
    dagster_url, mlflow_url = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}"
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "claims_platform.cli.dev", "--dagster-port", str(dagster_port), "--mlflow-port", str(mlflow_port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    tree: set[int] = set()
    try:
        wait_for_ok(f"{mlflow_url}/health", launcher, log, STARTUP_SECONDS)
        wait_for_ok(f"{dagster_url}/server_info", launcher, log, STARTUP_SECONDS)
        assert (
            requests.get(f"{dagster_url}/runs/some-run", timeout=10).status_code == 200
        )  # the UI's run page
        assert requests.get(f"{mlflow_url}/", timeout=10).status_code == 200
        # MLflow serves the platform's embedded tracking store (SQLite under CLAIMS_HOME), not one of its own.
        store = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
        experiment_id = store.create_experiment("seen_through_the_ui")
        found = requests.get(
            f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "seen_through_the_ui"},
            timeout=10,
        )
        assert found.status_code == 200 and found.json()["experiment"]["experiment_id"] == experiment_id
        # The links in Dagster's metadata point at what is served here.
        banner = log.read_text()
        assert f"Dagster UI {dagster_url}" in banner and f"MLflow UI  {mlflow_url}" in banner
        tree = descendants(launcher.pid)
        assert len(tree) >= 5, tree  # dagster dev, its webserver and daemon, mlflow server, uvicorn

        launcher.send_signal(signal.SIGINT)  # what Ctrl-C in `make dev`'s terminal does
        assert launcher.wait(timeout=dev.GRACE_SECONDS + 30) == 0
        assert not alive(tree), f"left running: {alive(tree)}\n{log.read_text()[-3000:]}"
    finally:
        stop_group(launcher)
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)


def test_when_one_server_dies_the_launcher_stops_the_other_and_fails_with_its_status(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    dying = [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"]
    started = time.monotonic()
    assert dev.run({"dagster": sleeper, "mlflow": dying}, dict(os.environ)) == 3
    assert time.monotonic() - started < 10  # the sleeper was stopped, not waited for
    assert dev.run({"dagster": sleeper, "mlflow": [sys.executable, "-c", "pass"]}, dict(os.environ)) == 1


def test_mlflow_serves_the_platform_store_unless_the_platform_tracks_to_a_server(tmp_path):
    local = {settings.ENV_MLFLOW_TRACKING_URI: f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}",
             settings.ENV_MLFLOW_ARTIFACT_LOCATION: (tmp_path / "artifacts").as_uri()}  # fmt: skip
    started, env = dev.commands("127.0.0.1", 3001, 5001, local)
    command = started["mlflow"]
    assert command[command.index("--backend-store-uri") + 1] == local[settings.ENV_MLFLOW_TRACKING_URI]
    assert command[command.index("--default-artifact-root") + 1] == (tmp_path / "artifacts").as_uri()
    assert (tmp_path / "state").is_dir()  # where SQLite will create the store
    assert started["dagster"][1:] == [
        "dev",
        "-h",
        "127.0.0.1",
        "-p",
        "3001",
        "-w",
        str(settings.REPO_ROOT / "workspace.yaml"),
    ]
    # The code location's links point at what is served (unless configured).
    assert (
        env["CLAIMS_MLFLOW_UI_URL"] == "http://127.0.0.1:5001"
        and env["CLAIMS_DAGSTER_UI_URL"] == "http://127.0.0.1:3001"
    )
    remote, env = dev.commands(
        "127.0.0.1", 3001, 5001, {settings.ENV_MLFLOW_TRACKING_URI: "https://mlflow.example"}
    )
    assert set(remote) == {"dagster"} and "CLAIMS_MLFLOW_UI_URL" not in env
