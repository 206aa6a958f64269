"""The drift reference: a seeded sample of the holdout, the most balanced of its candidates."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema
from claims_platform.models.reference import (
    PREDICTION_COLUMN,
    most_balanced,
    reference_drawn_from,
    sample_distances,
)
from claims_platform.source.generator import World


@pytest.fixture(scope="module")
def holdout() -> tuple[pd.DataFrame, np.ndarray]:
    world = World.from_seed(20250101)
    rows = pd.concat(
        [world.draw_day(date(2025, 3, 1) + timedelta(days=i)).applications for i in range(8)],
        ignore_index=True,
    )
    return rows, np.random.default_rng(0).beta(1, 6, len(rows))


def _positions(frame: pd.DataFrame, reference: pd.DataFrame) -> list[int]:
    keyed = frame.reset_index().merge(reference, on=list(reference.columns), how="inner")
    return sorted(keyed["index"].tolist())


def test_the_reference_is_the_candidate_whose_worst_column_is_least_off_the_holdout(holdout):
    rows, p = holdout
    reference = reference_drawn_from(rows, p, size=1_000, seed=7, candidates=16)
    frame = reference_drawn_from(rows, p, size=len(rows))  # every row, as the candidates see them
    rng = np.random.default_rng(7)
    samples = np.sort(np.stack([rng.choice(len(frame), 1_000, replace=False) for _ in range(16)]), axis=1)
    chosen = samples.tolist().index(_positions(frame, reference))
    worst = (sample_distances(frame, samples) / np.median(sample_distances(frame, samples), axis=0)).max(
        axis=1
    )
    assert chosen == most_balanced(frame, samples)
    assert worst[chosen] == worst.min() < np.median(worst)
    # A plain seeded sample (the first candidate) is off by more than the chosen one in its worst column.
    assert worst[0] >= worst[chosen]


def test_a_column_far_off_in_one_candidate_rules_that_candidate_out():
    frame = pd.DataFrame({"age": np.arange(1_000) % 50 + 20, "gender": np.tile(["M", "F"], 500)})
    frame[PREDICTION_COLUMN] = np.linspace(0.01, 0.5, 1_000)
    balanced = np.arange(0, 1_000, 4)[None, :]  # every 4th row: every level and age in proportion
    skewed = np.arange(250)[None, :]  # the first 250: every age and both levels, the lowest probabilities
    samples = np.vstack([skewed, balanced, balanced + 2])
    distances = sample_distances(frame, samples)
    assert distances.shape == (3, 3)
    assert distances[0, 2] > 5 * distances[1, 2]  # the predicted probability of the first 250 rows is low
    assert most_balanced(frame, samples) in (1, 2)


def test_the_reference_is_reproducible_and_holds_only_what_drift_is_measured_on(holdout):
    rows, p = holdout
    first = reference_drawn_from(rows, p, size=500, seed=3)
    assert first.equals(reference_drawn_from(rows, p, size=500, seed=3))
    assert not first.equals(reference_drawn_from(rows, p, size=500, seed=4))
    assert list(first.columns) == [c for c in schema.FEATURES if c in rows.columns] + [PREDICTION_COLUMN]
    assert len(first) == 500 and not first.duplicated().any()


def test_a_holdout_no_larger_than_the_reference_is_kept_whole(holdout):
    rows, p = holdout
    small = reference_drawn_from(rows.iloc[:300], p[:300], size=500, seed=3)
    assert len(small) == 300
    assert np.array_equal(small[PREDICTION_COLUMN].to_numpy(), p[:300])
