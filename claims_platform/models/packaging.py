"""Log a trained model to MLflow as a "models from code" pyfunc and register it as a new version.

A registered model is self-contained. Its files (under the model's ``artifacts/`` folder):

- ``claims_runtime.py`` (artifact ``runtime``): a copy of :mod:`claims_platform.training.runtime`, the
  computation and the contract check, which ``pyfunc.py`` and ``loading`` import BY PATH under a
  name unique to its content — what runs when the version is loaded is what was registered;
- ``booster.txt``, ``calibrator.json``, ``feature_spec.json`` (artifacts ``booster``, ``calibrator``,
  ``feature_spec``): plain text, no pickles; the spec carries every feature's contract;
- ``reference.parquet`` (artifact ``reference``): the reference sample for drift monitoring — a
  seeded sample of the holdout month's feature columns with the model's own predicted probability
  (no ids, dates or outcomes), so the reference travels with the model and is the same wherever it
  is read (:func:`claims_platform.models.loading.load_reference`);
- ``importance.json`` (artifact ``importance``): each feature's mean absolute TreeSHAP contribution on
  the holdout and its share (:func:`claims_platform.models.importance.shap_importance`), which the
  drift rules weigh a drifted column by.

Beside them MLflow keeps ``pyfunc.py`` (the wrapper, under ``code/``), the signature (every feature as
text, so that the model's contract, not MLflow's cast, judges each value: :func:`model_signature`), the
synthetic input example and the pinned requirements. ``mlflow.pyfunc.load_model`` works in any process
with MLflow, LightGBM and pandas, whether or not it can import ``claims_platform``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema

from claims_platform.models import pyfunc
from claims_platform.models.importance import IMPORTANCE_ARTIFACT
from claims_platform.models.pyfunc import REASONS_PARAM
from claims_platform.training import runtime

if TYPE_CHECKING:  # a trained model is what is packaged; packaging does not need training's code
    from claims_platform.training.train import TrainedModel

MODEL_NAME_IN_RUN = "model"
REFERENCE_ARTIFACT = "reference"  # the drift reference sample (also in loading.py)
RUNTIME_FILE_NAME = "claims_runtime.py"  # the runtime's file name inside the model
# What the model needs at load time (pyfunc.py and the runtime); pinned to what it was trained and tested with.
RUNTIME_PACKAGES = ("lightgbm", "pandas", "numpy", "mlflow")


def pip_requirements() -> list[str]:
    """The installed versions of the packages the model's code needs, pinned exactly."""
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def model_signature(spec: Mapping[str, Any]) -> ModelSignature:
    """Inputs: the spec's feature columns, each declared as TEXT; output: ``claim_probability`` (double).

    Why text: MLflow casts every value to the signature's type BEFORE the model runs, and decides on its
    own: a ``long`` column refuses a null or a word with MLflow's error (no row named), over JSON
    truncates 40.5 to 40 and scores it, and CSV is parsed with the signature's dtypes. Declared as text,
    every value reaches the model as sent (a number, a numeral as text, a word, a null) and the model's
    own contract judges it (:func:`runtime.check_contract`): HTTP 400 naming row, column and rule.
    The types, ranges and levels are the contract's, shipped in ``feature_spec.json``. MLflow refuses a
    batch lacking a feature column (naming it) and drops columns the model does not use (an index, ids,
    labels), logging their names.
    """
    inputs = Schema(
        [ColSpec(DataType.string, name) for name in spec["features"]]
        + [ColSpec(DataType.string, REASONS_PARAM, required=False)]  # CSV's way to ask for reasons
    )
    return ModelSignature(
        inputs=inputs,
        outputs=Schema([ColSpec(DataType.double, runtime.PROBABILITY_COLUMN)]),
        params=ParamSchema([ParamSpec(REASONS_PARAM, DataType.boolean, False)]),
    )


def _example_values(rules: Mapping[str, Any]) -> tuple[Any, Any]:
    """Two valid values of one feature: a typical one, and another (null when the column is nullable)."""
    levels = rules["levels"]
    if levels is not None:
        first, second = levels[0], levels[-1]
    elif rules["kind"] == "int":
        first = int((rules["low"] + rules["high"]) // 2)
        second = int(rules["low"] + (rules["high"] - rules["low"]) // 4)
    else:
        first = (rules["low"] + rules["high"]) / 2
        second = rules["low"] + (rules["high"] - rules["low"]) / 4
    return first, (None if rules["nullable"] else second)


def _as_text(value: Any) -> str | None:
    """A value as a client sends it in CSV: whole numbers without a decimal point, floats exactly (repr)."""
    if value is None or isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def input_example(spec: Mapping[str, Any]) -> pd.DataFrame:
    """Two SYNTHETIC rows built from the contract, as the signature takes them (text): no applicant's data.

    Row 0 holds mid-range values and first levels; row 1 other valid values, last levels and a null
    in every nullable column.
    """
    contract = spec["contract"]
    columns = {
        name: pd.Series([_as_text(v) for v in _example_values(contract[name])], dtype=object)
        for name in spec["features"]
    }
    return pd.DataFrame(columns)


def write_artifacts(
    trained: TrainedModel,
    folder: Path,
    runtime_file: Path | None = None,
    reference: pd.DataFrame | None = None,
    importance: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The model's files into ``folder``: runtime code, booster text, calibrator and spec JSON, reference sample.

    Returns the pyfunc's artifacts mapping (key → path). ``runtime_file`` defaults to the installed
    :mod:`claims_platform.training.runtime`, the code the model was trained and validated with.
    ``reference`` (feature columns and ``claim_probability``) is stored as Parquet when given, and
    ``importance`` as JSON.
    """
    paths = {
        pyfunc.RUNTIME_ARTIFACT: folder / RUNTIME_FILE_NAME,
        runtime.ARTIFACT_BOOSTER: folder / "booster.txt",
        runtime.ARTIFACT_CALIBRATOR: folder / "calibrator.json",
        runtime.ARTIFACT_SPEC: folder / "feature_spec.json",
    }
    shutil.copyfile(runtime_file or Path(runtime.__file__), paths[pyfunc.RUNTIME_ARTIFACT])
    trained.booster.save_model(str(paths[runtime.ARTIFACT_BOOSTER]))
    paths[runtime.ARTIFACT_CALIBRATOR].write_text(json.dumps(trained.calibrator), encoding="utf-8")
    paths[runtime.ARTIFACT_SPEC].write_text(json.dumps(trained.spec, indent=2), encoding="utf-8")
    if reference is not None:
        paths[REFERENCE_ARTIFACT] = folder / "reference.parquet"
        reference.to_parquet(paths[REFERENCE_ARTIFACT], index=False)
    if importance is not None:
        paths[IMPORTANCE_ARTIFACT] = folder / "importance.json"
        paths[IMPORTANCE_ARTIFACT].write_text(json.dumps(importance, indent=2), encoding="utf-8")
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
    runtime_file: Path | None = None,
    reference: pd.DataFrame | None = None,
    importance: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> int:
    """Log ``trained`` into the ACTIVE MLflow run and register it; the new model version number.

    ``tags`` (e.g. partition, window, label cutoff) are set on the model version, beside the
    calibration method and the run id; ``description`` (Markdown: what it is, its month, holdout
    figures, the runs) is shown on the version's page. ``runtime_file`` replaces the shipped runtime (tests only);
    ``reference`` is the drift reference sample and ``importance`` the features' importance shipped with the
    model (see the module docstring).
    Raises ``RuntimeError`` without an active run: the caller owns the run, its params and its metrics.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_trained_model needs an active MLflow run (start one with mlflow.start_run())")
    # The model's environment is `pip_requirements()`, pinned; MLflow would otherwise also copy the
    # whole platform's uv.lock and pyproject.toml (Dagster and all) into the model's artifacts.
    with _env("MLFLOW_LOG_UV_FILES", "false"), tempfile.TemporaryDirectory(prefix="claims_model_") as folder:
        artifacts = write_artifacts(trained, Path(folder), runtime_file, reference, importance)
        shipped = Path(artifacts[pyfunc.RUNTIME_ARTIFACT]).read_bytes()
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(Path(pyfunc.__file__)),
            artifacts=artifacts,
            input_example=input_example(trained.spec),
            signature=model_signature(trained.spec),
            pip_requirements=pip_requirements(),
            metadata={
                "calibration_method": trained.calibration["method"],
                "spec_version": trained.spec["spec_version"],
                "runtime_sha256": hashlib.sha256(shipped).hexdigest(),
            },
            registered_model_name=registered_model_name,
        )
    model_version = int(info.registered_model_version)
    client = mlflow.MlflowClient()
    version_tags = {
        "calibration_method": trained.calibration["method"],
        "run_id": run.info.run_id,
        **dict(tags or {}),
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(registered_model_name, str(model_version), key, str(value))
    if description:
        client.update_model_version(registered_model_name, str(model_version), description=description)
    return model_version
