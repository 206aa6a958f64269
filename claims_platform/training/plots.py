"""Small PNG plots of a model (ROC, reliability, feature importance) as bytes.

Small (5 x 4 in at 80 dpi, a few tens of kB) so the same bytes can be embedded in Dagster markdown
metadata as base64 and logged to MLflow as artifacts. matplotlib is imported inside the functions,
with the non-interactive Agg backend, so importing this module costs nothing and never needs a display.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from claims_platform.training.metrics import ECE_BINS, calibration_bins

FIGSIZE = (5.0, 4.0)
DPI = 80


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=FIGSIZE, dpi=DPI)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _curves(p: Mapping[str, Any] | Any) -> dict[str, np.ndarray]:
    """One curve per named model; a bare array is the single curve ``"model"``."""
    if isinstance(p, Mapping):
        return {name: np.asarray(values, float) for name, values in p.items()}
    return {"model": np.asarray(p, float)}


def roc_curve_png(y_true: Any, p: Mapping[str, Any] | Any, title: str = "ROC curve (holdout)") -> bytes:
    """ROC curve(s) with AUC in the legend; ``p`` is one array or ``{name: array}`` for several models."""
    plt, fig, ax = _figure()
    y = np.asarray(y_true, int)
    for name, values in _curves(p).items():
        fpr, tpr, _ = roc_curve(y, values)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, values):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return _png(plt, fig)


def calibration_png(
    y_true: Any, p: Mapping[str, Any] | Any, n_bins: int = ECE_BINS, title: str = "Reliability (holdout)"
) -> bytes:
    """Reliability curve(s) on the equal-mass bins the ECE uses: mean probability vs claim rate."""
    plt, fig, ax = _figure()
    top = 0.0
    for name, values in _curves(p).items():
        bins = calibration_bins(y_true, values, n_bins)
        ax.plot(bins["mean_probability"], bins["claim_rate"], marker="o", label=name)
        top = max(top, bins["mean_probability"].max(), bins["claim_rate"].max())
    top = min(1.0, top * 1.05 + 0.01)
    ax.plot([0, top], [0, top], linestyle=":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed claim rate", title=title)
    ax.legend(loc="upper left", fontsize="small")
    return _png(plt, fig)


def feature_importance_png(
    shares: Mapping[str, float], top: int = 15, title: str = "Feature importance (mean |TreeSHAP|, holdout)"
) -> bytes:
    """Horizontal bars of the ``top`` features by their share of the model's importance."""
    plt, fig, ax = _figure()
    names = np.asarray(list(shares))
    values = np.asarray([shares[name] for name in names], float)
    order = np.argsort(values)[::-1][:top][::-1]
    ax.barh(names[order], values[order])
    ax.set(xlabel="share of the model's importance", title=title)
    ax.tick_params(axis="y", labelsize=7)
    return _png(plt, fig)
