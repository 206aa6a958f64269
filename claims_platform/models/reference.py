"""A model's drift reference: the sample of its holdout, with its predicted probabilities, that ships with
every registered version and that the daily drift tests compare each day with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claims_platform.core import schema
from claims_platform.training.runtime import PROBABILITY_COLUMN

PREDICTION_COLUMN = PROBABILITY_COLUMN  # the reference's (and a scored day's) predicted probability
REFERENCE_ROWS = 3_000  # rows a reference keeps: enough for every test, small enough to ship with a model


def reference_sample(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``size`` rows (all when fewer), in the original order: reproducible for a model."""
    if len(rows) <= size:
        return rows.reset_index(drop=True)
    picked = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    return rows.iloc[picked].reset_index(drop=True)


def reference_drawn_from(
    rows: pd.DataFrame, probability: np.ndarray, size: int = REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """A model's drift reference: a seeded sample of ``rows``' feature columns with its predicted probability.

    No ids, dates or outcomes: only what drift is measured on.
    """
    features = [c for c in schema.FEATURES if c in rows.columns]
    frame = (
        rows[features]
        .reset_index(drop=True)
        .assign(**{PREDICTION_COLUMN: np.asarray(probability, dtype="float64")})
    )
    return reference_sample(frame, size, seed)
