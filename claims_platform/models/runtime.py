"""The claim-likelihood model's computation: feature preparation, calibration, prediction.

This file ships inside every registered model (a ``code_paths`` entry beside ``pyfunc.py``, the
pyfunc wrapper), so it must stay SELF-CONTAINED — stdlib, numpy, pandas and lightgbm only, never
``claims_platform`` or mlflow — and everything it needs comes from the model's artifacts:

- ``booster``: the LightGBM booster as text (``Booster.save_model``), not a pickle;
- ``calibrator``: JSON, ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear
  interpolation through the isotonic fit's thresholds, clipped at the ends, exactly as scikit-learn's
  ``IsotonicRegression(out_of_bounds="clip")`` predicts) or ``{"method": "sigmoid", "a": ., "b": .}``
  (Platt: ``1 / (1 + exp(-(a·m + b)))``). Both act on the booster's raw margin ``m`` (log-odds);
- ``feature_spec``: JSON, the ordered feature list, the categorical columns with their FIXED levels,
  and the dropped columns with the reason (built by ``claims_platform.training.features``).

The rest of the platform imports :func:`prepare_features` and :func:`predict_claim_probability` from
here too, so training, nightly scoring and the registered model share one code path. Nightly scoring
reads a registered model's artifacts with :func:`load_scorer` instead of importing MLflow, which
would cost every run process about a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

ARTIFACT_BOOSTER = "booster"
ARTIFACT_CALIBRATOR = "calibrator"
ARTIFACT_SPEC = "feature_spec"
PROBABILITY_COLUMN = "claim_probability"


def prepare_features(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """The model's input matrix from rows in the warehouse's column format.

    Columns come out in ``spec["features"]`` order; extra columns (ids, dates, labels) are ignored.
    Categoricals become pandas ``Categorical`` with the spec's FIXED levels, so a level keeps the same
    integer code on every day whatever levels that day happens to contain (LightGBM splits on codes).
    A value outside the levels becomes missing — the data contract rejects such rows before scoring.
    Everything else becomes float64 (nullable 0/1 columns arrive as floats with NaN anyway).

    Raises ``KeyError`` naming every missing feature column.
    """
    features: list[str] = list(spec["features"])
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise KeyError(f"input lacks feature columns: {missing}")
    categorical: Mapping[str, list] = spec["categorical"]
    columns: dict[str, Any] = {}
    for name in features:
        values = frame[name]
        if name in categorical:
            columns[name] = pd.Categorical(values.astype(object), categories=list(categorical[name]))
        else:
            columns[name] = pd.to_numeric(values, errors="raise").astype(np.float64).to_numpy()
    return pd.DataFrame(columns, index=frame.index)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a large positive margin overflows to inf, which is fine (gives 0), but warns.
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def apply_calibrator(calibrator: Mapping[str, Any], margin: np.ndarray) -> np.ndarray:
    """Calibrated probabilities from the booster's raw margins (log-odds), in [0, 1]."""
    margin = np.asarray(margin, dtype=np.float64)
    method = calibrator["method"]
    if method == "isotonic":
        p = np.interp(margin, np.asarray(calibrator["x"], float), np.asarray(calibrator["y"], float))
    elif method == "sigmoid":
        p = _sigmoid(float(calibrator["a"]) * margin + float(calibrator["b"]))
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    return np.clip(p, 0.0, 1.0)


def predict_claim_probability(
    booster: lgb.Booster, calibrator: Mapping[str, Any], spec: Mapping[str, Any], frame: pd.DataFrame
) -> np.ndarray:
    """Calibrated claim probabilities for warehouse-format rows: features → booster margin → calibrator."""
    if len(frame) == 0:
        return np.empty(0, dtype=np.float64)
    margin = booster.predict(prepare_features(frame, spec), raw_score=True)
    return apply_calibrator(calibrator, margin)


def load_json(path: str) -> dict[str, Any]:
    """A JSON artifact as a dict."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class Scorer:
    """A registered model's booster, calibrator and feature spec, ready to score."""

    booster: lgb.Booster
    calibrator: Mapping[str, Any]
    spec: Mapping[str, Any]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated claim probabilities for warehouse-format rows."""
        return predict_claim_probability(self.booster, self.calibrator, self.spec, frame)


def load_scorer(model_uri: str) -> Scorer:
    """The model stored at ``model_uri`` (its MLflow artifact location: a folder, file:// or s3:// URI).

    Reads the pyfunc flavor's artifact paths from the model's ``MLmodel`` file, then the three
    artifacts, with fsspec (any filesystem MLflow can store models on).
    """
    import fsspec
    import yaml

    base = model_uri.rstrip("/")
    with fsspec.open(f"{base}/MLmodel", "r", encoding="utf-8") as handle:
        artifacts = yaml.safe_load(handle)["flavors"]["python_function"]["artifacts"]

    def read(name: str) -> str:
        with fsspec.open(f"{base}/{artifacts[name]['path']}", "r", encoding="utf-8") as handle:
            return handle.read()

    return Scorer(
        booster=lgb.Booster(model_str=read(ARTIFACT_BOOSTER)),
        calibrator=json.loads(read(ARTIFACT_CALIBRATOR)),
        spec=json.loads(read(ARTIFACT_SPEC)),
    )
