"""How good a model's calibrated claim probabilities are: ranking, calibration, and the decision.

**The decision.** Models carry no threshold of their own: accept / refer / decline is the ONE
:class:`~claims_platform.core.policy.DecisionPolicy`, the same for scoring and for promotion. A
model's kappa is therefore measured at the policy's SCREEN, ``p >= refer_at`` (referred or declined,
i.e. not accepted automatically) against the claim outcome: call
``evaluate(y, p, threshold=DecisionPolicy().refer_at)``. Every model is judged as it would decide,
and no threshold is fitted on any data, so none can flatter a candidate.

**Expected calibration error** uses 10 EQUAL-MASS bins (deciles of ``p``): with a 15% claim rate most
probabilities sit below 0.2, where equal-width bins would lump almost every row into one or two
bins and hide miscalibration exactly where the volume is. Each equal-mass bin holds the same number
of rows, so every bin's gap is measured with the same precision. The reliability plot uses the same
bins, so the number and the picture agree. Equal probabilities never straddle a bin edge (see
:func:`calibration_bins`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ECE_BINS = 10
KAPPA_CONFIDENCE = 0.95
KAPPA_RESAMPLES = 2000


def kappa_from_counts(tp: Any, fp: Any, fn: Any, tn: Any) -> float | np.ndarray:
    """Cohen's kappa of a 2x2 table given as counts or expected counts; element-wise on arrays.

    With flagged totals ``f = tp + fp``, ``u = fn + tn`` and outcome totals ``c = tp + fn``,
    ``h = fp + tn``, kappa = (po - pe) / (1 - pe) simplifies to ``2(tp·tn - fp·fn) / (f·h + u·c)``.
    The denominator is n²(1 - pe): zero exactly when the expected agreement is 1 (every row a true
    negative, or every row a true positive, or no rows), where kappa is 0.0 by convention.
    """
    tp, fp, fn, tn = (np.asarray(x, dtype="float64") for x in (tp, fp, fn, tn))
    numerator = 2.0 * (tp * tn - fp * fn)
    denominator = (tp + fp) * (fp + tn) + (fn + tn) * (tp + fn)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)
    return float(kappa) if kappa.ndim == 0 else kappa


def realised_kappa(y: Any, flagged: Any) -> float:
    """Cohen's kappa of outcomes ``y`` against the screen's flags, from their 2x2 table (the one kappa)."""
    y, flags = np.asarray(y, dtype=bool).ravel(), np.asarray(flagged, dtype=bool).ravel()
    return float(
        kappa_from_counts((y & flags).sum(), (~y & flags).sum(), (y & ~flags).sum(), (~y & ~flags).sum())
    )


def kappa_interval(
    y: Any,
    flagged: Any,
    *,
    confidence: float = KAPPA_CONFIDENCE,
    resamples: int = KAPPA_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap percentile interval of kappa(``y``, ``flagged``): how far the rows' luck moves it.

    A row falls in one of the 2x2 table's 4 cells, so resampling rows with replacement is a multinomial
    draw over the cells: ``resamples`` replicates cost microseconds however many rows. Seeded.
    """
    y, flags = np.asarray(y, dtype=bool).ravel(), np.asarray(flagged, dtype=bool).ravel()
    cells = np.array(
        [(y & flags).sum(), (~y & flags).sum(), (y & ~flags).sum(), (~y & ~flags).sum()], dtype=np.float64
    )
    draws = np.random.default_rng(seed).multinomial(len(y), cells / cells.sum(), size=resamples)
    kappas = kappa_from_counts(*draws.T)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(kappas, tail)), float(np.quantile(kappas, 1.0 - tail))


def _arrays(y_true: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    prob = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != prob.shape:
        raise ValueError(f"{len(y)} labels but {len(prob)} probabilities")
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
        raise ValueError("probabilities must be finite and in [0, 1]")
    return y, prob


def calibration_bins(y_true: Any, p: Any, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Equal-mass bins of ``p``: ``rows``, ``mean_probability`` and ``claim_rate`` per bin, in p order.

    Bin edges are the deciles of ``p`` and equal probabilities always share a bin: an isotonic
    calibrator outputs few distinct values, and cutting a block of ties across bins would invent
    gaps (one row per bin is either 0 or 1). Heavy ties therefore give fewer, larger bins.
    """
    y, prob = _arrays(y_true, p)
    edges = np.quantile(prob, np.linspace(0, 1, n_bins + 1)[1:-1])
    bin_of_row = np.searchsorted(edges, prob, side="right")
    grouped = pd.DataFrame({"bin": bin_of_row, "p": prob, "y": y}).groupby("bin", sort=True)
    return pd.DataFrame(
        {
            "rows": grouped.size().to_numpy(),
            "mean_probability": grouped["p"].mean().to_numpy(),
            "claim_rate": grouped["y"].mean().to_numpy(),
        }
    )


def expected_calibration_error(y_true: Any, p: Any, n_bins: int = ECE_BINS) -> float:
    """Σ over equal-mass bins of (bin share of rows) × |claim rate − mean probability|."""
    bins = calibration_bins(y_true, p, n_bins)
    weights = bins["rows"] / bins["rows"].sum()
    return float((weights * (bins["claim_rate"] - bins["mean_probability"]).abs()).sum())


def evaluate(y_true: Any, p: Any, threshold: float) -> dict[str, float]:
    """Holdout metrics of calibrated probabilities ``p``, deciding ``p >= threshold`` as a claim.

    Keys: ``kappa`` (Cohen's, at the threshold) and ``kappa_low``..``kappa_high`` (its 95% bootstrap
    interval, :func:`kappa_interval`), ``roc_auc``, ``brier``, ``log_loss``, ``ece``
    (10 equal-mass bins), ``claim_rate`` (observed), ``mean_probability`` (expected claim rate),
    ``predicted_rate`` (share flagged at the threshold), ``threshold``, ``rows``; and among the rows the
    screen accepts (``p < threshold``): ``accepted_rows``, ``accepted_expected_claims`` (Σp),
    ``accepted_actual_claims``, ``accepted_claims_sd`` (the Poisson-binomial standard deviation) and
    ``accepted_actual_to_expected``.
    """
    # scikit-learn (0.7 s to import) only where a model is evaluated: not in every process that loads the
    # definitions (the code server, each run, the command line).
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y, prob = _arrays(y_true, p)
    if len(np.unique(y)) < 2:
        raise ValueError("evaluation needs both claim outcomes among the labels")
    flagged = (prob >= threshold).astype(np.int64)
    low, high = kappa_interval(y, flagged)
    accepted = flagged == 0
    expected = float(prob[accepted].sum())
    return {
        "kappa": realised_kappa(y, flagged),
        "kappa_low": low,
        "kappa_high": high,
        "roc_auc": float(roc_auc_score(y, prob)),
        "brier": float(brier_score_loss(y, prob)),
        "log_loss": float(log_loss(y, np.clip(prob, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(y, prob),
        "claim_rate": float(y.mean()),
        "mean_probability": float(prob.mean()),
        "predicted_rate": float(flagged.mean()),
        "threshold": float(threshold),
        "rows": float(len(y)),
        # The applicants the screen accepts: what the reserve sums (the quality gate's calibration band).
        "accepted_rows": float(accepted.sum()),
        "accepted_expected_claims": expected,
        "accepted_actual_claims": float(y[accepted].sum()),
        "accepted_claims_sd": float(np.sqrt(np.sum(prob[accepted] * (1 - prob[accepted])))),
        "accepted_actual_to_expected": float(y[accepted].sum()) / expected if expected > 0 else float("nan"),
    }
