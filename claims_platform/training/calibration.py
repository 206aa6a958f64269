"""Probability calibration of the booster's margins: chosen by cross-fitted log loss, never 0 or 1.

Every candidate maps the booster's raw margin (log-odds) to a probability and is stored as plain JSON
that ``runtime.apply_calibrator`` evaluates — no pickled scikit-learn objects in the model:

- ``isotonic``: a monotone step-and-ramp fit, SMOOTHED: each step's claim rate is shrunk toward the
  sigmoid fit by ``SMOOTHING_ROWS`` pseudo-rows, so a step with no claim is not a probability of 0
  (nor one of only claims a probability of 1), and a small step borrows from its neighbourhood. Plain
  isotonic regression (``y_min=0``) gave 28% of a small export's applicants a probability of exactly
  0: nobody has zero risk, and a reserve that sums zeros under-counts;
- ``sigmoid`` (Platt): ``1 / (1 + exp(-(a·m + b)))`` (two parameters; fixes a global over- or
  under-confidence, cannot bend);
- ``beta`` (Kull et al. 2017): ``logit p = a·ln q − b·ln(1 − q) + c`` with ``q = sigmoid(m)``
  (three parameters; bends differently at the two ends), kept only when monotone (``a, b ≥ 0``);
- ``uncalibrated``: the booster's own ``sigmoid(m)`` (nothing fitted).

None reaches 0 or 1 (a logistic is strictly inside; the smoothed steps are between a claim rate and a
logistic).

**Choice.** The validation slice is cut into K stratified folds; each fitted candidate is fitted on K−1
folds and predicts the remaining one, giving out-of-fold probabilities for every validation row. The
lowest out-of-fold **log loss** wins: a proper scoring rule that, unlike Brier, punishes false
certainty without bound — a probability near 0 for a row that claims costs much more than one near
1%. The smoothed isotonic fit is kept unless another beats it beyond noise (two standard errors of
the paired per-row difference): a two- or three-parameter curve can equal it on the whole and still
miss the low tail's shape, which is the reserve's (:func:`_least_log_loss`). The winner is refitted
on the whole validation slice; its out-of-fold probabilities are what the validation metrics are
computed on.

**Deployed on more rows.** That refit is what the holdout judges (the quality gate, the champion
decision). The model then REGISTERED carries the same method refitted on validation AND holdout
(:func:`deployed_calibration`): the holdout month is the most recent labelled data, and the low tail
of the probabilities — the accepted applicants, who make up the reserve — is only as well calibrated
as the claims it is fitted on. Measured on 12 simulated models (6 worlds, 3 and 6 labelled months,
four scored months each): the accepted applicants' actual/expected claims was 1.011 on average with
a root-mean-square deviation of 0.047 fitted on validation alone, 0.991 and 0.026 on validation and
holdout (sigmoid and beta: 0.93–0.95, too high in the low tail; uncalibrated: 1.08, too low).
The decision judges a candidate with the calibrator it had before seeing the holdout
(``evaluated_with`` in its calibration record), so no candidate is judged on rows it was fitted on.

**Uncertainty.** A fitted calibration is known only to within the noise of the claims it was fitted
on. The deployed calibrator records ``level_sd``: the relative standard error of its level among the
applicants the policy accepts, ``1/sqrt(claims among them in the calibration rows)``. The reserve
forecast adds it to the Bernoulli noise (:mod:`claims_platform.scoring.reserve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from claims_platform.training import runtime
from claims_platform.training.metrics import expected_calibration_error

# A smoothed isotonic step's claim rate is (claims + SMOOTHING_ROWS·q) / (rows + SMOOTHING_ROWS), q the
# sigmoid fit's mean over the step: a step of 50 rows moves halfway towards its own rate.
SMOOTHING_ROWS = 50.0


def _logistic(features: np.ndarray, y: np.ndarray) -> LogisticRegression:
    # Effectively unpenalised (a tiny L2 keeps separable small samples finite), deterministic lbfgs.
    return LogisticRegression(C=1e6, solver="lbfgs", max_iter=2000).fit(features, np.asarray(y, int))


def fit_sigmoid(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Platt scaling: a logistic regression of ``y`` on ``margin`` as JSON ``a``, ``b``."""
    logistic = _logistic(np.asarray(margin, float).reshape(-1, 1), y)
    return {"method": "sigmoid", "a": float(logistic.coef_[0, 0]), "b": float(logistic.intercept_[0])}


def fit_beta(margin: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
    """Beta calibration as JSON ``a``, ``b``, ``c``; None when the fit is not monotone (a or b negative)."""
    margin = np.asarray(margin, float)
    log_q, log_not_q = -np.logaddexp(0.0, -margin), -np.logaddexp(0.0, margin)
    logistic = _logistic(np.column_stack([log_q, -log_not_q]), y)
    a, b = (float(v) for v in logistic.coef_[0])
    if a < 0 or b < 0:
        return None
    return {"method": "beta", "a": a, "b": b, "c": float(logistic.intercept_[0])}


def fit_isotonic(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Smoothed isotonic regression of ``y`` on ``margin`` as JSON: its interpolation knots ``x`` and ``y``."""
    margin, y = np.asarray(margin, float), np.asarray(y, float)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(margin, y)
    prior = runtime.apply_calibrator(fit_sigmoid(margin, y), margin)
    step = iso.predict(margin)
    knots_x, knots_y = iso.X_thresholds_, iso.y_thresholds_.astype(float)
    levels, which = np.unique(step, return_inverse=True)
    rows = np.bincount(which).astype(float)
    claims = np.bincount(which, weights=y)
    prior_mean = np.bincount(which, weights=prior) / rows
    smoothed = (claims + SMOOTHING_ROWS * prior_mean) / (rows + SMOOTHING_ROWS)
    # Each knot takes its step's smoothed rate; the steps stay in order.
    knot_steps = np.searchsorted(levels, knots_y).clip(max=len(levels) - 1)
    values = np.maximum.accumulate(smoothed[knot_steps])
    return {"method": "isotonic", "x": knots_x.tolist(), "y": values.tolist()}


FITTERS = {"isotonic": fit_isotonic, "sigmoid": fit_sigmoid, "beta": fit_beta}
METHODS = tuple(FITTERS)
# The booster's own probability, sigmoid(margin), in the calibrator's JSON form.
UNCALIBRATED = {"method": "sigmoid", "a": 1.0, "b": 0.0}


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(_row_log_loss(np.asarray(y), np.asarray(p)).mean())


def fit(method: str, margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The calibrator ``method`` fitted on these rows (``uncalibrated``: nothing fitted)."""
    if method == "uncalibrated":
        return dict(UNCALIBRATED)
    fitted = FITTERS[method](margin, y)
    if fitted is None:  # beta not monotone on these rows: its two-parameter special case
        fitted = fit_sigmoid(margin, y)
    return fitted


@dataclass(frozen=True)
class CalibrationChoice:
    """The chosen calibrator (fitted on all validation rows) and the evidence for the choice."""

    calibrator: dict[str, Any]
    method: str
    out_of_fold: np.ndarray  # the chosen method's cross-fitted probabilities, validation row order
    report: dict[str, dict[str, float]]  # method -> out-of-fold log_loss / brier / ece, plus "uncalibrated"


def choose_calibrator(margin: Any, y: Any, *, folds: int = 5, seed: int = 0) -> CalibrationChoice:
    """Cross-fit each method on the validation margins, keep the lowest out-of-fold log loss, refit it on all."""
    margin = np.asarray(margin, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out_of_fold = {method: np.empty_like(margin) for method in METHODS}
    available = set(METHODS)
    for fit_rows, predict_rows in splitter.split(margin.reshape(-1, 1), y):
        for method in METHODS:
            calibrator = FITTERS[method](margin[fit_rows], y[fit_rows])
            if calibrator is None:
                available.discard(method)
                continue
            out_of_fold[method][predict_rows] = runtime.apply_calibrator(calibrator, margin[predict_rows])

    def scores(p: np.ndarray) -> dict[str, float]:
        return {
            "log_loss": log_loss(y, p),
            "brier": float(np.mean((p - y) ** 2)),
            "ece": expected_calibration_error(y, p),
        }

    report = {method: scores(out_of_fold[method]) for method in METHODS if method in available}
    # The booster's own probabilities (nothing fitted, so nothing to cross-fit): a candidate too, so
    # calibration is never chosen when it would make the probabilities worse.
    out_of_fold["uncalibrated"] = runtime.apply_calibrator(UNCALIBRATED, margin)
    report["uncalibrated"] = scores(out_of_fold["uncalibrated"])
    best = _least_log_loss(y, {method: out_of_fold[method] for method in report})
    report[best]["chosen"] = 1.0
    calibrator = dict(UNCALIBRATED) if best == "uncalibrated" else fit(best, margin, y)
    return CalibrationChoice(calibrator=calibrator, method=best, out_of_fold=out_of_fold[best], report=report)


def _least_log_loss(y: np.ndarray, out_of_fold: dict[str, np.ndarray]) -> str:
    """The method of least out-of-fold log loss, the smoothed isotonic unless another beats it BEYOND NOISE.

    A parametric curve (sigmoid, beta) can match the isotonic fit's log loss on the whole while missing
    the shape of the low tail, where the accepted applicants are (measured: 5–10% too many claims
    expected there); the isotonic fit follows that shape. So it is kept unless another method's
    per-row log loss is lower by more than two standard errors of the paired difference.
    """
    losses = {method: _row_log_loss(y, p) for method, p in out_of_fold.items()}
    best = min(losses, key=lambda method: losses[method].mean())
    if best == "isotonic" or "isotonic" not in losses:
        return best
    gain = losses["isotonic"] - losses[best]
    return best if gain.mean() > 2 * gain.std(ddof=1) / math.sqrt(len(gain)) else "isotonic"


def _row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))


def level_sd(y: np.ndarray, p: np.ndarray, screen: float) -> float:
    """Relative standard error of a calibration's level among the applicants it accepts (``p < screen``):
    one over the square root of their claims among the rows it was fitted on (1.0 with none)."""
    claims = float(np.asarray(y)[np.asarray(p) < screen].sum())
    return 1.0 / math.sqrt(claims) if claims > 0 else 1.0


def deployed_calibration(
    method: str,
    evaluated_with: dict[str, Any],
    validation: tuple[np.ndarray, np.ndarray],
    holdout: tuple[np.ndarray, np.ndarray],
    holdout_month: str,
    screen: float,
) -> dict[str, Any]:
    """The calibrator a model is registered with: ``method`` refitted on the validation AND holdout margins,
    with its ``level_sd`` and what it was fitted on (the holdout's month: a decision judging a model on that
    month uses ``evaluated_with``, the calibrator fitted without it)."""
    margin = np.concatenate([validation[0], holdout[0]])
    y = np.concatenate([validation[1], holdout[1]]).astype(np.int64)
    deployed = fit(method, margin, y)
    return {
        **deployed,
        "level_sd": level_sd(y, runtime.apply_calibrator(deployed, margin), screen),
        "fitted_on": {
            "validation_rows": int(len(validation[1])),
            "holdout_rows": int(len(holdout[1])),
            "holdout_month": holdout_month,
        },
        "evaluated_with": evaluated_with,
    }
