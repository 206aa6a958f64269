"""The claim-likelihood model as MLflow loads it: feature preparation, calibration, prediction.

This file is logged with the model ("models from code"): MLflow copies it into the model and runs it
in whatever process calls ``mlflow.pyfunc.load_model``. So it must stay SELF-CONTAINED — stdlib,
numpy, pandas, lightgbm and mlflow only, never ``claims_platform`` — and everything it needs comes
from the model's artifacts:

- ``booster``: the LightGBM booster as text (``Booster.save_model``), not a pickle;
- ``calibrator``: JSON, ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear
  interpolation through the isotonic fit's thresholds, clipped at the ends, exactly as scikit-learn's
  ``IsotonicRegression(out_of_bounds="clip")`` predicts) or ``{"method": "sigmoid", "a": ., "b": .}``
  (Platt: ``1 / (1 + exp(-(a·m + b)))``). Both act on the booster's raw margin ``m`` (log-odds);
- ``feature_spec``: JSON, the ordered feature list, the categorical columns with their FIXED levels,
  and the dropped columns with the reason (built by ``claims_platform.training.features``).

The rest of the platform imports :func:`prepare_features` and :func:`predict_claim_probability` from
here too, so training, in-process scoring and the registered model share one code path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import mlflow
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


class ClaimsModel(mlflow.pyfunc.PythonModel):
    """The registered pyfunc: warehouse rows in, calibrated claim probabilities out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load booster, calibrator and feature spec from the model's artifacts."""
        self.booster = lgb.Booster(model_file=context.artifacts[ARTIFACT_BOOSTER])
        self.calibrator = load_json(context.artifacts[ARTIFACT_CALIBRATOR])
        self.spec = load_json(context.artifacts[ARTIFACT_SPEC])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        """``claim_probability`` per input row (same index), calibrated, in [0, 1]."""
        p = predict_claim_probability(self.booster, self.calibrator, self.spec, model_input)
        return pd.Series(p, index=model_input.index, name=PROBABILITY_COLUMN)


mlflow.models.set_model(ClaimsModel())
