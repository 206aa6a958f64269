"""Log a trained model to MLflow as a "models from code" pyfunc and register it as a new version.

The logged model is ``pyfunc.py`` plus three plain-text artifacts (booster text, calibrator
JSON, feature spec JSON): no pickles of project classes, so ``mlflow.pyfunc.load_model`` works in a
process that has never heard of ``claims_platform``. The decision threshold travels in the model's
metadata and as a model-version tag, so whoever loads the champion can decide as it was validated.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import mlflow
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

from claims_platform.models import pyfunc, runtime
from claims_platform.training.train import TrainedModel

MODEL_NAME_IN_RUN = "model"
THRESHOLD_TAG = "decision_threshold"
# What the model needs at load time; pinned to what it was trained and tested with.
RUNTIME_PACKAGES = ("lightgbm", "pandas", "numpy", "scikit-learn", "mlflow")


def pip_requirements() -> list[str]:
    """The installed versions of the packages ``pyfunc.py`` needs, pinned exactly."""
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def model_signature(spec: Mapping[str, object]) -> ModelSignature:
    """Inputs: the spec's feature columns by NAME, type ``Any``; output: ``claim_probability`` (double).

    Names only, on purpose: MLflow will not convert int64 to double ("unsafe"), and an integer column
    that holds a null in one batch arrives as float64, so typed columns would reject valid batches.
    ``prepare_features`` does the typing; MLflow still rejects a batch lacking a feature column and
    drops columns the model does not use (ids, dates).
    """
    inputs = Schema([ColSpec(type=AnyType(), name=name) for name in spec["features"]])
    return ModelSignature(
        inputs=inputs, outputs=Schema([ColSpec(DataType.double, runtime.PROBABILITY_COLUMN)])
    )


def write_artifacts(trained: TrainedModel, folder: Path) -> dict[str, str]:
    """Booster text, calibrator and feature-spec JSON into ``folder``; the pyfunc's artifacts mapping."""
    paths = {
        runtime.ARTIFACT_BOOSTER: folder / "booster.txt",
        runtime.ARTIFACT_CALIBRATOR: folder / "calibrator.json",
        runtime.ARTIFACT_SPEC: folder / "feature_spec.json",
    }
    trained.booster.save_model(str(paths[runtime.ARTIFACT_BOOSTER]))
    paths[runtime.ARTIFACT_CALIBRATOR].write_text(json.dumps(trained.calibrator), encoding="utf-8")
    paths[runtime.ARTIFACT_SPEC].write_text(json.dumps(trained.spec, indent=2), encoding="utf-8")
    return {name: str(path) for name, path in paths.items()}


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def log_trained_model(
    trained: TrainedModel,
    *,
    registered_model_name: str,
    tags: Mapping[str, str] | None = None,
) -> int:
    """Log ``trained`` into the ACTIVE MLflow run and register it; the new model version number.

    ``tags`` (e.g. partition, window, label cutoff) are set on the model version, beside the
    decision threshold and calibration method. Raises ``RuntimeError`` without an active run: the
    caller owns the run, its params and its metrics.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_trained_model needs an active MLflow run (start one with mlflow.start_run())")
    # The model's environment is `pip_requirements()`, pinned; MLflow would otherwise also copy the
    # whole platform's uv.lock and pyproject.toml (Dagster and all) into the model's artifacts.
    with _env("MLFLOW_LOG_UV_FILES", "false"), tempfile.TemporaryDirectory(prefix="claims_model_") as folder:
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(Path(pyfunc.__file__)),
            code_paths=[str(Path(runtime.__file__))],
            artifacts=write_artifacts(trained, Path(folder)),
            input_example=trained.input_example,
            signature=model_signature(trained.spec),
            pip_requirements=pip_requirements(),
            metadata={THRESHOLD_TAG: trained.threshold, "calibration_method": trained.calibration["method"]},
            registered_model_name=registered_model_name,
        )
    model_version = int(info.registered_model_version)
    client = mlflow.MlflowClient()
    version_tags = {
        THRESHOLD_TAG: str(trained.threshold),
        "calibration_method": trained.calibration["method"],
        "run_id": run.info.run_id,
        **dict(tags or {}),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(registered_model_name, str(model_version), key, str(value))
    return model_version
