"""How much the model uses each column: its share of the booster's total gain (pure).

Gain is what the trees' splits on a feature reduced the training loss by, summed over the model, so
shares add up to 1 over the model's features. It is the importance the drift rules weigh a drifted
column by (:mod:`claims_platform.monitoring.relevance`): a column the model barely splits on can
move a long way before any decision moves.

A column the drift test watches but the model does not use as such carries the share of the column it
is derived from: ``income level`` is ``income`` cut into bins (the model sees ``income`` itself), so
the two drift together and count ONCE towards the share of the model a day's drift touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Columns derived from another one, which the drift test watches and the model does not use.
DERIVED_FROM: dict[str, str] = {"income level": "income"}


def gain_shares(booster: Any, features: Sequence[str]) -> dict[str, float]:
    """Each model feature's share of the booster's total gain (features in the booster's order)."""
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype="float64")
    if len(gain) != len(features):
        raise ValueError(f"the booster has {len(gain)} features, the spec names {len(features)}")
    total = float(gain.sum())
    if total <= 0:
        return {name: 0.0 for name in features}
    return {name: float(g / total) for name, g in zip(features, gain, strict=True)}


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
