"""Where the two UIs are, and the links between them: Dagster metadata → MLflow pages, MLflow runs → Dagster runs.

`make dev` serves the Dagster UI on http://127.0.0.1:3000 and the MLflow UI on http://127.0.0.1:5000
(:mod:`claims_platform.cli.dev`), so those are the defaults; set ``CLAIMS_DAGSTER_UI_URL`` and
``CLAIMS_MLFLOW_UI_URL`` when the UIs are elsewhere. When MLflow tracks to a server (an
``http(s)://`` tracking URI) and no UI URL is set, that server is the UI.

The MLflow UI routes its pages after ``#/`` (checked against MLflow 3's UI bundle, ``mlflow/server/js``):
``#/experiments/<id>``, ``#/experiments/<id>/runs/<run id>``, ``#/models/<name>``,
``#/models/<name>/versions/<version>``. Dagster's run page is ``/runs/<run id>``.
Nothing here imports a heavy library.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from claims_platform.core.settings import ENV_MLFLOW_UI_URL

ENV_DAGSTER_UI_URL = "CLAIMS_DAGSTER_UI_URL"
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"
DEFAULT_DAGSTER_PORT = 3000
DEFAULT_MLFLOW_PORT = 5000


def is_tracking_server(tracking_uri: str | None) -> bool:
    """Whether MLflow tracks to a server (which then serves the UI too) rather than a database or folder."""
    return bool(tracking_uri) and tracking_uri.lower().startswith(("http://", "https://"))


def mlflow_ui_url(tracking_uri: str | None = None) -> str:
    """``CLAIMS_MLFLOW_UI_URL``; else the tracking server itself; else `make dev`'s http://127.0.0.1:5000."""
    configured = os.environ.get(ENV_MLFLOW_UI_URL)
    if configured:
        return configured.rstrip("/")
    if is_tracking_server(tracking_uri):
        return tracking_uri.rstrip("/")
    return DEFAULT_MLFLOW_UI_URL


def dagster_ui_url() -> str:
    """``CLAIMS_DAGSTER_UI_URL``, else `make dev`'s http://127.0.0.1:3000."""
    return (os.environ.get(ENV_DAGSTER_UI_URL) or DEFAULT_DAGSTER_UI_URL).rstrip("/")


def _part(text: object) -> str:
    return quote(str(text), safe="")


def mlflow_experiment_url(base: str, experiment_id: str) -> str:
    """The experiment's page (its runs) in the MLflow UI at ``base``."""
    return f"{base.rstrip('/')}/#/experiments/{_part(experiment_id)}"


def mlflow_run_url(base: str, experiment_id: str, run_id: str) -> str:
    """One run's page (params, metrics, datasets, artifacts) in the MLflow UI at ``base``."""
    return f"{mlflow_experiment_url(base, experiment_id)}/runs/{_part(run_id)}"


def mlflow_model_url(base: str, model_name: str) -> str:
    """The registered model's page (its versions and aliases) in the MLflow UI at ``base``."""
    return f"{base.rstrip('/')}/#/models/{_part(model_name)}"


def mlflow_model_version_url(base: str, model_name: str, version: int | str) -> str:
    """One registered model version's page in the MLflow UI at ``base``."""
    return f"{mlflow_model_url(base, model_name)}/versions/{_part(version)}"


def dagster_run_url(run_id: str, base: str | None = None) -> str:
    """A Dagster run's page: ``<Dagster UI>/runs/<run id>``."""
    return f"{(base or dagster_ui_url()).rstrip('/')}/runs/{_part(run_id)}"
