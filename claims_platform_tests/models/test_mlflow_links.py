"""What MLflow records of a month's training, and every MLflow link Dagster shows opening in MLflow's UI.

`candidate_model` runs as the platform runs it (``dg.materialize`` with the code location's resources:
dagster-mlflow's run, the registry, the Parquet IO manager), on a training set stored by the Parquet
IO manager with the metadata the real `training_set` records. Then ``mlflow server`` serves that
tracking store exactly as `make dev` starts it (:func:`claims_platform.cli.dev.commands`), and each URL
in the candidate's metadata is opened: the page before ``#`` answers 200, its route after ``#/`` is
one the served UI bundle routes, and the objects it names exist (MLflow's REST API).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import unquote

import dagster as dg
import pandas as pd
import pytest
import requests

from claims_platform.cli import dev
from claims_platform.core import links, settings
from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.settings import FIRST_DAY
from claims_platform.definitions import build_resources
from claims_platform.models import candidate as candidate_assets
from claims_platform.models import tracking
from claims_platform.models.registry import MODEL_DESCRIPTION, ModelRegistry
from claims_platform.training.dataset import fingerprint, training_window
from claims_platform.training.split import out_of_time_split
from claims_platform_tests.models.loopback import free_port, stop_group, wait_for_ok
from claims_platform_tests.models.mlflow_sandbox import temporary_mlflow

MONTH = "2025-04-01"
DAGSTER_UI = "http://dagster.example:3000"
SMALL_BUDGET = {"n_trials": 2, "warm_start_trials": 2, "tuning_rows": 3000, "max_boost_rounds": 150}
STARTUP_SECONDS = 90
# The MLflow UI's routes (react-router templates in its bundle) and the REST call proving the object exists.
ROUTES = {
    # A run's page opened on one of its files (the model card): the run page's sub-route names the file.
    r"experiments/(?P<experiment_id>[^/]+)/runs/(?P<run_id>[^/]+)/artifacts/(?P<path>.+)": "/experiments/:experimentId/runs/:runUuid/*",
    r"experiments/(?P<experiment_id>[^/]+)/runs/(?P<run_id>[^/]+)": "/experiments/:experimentId/runs/:runUuid",
    r"experiments/(?P<experiment_id>[^/]+)": "/experiments/:experimentId",
    r"models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)": "/models/:modelName/versions/:version",
    r"models/(?P<name>[^/]+)": "/models/:modelName",
}


def _training_set_stub(rows: pd.DataFrame) -> dg.AssetsDefinition:
    """`training_set` as stored and described by the real asset: the rows, window, fingerprint (and path)."""

    @dg.asset(name="training_set", partitions_def=monthly_partitions)
    def training_set(context):  # (annotations are strings here, which Dagster does not resolve)
        window = training_window(context.partition_time_window.start.date(), 12, None, earliest=FIRST_DAY)
        metadata = {**window.as_metadata(), "training_rows": len(rows), "fingerprint": fingerprint(rows)}
        return dg.Output(rows, metadata=metadata)

    return training_set


@pytest.fixture(scope="module")
def tracked(window: pd.DataFrame, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """April's candidate trained through Dagster, and `mlflow server` on its tracking store as `make dev` starts it."""
    folder = tmp_path_factory.mktemp("mlflow_links")
    port = free_port()
    ui_url = f"http://127.0.0.1:{port}"
    artifacts = (folder / "mlartifacts").as_uri()
    log = folder / "mlflow.log"
    with temporary_mlflow(folder) as (uri, _), pytest.MonkeyPatch.context() as env:
        # The server starts (~10 s) while the candidate trains: it only reads the store the training writes.
        started, server_env = dev.commands(
            "127.0.0.1", free_port(), port,
            {**os.environ, settings.ENV_MLFLOW_TRACKING_URI: uri, settings.ENV_MLFLOW_ARTIFACT_LOCATION: artifacts},
        )  # fmt: skip
        with open(log, "wb") as out:
            server = subprocess.Popen(
                started["mlflow"],
                env=server_env,
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        env.setenv(links.ENV_DAGSTER_UI_URL, DAGSTER_UI)
        resources = build_resources(
            warehouse_url=f"sqlite:///{folder / 'warehouse.db'}",
            storage_url=str(folder / "storage"),
            tracking_uri=uri,
            artifact_location=artifacts,
            mlflow_ui_url=ui_url,
            evidently_workspace=str(folder / "evidently"),
        )
        try:
            result = dg.materialize(
                [_training_set_stub(window), candidate_assets.candidate_model],
                partition_key=MONTH,
                instance=dg.DagsterInstance.ephemeral(),
                resources=resources,
                run_config={"ops": {"candidate_model": {"config": SMALL_BUDGET}}},
            )
        except BaseException:
            stop_group(server)
            raise
    try:
        assert result.success
        wait_for_ok(f"{ui_url}/health", server, log, STARTUP_SECONDS)
        (training_set,) = result.asset_materializations_for_node("training_set")
        (candidate,) = result.asset_materializations_for_node("candidate_model")
        record = result.output_for_node("candidate_model")
        registry: ModelRegistry = resources["registry"]
        yield SimpleNamespace(
            result=result,
            record=record,
            registry=registry,
            run=registry.client().get_run(record["mlflow_run_id"]),
            training_set=training_set.metadata,
            candidate=candidate.metadata,
            ui_url=ui_url,
            window=window,
        )
    finally:
        stop_group(server)


@pytest.mark.integration
def test_the_training_run_is_named_described_versioned_and_links_back_to_dagster(tracked):
    run, record = tracked.run, tracked.record
    assert run.info.run_name == "claims_model 2025-04" and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["dagster_run_id"] == tracked.result.run_id and tags["dagster_partition"] == MONTH
    assert tags[tracking.DAGSTER_RUN_URL_TAG] == f"{DAGSTER_UI}/runs/{tracked.result.run_id}"
    # The code version: the repo's git commit when there is one, else the package's version.
    code = tags[tracking.CODE_VERSION_TAG]
    assert code == tracking.code_version()
    assert re.fullmatch(r"[0-9a-f]{40}", code) or code.startswith("claims_platform ")
    if re.fullmatch(r"[0-9a-f]{40}", code):
        assert tags[tracking.GIT_COMMIT_TAG] == code
    note = tags[tracking.NOTE_TAG]
    for fact in (
        "Candidate claims model for 2025-04",
        "applications 2025-01-01..2025-04-30",  # the window starts with the simulated world
        "known before 2025-05-01T00:00:00",
        f"fingerprint `{tracked.training_set['fingerprint'].value}`",
        f"]({DAGSTER_UI}/runs/{tracked.result.run_id})",
        f"registered as `{tracked.registry.model_name}` version {record['version']}",
        f"Out-of-time holdout {record['holdout_month']}",
        f"kappa {record['holdout_metrics']['kappa']:.3f}",
        f"ROC AUC {record['holdout_metrics']['roc_auc']:.3f}",
        "Quality gate",
    ):
        assert fact in note, (fact, note)


@pytest.mark.integration
def test_the_training_set_and_the_holdout_are_mlflow_datasets_of_the_stored_file(tracked):
    inputs = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset
        for d in tracked.run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    stored_at = str(tracked.training_set["path"].value)
    assert stored_at.endswith(f"training_set/{MONTH}.parquet")
    training, holdout = inputs["training"], inputs["evaluation"]
    # The digest IS the fingerprint Dagster recorded; the source IS where the training set is stored.
    assert training.digest == tracked.training_set["fingerprint"].value == fingerprint(tracked.window)
    assert training.name == "training_set_2025-04" and training.source_type == "local"
    assert json.loads(training.source)["uri"] == stored_at
    split = out_of_time_split(tracked.window)
    assert holdout.name == f"holdout_{split.holdout_month}" and holdout.digest == fingerprint(split.holdout)
    assert json.loads(holdout.source)["uri"] == stored_at
    assert json.loads(holdout.profile)["num_rows"] == len(split.holdout)
    # The schema logged (read off a sample) is the one MLflow infers from the whole frame.
    from mlflow.types.utils import _infer_schema

    assert json.loads(training.schema)["mlflow_colspec"] == _infer_schema(tracked.window).to_dict()


@pytest.mark.integration
def test_the_registered_model_and_its_version_are_described(tracked):
    client, record = tracked.registry.client(), tracked.record
    assert client.get_registered_model(tracked.registry.model_name).description == MODEL_DESCRIPTION
    description = client.get_model_version(tracked.registry.model_name, str(record["version"])).description
    for fact in (
        "Claims model of 2025-04",
        f"Out-of-time holdout {record['holdout_month']}",
        f"kappa {record['holdout_metrics']['kappa']:.3f}",
        f"ROC AUC {record['holdout_metrics']['roc_auc']:.3f}",
        f"{DAGSTER_UI}/runs/{tracked.result.run_id}",
        tracked.registry.run_url(record["mlflow_run_id"]),
    ):
        assert fact in description, (fact, description)


def _served_bundle(ui_url: str) -> str:
    """The MLflow UI's main script, as the served page loads it."""
    page = requests.get(f"{ui_url}/", timeout=10)
    assert page.status_code == 200
    (script,) = re.findall(r'src="([^"]*static/js/main\.[0-9a-f]+\.js)"', page.text)
    bundle = requests.get(f"{ui_url}/{script.lstrip('/')}", timeout=30)
    assert bundle.status_code == 200
    return bundle.text


def _exists(ui_url: str, route: str) -> dict:
    """The REST answer for the object a UI route names (raises when the route is not one of ROUTES)."""
    api = f"{ui_url}/api/2.0/mlflow"
    for pattern in ROUTES:
        if match := re.fullmatch(pattern, route):
            ids = {k: unquote(v) for k, v in match.groupdict().items()}
            break
    else:
        raise AssertionError(f"not an MLflow UI route: {route}")
    if "path" in ids:  # the file itself, as the run page's artifact view fetches it
        served = requests.get(
            f"{ui_url}/get-artifact", params={"path": ids["path"], "run_uuid": ids["run_id"]}, timeout=10
        )
        assert served.status_code == 200 and served.content, (route, served.status_code)
    if "run_id" in ids:
        answer = requests.get(f"{api}/runs/get", params={"run_id": ids["run_id"]}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["run"]["info"]["experiment_id"] == ids["experiment_id"]
    elif "experiment_id" in ids:
        answer = requests.get(
            f"{api}/experiments/get", params={"experiment_id": ids["experiment_id"]}, timeout=10
        )
    elif "version" in ids:
        answer = requests.get(f"{api}/model-versions/get", params=ids, timeout=10)
    else:
        answer = requests.get(f"{api}/registered-models/get", params=ids, timeout=10)
    assert answer.status_code == 200, (route, answer.text)
    return answer.json()


@pytest.mark.integration
def test_every_mlflow_link_in_dagster_metadata_opens_in_the_mlflow_ui(tracked):
    urls = {
        key: value.value for key, value in tracked.candidate.items() if isinstance(value, dg.UrlMetadataValue)
    }
    assert set(urls) >= {"model", "mlflow_run", "mlflow_experiment", "model_card"}
    urls["registered_model"] = tracked.registry.model_url()
    bundle = _served_bundle(tracked.ui_url)
    for key, url in urls.items():
        page, _, route = url.partition("#/")
        assert page == f"{tracked.ui_url}/", (key, url)
        assert requests.get(page, timeout=10).status_code == 200
        template = next(t for p, t in ROUTES.items() if re.fullmatch(p, route))
        assert f'"{template}"' in bundle, f"{key}: the served UI has no route {template}"
        answer = _exists(tracked.ui_url, route)
        if key == "model":
            assert answer["model_version"]["version"] == str(tracked.record["version"])
            assert answer["model_version"]["run_id"] == tracked.record["mlflow_run_id"]
        if key in ("mlflow_run", "model_card"):
            assert answer["run"]["info"]["run_name"] == "claims_model 2025-04"


@pytest.mark.integration
def test_the_ui_shows_the_run_artifacts_and_the_model_files_of_the_local_store(tracked):
    ui_url, run_id = tracked.ui_url, tracked.record["mlflow_run_id"]
    # What the run page's artifact browser asks for.
    plot = requests.get(
        f"{ui_url}/get-artifact", params={"path": "plots/roc_curve.png", "run_uuid": run_id}, timeout=10
    )
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    # What the logged model's page asks for (MLflow 3: the run's model, which the version was registered from).
    (logged,) = tracked.run.outputs.model_outputs
    version = tracked.registry.client().get_model_version(
        tracked.registry.model_name, str(tracked.record["version"])
    )
    assert version.source == f"models:/{logged.model_id}"
    files = requests.get(
        f"{ui_url}/ajax-api/2.0/mlflow/logged-models/{logged.model_id}/artifacts/files",
        params={"artifact_file_path": "MLmodel"},
        timeout=10,
    )
    assert files.status_code == 200 and b"python_function" in files.content


def test_links_default_to_what_make_dev_serves(monkeypatch, tmp_path):
    monkeypatch.delenv(settings.ENV_MLFLOW_UI_URL, raising=False)
    monkeypatch.delenv(links.ENV_DAGSTER_UI_URL, raising=False)
    registry = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registry.version_reference(3) == dg.MetadataValue.url(
        "http://127.0.0.1:5000/#/models/claims_classifier/versions/3"
    )
    assert registry.version_reference(None) == "none"
    assert registry.experiment_url("1") == "http://127.0.0.1:5000/#/experiments/1"
    assert registry.run_url("abc", "1") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    assert links.dagster_run_url("r1") == "http://127.0.0.1:3000/runs/r1"
    # A tracking server is its own UI; the environment wins over both; the resource's setting over all.
    assert (
        ModelRegistry(tracking_uri="https://mlflow.example/").model_url()
        == "https://mlflow.example/#/models/claims_classifier"
    )
    monkeypatch.setenv(settings.ENV_MLFLOW_UI_URL, "http://mlflow.internal:8080/")
    monkeypatch.setenv(links.ENV_DAGSTER_UI_URL, "http://dagster.internal")
    assert registry.version_url(2) == "http://mlflow.internal:8080/#/models/claims_classifier/versions/2"
    assert links.dagster_run_url("r1") == "http://dagster.internal/runs/r1"
    assert (
        ModelRegistry(tracking_uri="x", ui_url="http://ui:1").version_url(1)
        == "http://ui:1/#/models/claims_classifier/versions/1"
    )


def test_training_runs_are_named_for_their_month():
    assert (
        tracking.training_run_name("2026-09-01")
        == tracking.training_run_name("2026-09")
        == "claims_model 2026-09"
    )
