"""A throw-away MLflow (SQLite tracking and registry, local artifacts) for the models tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def uris_from_environment() -> Iterator[None]:
    """Meanwhile MLflow's fluent API takes its tracking and registry URIs from the environment again.

    MLflow keeps the URIs set by ``mlflow.set_tracking_uri`` in module globals that win over
    ``MLFLOW_TRACKING_URI``, and dagster-mlflow's resource sets them whenever a training runs in
    process: without this, a test that points the environment at a tracking server would track to
    whatever store an earlier test in the same worker trained into.
    """
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    tracking_utils._tracking_uri, registry_utils._registry_uri = None, None
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved


@contextmanager
def temporary_mlflow(folder: Path) -> Iterator[tuple[str, str]]:
    """Point MLflow at a SQLite store in ``folder``; ``(uri, experiment_id)``; put everything back after.

    ``mlflow.set_tracking_uri`` and ``set_registry_uri`` also write ``MLFLOW_TRACKING_URI`` /
    ``MLFLOW_REGISTRY_URI`` into the environment, and "restoring" them with ``get_tracking_uri()``
    would leave the DEFAULT store (``./mlflow.db``) there for every later test and subprocess. So
    the previous settings, unset ones included, are restored exactly.
    """
    uri = f"sqlite:///{folder}/mlflow.db"
    saved_env = {name: os.environ.get(name) for name in URI_VARIABLES}
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.create_experiment("claims", artifact_location=(folder / "artifacts").as_uri())
        yield uri, experiment
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
