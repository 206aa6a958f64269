"""Every value the seed's own generator can produce passes the data contract.

The seed built its table with scikit-learn's ``make_classification`` (DESIGN.md "Data"), rescaled seven
columns per batch with ``MinMaxScaler`` and truncated them with ``astype(int)``, binned income with
``pd.cut(bins=5, labels=False)`` and drew the categorical columns with fixed probabilities. Rows made
that way, in batches of many sizes and seeds, must all be valid: a contract that rejects some of them
drops real applicants (and, as the first version did, mostly claimants).
"""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.preprocessing import MinMaxScaler

from claims_platform.core.contract import validate_applications
from claims_platform.core.schema import (
    APPLICATION_DATE,
    APPLICATION_ID,
    CLAIM_STATUS,
    FEATURES,
    SCALED_NUMERIC,
)

# make_classification's 16 columns in the seed's order.
_LATENT = (
    "age", "height_cm", "weight_kg", "income",
    "financial_hist_1", "financial_hist_2", "financial_hist_3", "financial_hist_4",
    "credit_score_1", "credit_score_2", "credit_score_3",
    "insurance_hist_1", "insurance_hist_2", "insurance_hist_3", "insurance_hist_4", "insurance_hist_5",
)  # fmt: skip
_LETTERS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def seed_batch(rows: int, seed: int) -> pd.DataFrame:
    """One batch made by the seed's recipe (its columns, ranges, draws and dtypes)."""
    features, labels = make_classification(
        n_samples=rows, n_features=16, n_informative=7, n_redundant=4, n_repeated=3, n_classes=2,
        class_sep=1.2, flip_y=0.035, weights=[0.85, 0.15], random_state=seed,
    )  # fmt: skip
    frame = pd.DataFrame(features, columns=list(_LATENT))
    frame.insert(0, CLAIM_STATUS, labels)
    for name, (low, high) in SCALED_NUMERIC.items():
        scaled = MinMaxScaler(feature_range=(low, high)).fit_transform(frame[[name]].to_numpy())
        frame[name] = scaled.ravel().astype(int)
    rng = np.random.default_rng(seed)
    claimant = frame[CLAIM_STATUS].to_numpy() == 1

    def by_class(values, p_non, p_claim):
        return np.where(claimant, rng.choice(values, rows, p=p_claim), rng.choice(values, rows, p=p_non))

    def draw(values, p=None):
        return rng.choice(np.array(values, dtype=object), rows, p=p)

    frame["bmi"] = (frame["weight_kg"] / (frame["height_cm"] / 100) ** 2).astype(int)
    frame["gender"] = by_class([0, 1], [0.46, 0.54], [0.52, 0.48])
    frame["marital_status"] = draw(_LETTERS[:6], [0.2, 0.15, 0.1, 0.25, 0.15, 0.15])
    frame["occupation"] = draw(_LETTERS[:7])
    frame["location"] = draw(_LETTERS)
    frame["prev_claim_rejected"] = by_class([0, 1], [0.08, 0.92], [0.16, 0.84])
    for name, p in (
        ("known_health_conditions", 0.06), ("uk_residence", 0.76), ("family_history_1", 0.22),
        ("family_history_2", 0.25), ("family_history_4", 0.27), ("family_history_5", 0.31),
        ("product_var_1", 0.38), ("product_var_2", 0.55), ("product_var_4", 0.76),
    ):  # fmt: skip
        frame[name] = rng.choice([0, 1], rows, p=[p, 1 - p])
    frame["family_history_3"] = draw([0, 1, None], [0.12, 0.81, 0.07])
    frame["product_var_3"] = draw(_LETTERS[:4], [0.23, 0.28, 0.31, 0.18])
    frame["health_status"] = rng.integers(1, 5, rows)
    frame["driving_record"] = rng.integers(1, 5, rows)
    frame["previous_claim_rate"] = by_class(
        [1, 2, 3, 4, 5], [0.48, 0.29, 0.12, 0.08, 0.03], [0.12, 0.28, 0.34, 0.19, 0.07]
    )
    frame["education_level"] = rng.integers(0, 7, rows)
    frame["income level"] = pd.cut(frame["income"], bins=5, labels=False, include_lowest=True)
    frame["n_dependents"] = rng.choice([1, 2, 3, 4, 5], rows, p=[0.23, 0.32, 0.27, 0.11, 0.07])
    frame["employment_type"] = draw([0, 1, None], [0.16, 0.7, 0.14])
    return frame


def as_source_rows(batch: pd.DataFrame, first_day: date, days: int) -> pd.DataFrame:
    """The batch as the warehouse hands it over: ids, dates spread over ``days``, numbers as numbers."""
    out = batch[list(FEATURES)].copy()
    for name in ("family_history_3", "employment_type"):
        out[name] = pd.to_numeric(out[name])  # None -> NaN, as a CSV blank reads back
    day = [first_day + timedelta(days=int(i)) for i in np.arange(len(out)) * days // len(out)]
    out.insert(0, APPLICATION_DATE, day)
    out.insert(0, APPLICATION_ID, [f"seed:{i}" for i in range(len(out))])
    return out


@pytest.mark.parametrize("rows", [50, 300, 2_000, 10_000])
def test_every_row_of_the_seed_recipe_passes_the_contract(rows):
    """Batches of each size from many seeds (1889 is the seed's own random_state), validated as one read."""
    first_day = date(2025, 1, 1)
    seeds = range(40) if rows <= 300 else range(8) if rows < 10_000 else (1889, 1)
    source = pd.concat(
        [as_source_rows(seed_batch(rows, seed), first_day, 30) for seed in seeds], ignore_index=True
    )
    source[APPLICATION_ID] = [f"seed:{i}" for i in range(len(source))]
    result = validate_applications(source, first_day, first_day + timedelta(29))
    assert result.rejected.empty, (result.rule_counts, result.rejected.head(3).to_dict("records"))
    assert len(result.valid) == len(source)


def test_the_recipe_reaches_the_edges_the_old_contract_refused():
    """The values that cost the first contract 42 applicants do occur: income level 0, weight 44, age 17."""
    batches = pd.concat([seed_batch(300, seed) for seed in range(40)])
    assert batches["income level"].min() == 0 and batches["income level"].max() == 4
    assert batches["weight_kg"].min() == 44 and batches["age"].min() == 17
