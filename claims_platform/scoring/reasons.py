"""Why each decision: the features that pushed an application's probability up the most (pure, no Dagster).

The model's own runtime computes them (``Scorer.explain``: LightGBM's TreeSHAP carried through the
calibrator, see :mod:`claims_platform.training.runtime`), so a row in ``application_scores`` and the
same row through the served model carry the same reasons.

**Which rows.** Exact TreeSHAP costs about a hundred times a prediction: on a 150-tree model of 31
leaves (depth up to 15), a day of 1,261 rows took 14 ms to score and decide, 333 ms with its 233
referrals and declines explained and 1.9 s with every row explained (load 4.5 on 2 cores; the nightly
run's ratio is in ``bench/``). The decisions that must be explained are the referrals and declines, a
fifth of a day's applications, so those are explained by default (``explain: refer_and_decline``);
``all`` explains every row at its cost, ``none`` none. A row not explained has empty reason columns; the served model explains
any row it is asked to.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from claims_platform.training.runtime import REASON_CONTRIBUTION, REASON_COUNT, REASON_FEATURE, REASON_TEXT

Explain = Literal["refer_and_decline", "all", "none"]
EXPLAINED_DECISIONS: dict[str, tuple[str, ...]] = {
    "refer_and_decline": ("refer", "decline"),
    "all": ("accept", "refer", "decline"),
    "none": (),
}
REASON_COLUMNS: tuple[str, ...] = (
    *(
        column
        for i in range(1, REASON_COUNT + 1)
        for column in (REASON_FEATURE.format(i), REASON_CONTRIBUTION.format(i))
    ),
    REASON_TEXT,
)
REASON_COLUMN_DESCRIPTIONS = {
    **{
        column: text
        for i in range(1, REASON_COUNT + 1)
        for column, text in (
            (
                REASON_FEATURE.format(i),
                f"Feature that raised the claim probability the {('most', 'second most', 'third most')[i - 1]} "
                "(TreeSHAP of the model in force; empty when the row was not explained or fewer features raised it).",
            ),
            (
                REASON_CONTRIBUTION.format(i),
                f"How much reason_{i}_feature raised the calibrated claim probability (probability points, "
                "e.g. 0.21 = 21 points).",
            ),
        )
    },
    REASON_TEXT: "The reason in words: each feature, its value and contribution, e.g. "
    "'previous claim rate 5 (+0.21), credit score 1 312 (+0.08)'. Set for the decisions explained "
    "(referrals and declines by default).",
}


def reason_dtype(name: str) -> str:
    return "float64" if name.endswith("_contribution") else "object"


def no_reasons(rows: int) -> pd.DataFrame:
    """Empty reason columns for ``rows`` rows."""
    return pd.DataFrame(
        {
            c: np.full(rows, np.nan) if reason_dtype(c) == "float64" else np.full(rows, None, dtype=object)
            for c in REASON_COLUMNS
        }
    )


def decision_reasons(scorer, rows: pd.DataFrame, decisions: np.ndarray, explain: Explain) -> pd.DataFrame:
    """The reason columns of ``rows`` (same order, a fresh index): set on the rows whose decision
    ``explain`` covers, empty elsewhere and for a model whose runtime cannot explain."""
    out = no_reasons(len(rows))
    wanted = np.isin(decisions, EXPLAINED_DECISIONS[explain])
    explainer = getattr(scorer, "explain", None)
    if explainer is None or not wanted.any():
        return out
    explained = explainer(rows.iloc[np.flatnonzero(wanted)])
    positions = np.flatnonzero(wanted)
    for column in REASON_COLUMNS:
        values = out[column].to_numpy(copy=True)
        values[positions] = explained[column].to_numpy()
        out[column] = values
    return out
