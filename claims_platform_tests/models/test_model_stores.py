"""Model files on every store, through a real MLflow tracking server (PostgreSQL backend, S3 artifacts).

The server runs as `mlflow server` does in production: a PostgreSQL backend store (the psycopg2
driver named in the URI), artifacts proxied to an S3 API server on loopback (moto). The platform
logs a model as a monthly training does and loads it back as scoring does, from
``mlflow-artifacts:/`` (the server's artifact root) and from ``s3://`` directly with the endpoint
taken from ``CLAIMS_S3_ENDPOINT_URL`` alone. An outage names the service and fails within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from claims_platform.core import settings
from claims_platform.core.schema import CLAIM_STATUS
from claims_platform.core.services import MLFLOW, ServiceUnavailableError
from claims_platform.models.loading import load_reference, load_scorer
from claims_platform.models.packaging import log_trained_model
from claims_platform.models.reference import reference_drawn_from
from claims_platform.models.registry import ModelRegistry
from claims_platform.models.tracking import ArtifactLocationMismatch, ensure_experiment
from claims_platform_tests.environment import unset
from claims_platform_tests.models.loopback import free_port, stop_group, wait_for_ok
from claims_platform_tests.models.mlflow_sandbox import uris_from_environment
from claims_platform_tests.postgres import admin_connection, admin_url
from claims_platform_tests.s3_server import list_keys, s3_endpoint  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_database() -> Iterator[str]:
    """A PostgreSQL database of its own for the tracking server (``postgresql+psycopg2://``), dropped after."""
    import sqlalchemy as sa

    admin = admin_connection()
    name = f"mlflow_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            sa.engine.make_url(admin_url())
            .set(drivername="postgresql+psycopg2", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def bucket(s3_endpoint) -> str:  # noqa: F811
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def tracking_server(mlflow_database: str, bucket: str, s3_endpoint, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    """`mlflow server` with the PostgreSQL backend and artifacts proxied to s3://<bucket>/mlflow."""
    assert mlflow_database.startswith("postgresql+psycopg2://")
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow") / "server.log"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint.endpoint_url,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", mlflow_database,
        "--artifacts-destination", f"s3://{bucket}/mlflow",
        "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_ok(f"http://127.0.0.1:{port}/health", process, log, 120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)


@pytest.fixture
def platform_env(monkeypatch, tracking_server: str, s3_endpoint) -> Iterator[str]:  # noqa: F811
    """The platform's settings as in production: only ``CLAIMS_S3_ENDPOINT_URL`` names the S3 endpoint, and
    MLflow tracks where ``MLFLOW_TRACKING_URI`` says (not where an earlier in-process training left it)."""
    unset(
        monkeypatch,
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL",
        "MLFLOW_REGISTRY_URI",
    )
    unset(monkeypatch, settings.ENV_MLFLOW_ARTIFACT_LOCATION, *settings.BOUNDED_CLIENT_ENVIRONMENT)
    monkeypatch.setenv(settings.ENV_MLFLOW_TRACKING_URI, tracking_server)
    monkeypatch.setenv(settings.ENV_S3_ENDPOINT_URL, s3_endpoint.endpoint_url)
    settings.configure_service_clients()
    with uris_from_environment():
        yield tracking_server


def _log_model(
    trained, window, tracking_uri: str, experiment: str, artifact_location: str | None
) -> tuple[ModelRegistry, int]:
    registry = ModelRegistry(tracking_uri=tracking_uri, model_name=f"claims_{uuid.uuid4().hex[:8]}")
    experiment_id = ensure_experiment(tracking_uri, experiment, artifact_location)
    # The fluent API tracks to MLFLOW_TRACKING_URI (platform_env), as a training run does.
    with mlflow.start_run(experiment_id=experiment_id):
        version = log_trained_model(
            trained, registered_model_name=registry.model_name, reference=_reference(trained, window)
        )
    return registry, version


def _rows(window: pd.DataFrame) -> pd.DataFrame:
    return window.drop(columns=[CLAIM_STATUS]).head(200)


def _reference(trained, window: pd.DataFrame) -> pd.DataFrame:
    rows = _rows(window)
    return reference_drawn_from(rows, trained.predict_proba(rows), size=200, seed=1)


def _local_model_files(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.exists() for path in folder.rglob("MLmodel")]


def test_a_model_logged_through_the_server_lands_in_s3_and_scores_from_there(
    platform_env,
    trained,
    window,
    bucket,
    s3_endpoint,  # noqa: F811
    tmp_path,  # noqa: F811
):
    # No artifact location configured: the experiment takes the server's root (mlflow-artifacts:, proxied to S3).
    assert settings.default_mlflow_artifact_location() is None
    registry, version = _log_model(trained, window, platform_env, f"exp-{uuid.uuid4().hex[:8]}", None)
    uri = registry.artifact_uri(version)
    assert uri.startswith("mlflow-artifacts:/"), uri

    keys = list_keys(s3_endpoint.client(), bucket, "mlflow/")
    assert any(key.endswith("/MLmodel") for key in keys), keys[:20]
    assert not _local_model_files(tmp_path, Path.cwd() / "mlruns", Path.cwd() / "mlartifacts")

    frame = _rows(window)
    np.testing.assert_allclose(load_scorer(uri).predict(frame), trained.predict_proba(frame), rtol=1e-9)
    assert len(load_reference(uri)) == 200


def test_s3_artifacts_load_with_the_endpoint_from_the_platform_setting_alone(
    platform_env,
    trained,
    window,
    bucket,
    s3_endpoint,  # noqa: F811
):
    # The client writes and reads s3:// itself; MLflow's and boto3's endpoint variables were unset.
    location = f"s3://{bucket}/direct/{uuid.uuid4().hex[:8]}"
    registry, version = _log_model(trained, window, platform_env, f"exp-{uuid.uuid4().hex[:8]}", location)
    uri = registry.artifact_uri(version)
    assert uri.startswith(location), uri
    frame = _rows(window)
    np.testing.assert_allclose(load_scorer(uri).predict(frame), trained.predict_proba(frame), rtol=1e-9)


def test_an_experiment_elsewhere_than_configured_is_a_clear_error(platform_env, bucket):
    name = f"exp-{uuid.uuid4().hex[:8]}"
    ensure_experiment(platform_env, name, None)  # created at the server's root
    with pytest.raises(ArtifactLocationMismatch) as raised:
        ensure_experiment(platform_env, name, f"s3://{bucket}/elsewhere")
    message = str(raised.value)
    assert "mlflow-artifacts:" in message and f"s3://{bucket}/elsewhere" in message
    assert settings.ENV_MLFLOW_ARTIFACT_LOCATION in message
    # The experiment's own location, or none configured, is fine.
    assert ensure_experiment(platform_env, name, None) == ensure_experiment(platform_env, name, None)


def test_an_mlflow_outage_names_the_server_and_fails_within_seconds(monkeypatch):
    unset(monkeypatch, *settings.BOUNDED_CLIENT_ENVIRONMENT)
    settings.configure_service_clients()  # the bounded client retries the platform runs with
    down = f"http://127.0.0.1:{free_port()}"
    registry = ModelRegistry(tracking_uri=down, model_name="claims_classifier")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as raised:
        registry.alias_version("champion")
    elapsed = time.monotonic() - started
    assert raised.value.service == MLFLOW
    assert str(raised.value).startswith(f"the MLflow tracking server at {down} did not answer")
    assert elapsed < 15, elapsed
