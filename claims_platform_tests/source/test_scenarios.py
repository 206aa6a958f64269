"""Each drift scenario changes what it says, only from its date, deterministically."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema
from claims_platform.source import SCENARIO_NAMES
from claims_platform.source.generator import World, income_level, simulate_day, simulate_days
from claims_platform.source.scenarios import (
    DEFECT_TAG,
    DEFECTS,
    SCENARIOS,
    count_defects,
    defect_of,
    get_scenario,
)

FROM = date(2025, 2, 1)
BEFORE = (FROM - timedelta(days=3), FROM - timedelta(days=1))
AFTER = (FROM, FROM + timedelta(days=9))


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_seed()


@pytest.fixture(scope="module")
def base(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_days(world, *AFTER)


def _labels(applications: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    return (
        outcomes.set_index(schema.APPLICATION_ID)[schema.CLAIM_STATUS]
        .loc[applications[schema.APPLICATION_ID]]
        .to_numpy()
    )


def test_registry_and_unknown_names() -> None:
    assert tuple(SCENARIOS) == SCENARIO_NAMES
    assert get_scenario("mix_shift", FROM).from_date == FROM
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: concept_shift, data_quality"):
        get_scenario("nope")


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_days_before_the_switch_are_untouched(world: World, name: str) -> None:
    scenario = get_scenario(name, FROM)
    for shifted, plain in zip(
        simulate_days(world, *BEFORE, scenario), simulate_days(world, *BEFORE), strict=True
    ):
        pd.testing.assert_frame_equal(shifted, plain, check_exact=True)


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario_days_are_deterministic_and_change_the_day(world: World, name: str) -> None:
    scenario = get_scenario(name, FROM)
    first = simulate_day(world, FROM, scenario)
    again = simulate_day(World.from_seed(world.seed), FROM, get_scenario(name, FROM))
    plain = simulate_day(world, FROM)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not (first[0].equals(plain[0]) and first[1].equals(plain[1]))


def test_income_shift(world: World, base: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    applications, outcomes = simulate_days(world, *AFTER, get_scenario("income_shift", FROM))
    ratio = applications["income"].mean() / base[0]["income"].mean()
    assert 1.25 < ratio < 1.36  # +35%, a little less where the range's top clips it
    low, high = schema.SCALED_NUMERIC["income"]
    assert applications["income"].between(low, high).all()
    assert (applications["income level"] == income_level(applications["income"])).all()
    assert applications["income level"].mean() > base[0]["income level"].mean() + 0.5
    untouched = [c for c in applications.columns if c not in ("income", "income level")]
    pd.testing.assert_frame_equal(applications[untouched], base[0][untouched])
    pd.testing.assert_frame_equal(outcomes, base[1])


def test_mix_shift(world: World, base: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    scenario = get_scenario("mix_shift", FROM)
    applications, outcomes = simulate_days(world, *AFTER, scenario)
    share = applications["occupation"].value_counts(normalize=True).sort_index()
    assert np.allclose(share.to_numpy(), scenario.probabilities, atol=0.02)
    assert abs(base[0]["occupation"].value_counts(normalize=True)["A"] - 1 / 7) < 0.02
    untouched = [c for c in applications.columns if c != "occupation"]
    pd.testing.assert_frame_equal(applications[untouched], base[0][untouched])
    pd.testing.assert_frame_equal(outcomes, base[1])


def test_risk_shift_brings_claimants_in_place_of_non_claimants(
    world: World, base: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    scenario = get_scenario("risk_shift", FROM)
    applications, outcomes = simulate_days(world, *AFTER, scenario)
    # The same ids on the same days, one outcome each; a tenth of the rows replaced by claimants.
    pd.testing.assert_series_equal(applications[schema.APPLICATION_ID], base[0][schema.APPLICATION_ID])
    pd.testing.assert_series_equal(applications[schema.APPLICATION_DATE], base[0][schema.APPLICATION_DATE])
    new, old = _labels(applications, outcomes), _labels(*base)
    after, before = applications[list(schema.FEATURES)], base[0][list(schema.FEATURES)]
    changed = ((after != before) & ~(after.isna() & before.isna())).any(axis=1).to_numpy()
    assert abs(changed.mean() - scenario.share) < 0.005
    assert (old[changed] == 0).all() and (new[changed] == 1).all() and (new[~changed] == old[~changed]).all()
    assert new.mean() == pytest.approx(old.mean() + scenario.share, abs=0.005)
    # The replacements are applicants of the same world, valid by the schema's dtypes and ranges.
    assert (applications.dtypes == base[0].dtypes).all()
    low, high = schema.SCALED_NUMERIC["income"]
    assert applications["income"].between(low, high).all()
    assert (applications["income level"] == income_level(applications["income"])).all()


def test_a_world_draws_its_daily_volume_of_the_same_applicants(world: World) -> None:
    small, large = (
        World.from_seed(world.seed, daily_volume=50),
        World.from_seed(world.seed, daily_volume=12_000),
    )
    days = [FROM + timedelta(days=i) for i in range(20)]
    assert 40 < np.mean([len(small.draw_day(d).applications) for d in days]) < 60
    big = pd.concat([large.draw_day(d).applications for d in days[:2]])
    assert 11_500 < len(big) / 2 < 12_500
    # The same concept: the columns' distributions agree with the default world's.
    normal = pd.concat([world.draw_day(d).applications for d in days])
    assert abs(big["income"].mean() - normal["income"].mean()) < 0.03 * normal["income"].mean()
    with pytest.raises(ValueError, match="daily_volume"):
        World.from_seed(1, daily_volume=0)


def test_concept_shift_changes_labels_of_the_subgroup_only(
    world: World, base: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    scenario = get_scenario("concept_shift", FROM)
    applications, outcomes = simulate_days(world, *AFTER, scenario)
    pd.testing.assert_frame_equal(applications, base[0])  # inputs unchanged: invisible to input drift
    new, old = _labels(applications, outcomes), _labels(*base)
    in_group = applications["location"].isin(scenario.locations).to_numpy()
    assert (new[~in_group] == old[~in_group]).all()
    changed = (new[in_group] != old[in_group]).mean()
    assert changed > 0.15  # a different set of claimants…
    assert abs(new[in_group].mean() - old[in_group].mean()) < 0.02  # …at about the same claim rate


def test_data_quality_rows_are_tagged_and_really_bad(
    world: World, base: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    scenario = get_scenario("data_quality", FROM)
    applications, outcomes = simulate_days(world, *AFTER, scenario)
    counts = count_defects(applications)
    assert set(counts) == set(DEFECTS)
    n_duplicates = counts["duplicate_id"] // 2
    assert len(applications) == len(base[0]) + n_duplicates
    tagged = applications[schema.APPLICATION_ID].map(defect_of).notna()
    assert 0.02 < tagged.mean() < 0.05  # "a few percent"
    # Clean rows are exactly the base rows.
    clean = applications[~tagged.to_numpy()].reset_index(drop=True)
    base_clean = base[0][base[0][schema.APPLICATION_ID].isin(clean[schema.APPLICATION_ID])].reset_index(
        drop=True
    )
    pd.testing.assert_frame_equal(clean, base_clean, check_dtype=False)
    for defect in DEFECTS:
        rows = applications[applications[schema.APPLICATION_ID].str.endswith(DEFECT_TAG + defect)]
        assert all(_is_bad(row, defect, applications) for _, row in rows.iterrows()), defect
    # Every distinct id has exactly one outcome.
    assert outcomes[schema.APPLICATION_ID].is_unique
    assert set(outcomes[schema.APPLICATION_ID]) == set(applications[schema.APPLICATION_ID])


def _is_bad(row: pd.Series, defect: str, applications: pd.DataFrame) -> bool:
    features = row[list(schema.FEATURES)]
    if defect == "duplicate_id":
        copies = applications[applications[schema.APPLICATION_ID] == row[schema.APPLICATION_ID]]
        return len(copies) == 2 and copies.iloc[0].equals(copies.iloc[1])
    if defect == "null_required":
        return any(pd.isna(features[c.name]) and not c.nullable for c in schema.COLUMNS)
    if defect == "non_finite":
        return any(
            c.kind == "float" and not c.nullable and not np.isfinite(features[c.name]) for c in schema.COLUMNS
        )
    if defect == "unknown_level":
        return any(c.kind == "category" and features[c.name] not in c.levels for c in schema.COLUMNS)
    if defect == "out_of_range":
        return any(
            c.low is not None and pd.notna(features[c.name]) and not c.low <= features[c.name] <= c.high
            for c in schema.COLUMNS
        )
    raise AssertionError(defect)
