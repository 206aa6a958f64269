"""Probability calibration of the booster's margins, chosen on validation data by cross-fitting.

Both candidates map the booster's raw margin (log-odds) to a probability and are stored as plain JSON
that ``runtime.apply_calibrator`` evaluates — no pickled scikit-learn objects in the model:

- ``isotonic``: a monotone step-and-ramp fit (flexible; needs many rows, can overfit few);
- ``sigmoid`` (Platt): ``1 / (1 + exp(-(a·m + b)))`` (two parameters; fixes a global over- or
  under-confidence, cannot bend).

**Choice.** Fitting a calibrator and scoring it on the same rows would favour the more flexible
isotonic every time. So the validation slice is cut into K stratified folds; each candidate is fitted
on K−1 folds and predicts the remaining one, giving out-of-fold probabilities for every validation row.
The candidate with the lowest out-of-fold Brier score (a proper scoring rule: it rewards calibration
and sharpness together) wins; ECE and log loss are recorded beside it. The booster's own
probabilities compete too ("uncalibrated": nothing is fitted, so no cross-fitting is needed): on a
small validation slice a fitted calibrator can be worse than none, and is then not used. The winner
is then refitted on the whole validation slice. The out-of-fold probabilities of the winner are what the validation
metrics are computed on, so they are not judged on rows the calibrator was fitted on either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from claims_platform.models import runtime
from claims_platform.training.metrics import expected_calibration_error

METHODS = ("isotonic", "sigmoid")


def fit_isotonic(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Isotonic regression of ``y`` on ``margin`` as JSON: its interpolation knots ``x`` and ``y``."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(margin, float), np.asarray(y, float))
    return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


def fit_sigmoid(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Platt scaling: an unpenalised logistic regression of ``y`` on ``margin`` as JSON ``a``, ``b``."""
    logistic = LogisticRegression(penalty=None, solver="lbfgs", max_iter=1000)
    logistic.fit(np.asarray(margin, float).reshape(-1, 1), np.asarray(y, int))
    return {"method": "sigmoid", "a": float(logistic.coef_[0, 0]), "b": float(logistic.intercept_[0])}


FITTERS = {"isotonic": fit_isotonic, "sigmoid": fit_sigmoid}
# The booster's own probability, sigmoid(margin), in the calibrator's JSON form.
UNCALIBRATED = {"method": "sigmoid", "a": 1.0, "b": 0.0}


@dataclass(frozen=True)
class CalibrationChoice:
    """The chosen calibrator (fitted on all validation rows) and the evidence for the choice."""

    calibrator: dict[str, Any]
    method: str
    out_of_fold: np.ndarray  # the chosen method's cross-fitted probabilities, validation row order
    report: dict[str, dict[str, float]]  # method -> out-of-fold brier / ece / log_loss, plus "uncalibrated"


def choose_calibrator(margin: Any, y: Any, *, folds: int = 5, seed: int = 0) -> CalibrationChoice:
    """Cross-fit each method on the validation margins, keep the lowest out-of-fold Brier, refit it on all."""
    margin = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out_of_fold = {method: np.empty_like(margin) for method in METHODS}
    for fit_rows, predict_rows in splitter.split(margin.reshape(-1, 1), y):
        for method in METHODS:
            calibrator = FITTERS[method](margin[fit_rows], y[fit_rows])
            out_of_fold[method][predict_rows] = runtime.apply_calibrator(calibrator, margin[predict_rows])

    def scores(p: np.ndarray) -> dict[str, float]:
        clipped = np.clip(p, 1e-15, 1 - 1e-15)
        log_loss = -np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
        return {
            "brier": float(np.mean((p - y) ** 2)),
            "ece": expected_calibration_error(y, p),
            "log_loss": float(log_loss),
        }

    report = {method: scores(out_of_fold[method]) for method in METHODS}
    # The booster's own probabilities (nothing fitted, so nothing to cross-fit): a candidate too, so
    # calibration is never chosen when it would make the probabilities worse.
    raw = runtime.apply_calibrator(UNCALIBRATED, margin)
    report["uncalibrated"] = scores(raw)
    best = min((*METHODS, "uncalibrated"), key=lambda method: (report[method]["brier"], report[method]["ece"]))
    if best == "uncalibrated":
        return CalibrationChoice(calibrator=dict(UNCALIBRATED), method=best, out_of_fold=raw, report=report)
    return CalibrationChoice(
        calibrator=FITTERS[best](margin, y), method=best, out_of_fold=out_of_fold[best], report=report
    )
