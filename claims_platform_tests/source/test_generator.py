"""The simulator: deterministic, one fixed concept, every value inside the schema."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema, settings
from claims_platform.source.generator import (
    CLAIM_WEIGHT,
    FLIP_Y,
    World,
    bmi,
    income_level,
    simulate_day,
    simulate_days,
)

DAY = date(2025, 3, 14)


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_seed(settings.DEFAULT_WORLD_SEED)


@pytest.fixture(scope="module")
def month(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_days(world, date(2025, 1, 1), date(2025, 1, 30))


def _digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes() + str(frame.dtypes.to_dict()).encode()).hexdigest()


def test_same_seed_and_day_give_identical_rows(world: World) -> None:
    applications, outcomes = simulate_day(world, DAY)
    # A fresh world from the same seed, after simulating other days first: the day must not care.
    other = World.from_seed(settings.DEFAULT_WORLD_SEED)
    simulate_days(other, DAY - timedelta(days=3), DAY - timedelta(days=1))
    again, again_outcomes = simulate_day(other, DAY)
    pd.testing.assert_frame_equal(applications, again, check_exact=True)
    pd.testing.assert_frame_equal(outcomes, again_outcomes, check_exact=True)
    assert _digest(applications) == _digest(again)


def test_days_and_seeds_differ(world: World) -> None:
    today, _ = simulate_day(world, DAY)
    tomorrow, _ = simulate_day(world, DAY + timedelta(days=1))
    other_world, _ = simulate_day(World.from_seed(1), DAY)
    assert _digest(today) != _digest(tomorrow)
    assert not np.allclose(
        today["financial_hist_1"].to_numpy()[:100], tomorrow["financial_hist_1"].to_numpy()[:100]
    )
    assert not np.allclose(
        today["financial_hist_1"].to_numpy()[:100], other_world["financial_hist_1"].to_numpy()[:100]
    )


def test_layout_ids_dates_and_dtypes(world: World) -> None:
    applications, outcomes = simulate_day(world, DAY, label_lag_days=7)
    assert tuple(applications.columns) == schema.APPLICATION_COLUMNS
    assert tuple(outcomes.columns) == schema.OUTCOME_COLUMNS
    assert applications.dtypes[list(schema.FEATURES)].astype(str).to_dict() == schema.FEATURE_DTYPES
    ids = applications[schema.APPLICATION_ID]
    assert ids.is_unique and ids.is_monotonic_increasing
    assert ids.iloc[0] == "A20250314-00001"
    assert (applications[schema.APPLICATION_DATE] == DAY).all()
    assert list(outcomes[schema.APPLICATION_ID]) == list(ids)
    assert (outcomes[schema.KNOWN_DATE] == DAY + timedelta(days=7)).all()
    assert set(outcomes[schema.CLAIM_STATUS].unique()) <= {0, 1}
    # Poisson(1,200): 6 standard deviations is about ±210.
    assert abs(len(applications) - settings.DAILY_VOLUME) < 210


def test_claim_rate_over_a_month(month: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """15% claimants after flip_y's 50/50 redraws, over 30 days: within 15% +- 1.5 points."""
    _, outcomes = month
    expected = CLAIM_WEIGHT * (1 - FLIP_Y / 2) + (1 - CLAIM_WEIGHT) * FLIP_Y / 2
    assert abs(expected - 0.15) < 1e-12
    rate = outcomes[schema.CLAIM_STATUS].mean()
    assert abs(rate - 0.15) <= 0.015
    tolerance = 3 * np.sqrt(expected * (1 - expected) / len(outcomes))  # ~0.6 points for 30 days
    assert abs(rate - expected) <= tolerance


def test_every_column_inside_the_schema(month: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    applications, _ = month
    for column in schema.COLUMNS:
        values = applications[column.name]
        assert values.isna().any() == column.nullable, column.name
        present = values.dropna()
        if column.levels is not None:
            assert set(present.unique()) == set(column.levels), column.name
        if column.low is not None:
            assert present.min() >= column.low and present.max() <= column.high, column.name
            assert np.isfinite(present.astype(float)).all(), column.name


def test_derived_columns_are_consistent(month: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    applications, _ = month
    assert (applications["bmi"] == bmi(applications["weight_kg"], applications["height_cm"])).all()
    assert (applications["income level"] == income_level(applications["income"])).all()
    assert list(income_level(np.array([0, 49_999, 50_000, 249_999, 250_000]))) == [0, 0, 1, 4, 4]


def test_scaled_columns_use_their_whole_range(month: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """The fixed maps put the 0.1%/99.9% quantiles on the range ends: a month touches both."""
    applications, _ = month
    for name, (low, high) in schema.SCALED_NUMERIC.items():
        values = applications[name]
        assert values.min() == low and values.max() == high, name
        assert low + 0.3 * (high - low) < values.median() < low + 0.7 * (high - low), name


def test_class_conditional_columns(month: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    applications, outcomes = month
    claimed = outcomes[schema.CLAIM_STATUS].to_numpy() == 1
    rate = applications["prev_claim_rejected"].to_numpy()
    assert rate[claimed].mean() > rate[~claimed].mean() + 0.04
    previous = applications["previous_claim_rate"].to_numpy()
    assert previous[claimed].mean() > previous[~claimed].mean() + 0.5
    # Unconditional columns follow their declared mix.
    assert abs(applications["uk_residence"].mean() - 0.76) < 0.01
    assert abs(applications["family_history_3"].isna().mean() - 0.81) < 0.01
    assert abs((applications["marital_status"] == "D").mean() - 0.25) < 0.01
