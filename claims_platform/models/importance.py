"""How much the model uses each column: each feature's share of the model's importance (pure).

**The importance** is the mean absolute TreeSHAP contribution of each feature to the model's margin
(log-odds) over the candidate's out-of-time holdout (:func:`shap_importance`), as shares adding up to 1.
It is what each row's reasons are made of, summed over a month of applicants: how far the feature moves
the decisions, where gain only says how much the training loss fell on splits on it. Each candidate
records it, ships it with the registered model (artifact ``importance``), and the champion decision
shows how the ranking moved from the incumbent's (:func:`ranking_moves`). The drift rules weigh a
drifted column by it (:mod:`claims_platform.monitoring.relevance`): a column the model barely uses can
move a long way before any decision moves. A model registered before it shipped one is weighed by its
share of the booster's gain (:func:`gain_shares`).

A column the drift test watches but the model does not use as such carries the share of the column it
is derived from: ``income level`` is ``income`` cut into bins (the model sees ``income`` itself), so
the two drift together and count ONCE towards the share of the model a day's drift touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# Columns derived from another one, which the drift test watches and the model does not use.
DERIVED_FROM: dict[str, str] = {"income level": "income"}
IMPORTANCE_ARTIFACT = "importance"  # the model's importance.json (also read in loading.py)
# TreeSHAP costs rows × trees × leaves: a whole holdout month (~37,000 rows) takes minutes for a full
# model. On 2,000 seeded rows every feature's share is within 0.004 of the whole month's (measured on the
# bench world, 3 seeds) in about a second per 150 trees.
IMPORTANCE_ROWS = 2_000
SHAP_METHOD = "mean |TreeSHAP| on the holdout (log-odds)"
GAIN_METHOD = "share of the booster's gain"


def shap_importance(
    booster: Any, spec: Mapping[str, Any], frame: pd.DataFrame, rows: int = IMPORTANCE_ROWS, seed: int = 0
) -> dict[str, Any]:
    """Each feature's mean absolute TreeSHAP contribution to the margin over ``rows`` seeded rows of
    ``frame`` (all of them when fewer), and its share.

    ``{"method", "rows", "mean_abs": {feature: log-odds}, "shares": {feature: share}}``, features in the
    spec's order (LightGBM's ``pred_contrib``: exact for each row).
    """
    from claims_platform.training.runtime import prepare_features

    features = list(spec["features"])
    if len(frame) > rows:
        frame = frame.sample(n=rows, random_state=seed)
    raw = np.asarray(booster.predict(prepare_features(frame, spec), pred_contrib=True), dtype=np.float64)
    mean_abs = np.abs(raw[:, :-1]).mean(axis=0) if len(raw) else np.zeros(len(features))
    return {
        "method": SHAP_METHOD,
        "rows": len(frame),
        "mean_abs": {name: float(v) for name, v in zip(features, mean_abs, strict=True)},
        "shares": _shares(features, mean_abs),
    }


def _shares(features: Sequence[str], values: np.ndarray) -> dict[str, float]:
    total = float(values.sum())
    if total <= 0:
        return {name: 0.0 for name in features}
    return {name: float(v / total) for name, v in zip(features, values, strict=True)}


def ranking_moves(
    candidate: Mapping[str, float], incumbent: Mapping[str, float], top: int = 10
) -> list[dict]:
    """The candidate's ``top`` features by share, each with its rank and the incumbent's (None where the
    incumbent did not use it) and how many places it moved (+ is up)."""
    new_rank = _ranks(candidate)
    old_rank = _ranks(incumbent)
    moves = []
    for feature in sorted(new_rank, key=new_rank.get)[:top]:
        old = old_rank.get(feature)
        moves.append(
            {
                "feature": feature,
                "rank": new_rank[feature],
                "share": round(float(candidate[feature]), 5),
                "incumbent_rank": old,
                "incumbent_share": round(float(incumbent[feature]), 5) if feature in incumbent else None,
                "moved": None if old is None else old - new_rank[feature],
            }
        )
    return moves


def _ranks(shares: Mapping[str, float]) -> dict[str, int]:
    ordered = sorted(shares, key=lambda name: (-shares[name], name))
    return {name: position + 1 for position, name in enumerate(ordered)}


def gain_shares(booster: Any, features: Sequence[str]) -> dict[str, float]:
    """Each model feature's share of the booster's total gain (features in the booster's order)."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype="float64")
    if len(gain) != len(features):
        raise ValueError(f"the booster has {len(gain)} features, the spec names {len(features)}")
    return _shares(features, gain)


def source_column(column: str) -> str:
    """The column whose information ``column`` carries (itself unless derived)."""
    return DERIVED_FROM.get(column, column)


def column_shares(shares: Mapping[str, float], columns: Iterable[str]) -> dict[str, float]:
    """Each watched column's share of the model's importance: its own, or its source's when derived
    (0 for a column the model does not use)."""
    return {column: float(shares.get(source_column(column), 0.0)) for column in columns}


def touched_share(shares: Mapping[str, float], columns: Iterable[str]) -> float:
    """The share of the model's importance that ``columns`` carry together, each source counted once."""
    return float(sum(shares.get(source, 0.0) for source in {source_column(c) for c in columns}))
