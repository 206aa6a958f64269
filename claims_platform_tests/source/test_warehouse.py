"""The warehouse on SQLite and PostgreSQL: round trip, idempotency, loaded days, outcome cutoff."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform import schema
from claims_platform.source.generator import World, simulate_day
from claims_platform.source.scenarios import count_defects, get_scenario
from claims_platform.source.warehouse import Warehouse

DAY = date(2025, 1, 10)


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_seed()


@pytest.fixture
def warehouse(warehouse_url: str):
    warehouse = Warehouse(warehouse_url)
    warehouse.create_tables()
    yield warehouse
    warehouse.dispose()


def test_round_trip_is_exact(warehouse: Warehouse, world: World) -> None:
    applications, outcomes = simulate_day(world, DAY)
    assert warehouse.write_day(DAY, applications, outcomes) == len(applications)
    pd.testing.assert_frame_equal(warehouse.read_applications(DAY), applications, check_exact=True)
    known = warehouse.read_outcomes(datetime(2025, 12, 1), first_day=DAY, last_day=DAY)
    pd.testing.assert_frame_equal(known, outcomes, check_exact=True)


def test_bad_rows_round_trip(warehouse: Warehouse, world: World) -> None:
    """NULLs, ±inf, unknown levels, out-of-range values and duplicate ids are stored as sent."""
    applications, outcomes = simulate_day(world, DAY, get_scenario("data_quality", DAY))
    assert np.isinf(applications["insurance_hist_1"]).any() and applications["age"].isna().any()
    warehouse.write_day(DAY, applications, outcomes)
    back = warehouse.read_applications(DAY)
    pd.testing.assert_frame_equal(back, applications, check_exact=True)
    assert count_defects(back) == count_defects(applications)
    assert not back[schema.APPLICATION_ID].is_unique


def test_write_day_is_idempotent_and_replaces_the_day(warehouse: Warehouse, world: World) -> None:
    applications, outcomes = simulate_day(world, DAY)
    other_day = DAY + timedelta(days=1)
    warehouse.write_day(other_day, *simulate_day(world, other_day))
    warehouse.write_day(DAY, applications, outcomes)
    warehouse.write_day(DAY, applications, outcomes)
    assert len(warehouse.read_applications(DAY)) == len(applications)
    assert len(warehouse.read_outcomes(date(2026, 1, 1), first_day=DAY, last_day=DAY)) == len(outcomes)
    # A smaller re-delivery replaces the day; its dropped rows' outcomes go too; other days stay.
    warehouse.write_day(DAY, applications.iloc[:100], outcomes.iloc[:100])
    pd.testing.assert_frame_equal(warehouse.read_applications(DAY), applications.iloc[:100])
    assert len(warehouse.read_outcomes(date(2026, 1, 1), first_day=DAY, last_day=DAY)) == 100
    assert len(warehouse.read_outcomes(date(2026, 1, 1))) == 100 + len(warehouse.read_applications(other_day))
    assert warehouse.days_present() == [DAY, other_day]
    between = warehouse.read_applications_between(DAY, other_day)
    assert len(between) == 100 + len(warehouse.read_applications(other_day))
    assert between[schema.APPLICATION_DATE].is_monotonic_increasing


def test_write_day_rejects_rows_of_another_day(warehouse: Warehouse, world: World) -> None:
    applications, outcomes = simulate_day(world, DAY)
    with pytest.raises(ValueError, match="rows dated"):
        warehouse.write_day(DAY + timedelta(days=1), applications, outcomes)
    with pytest.raises(ValueError, match="missing columns \\['age'\\]"):
        warehouse.write_day(DAY, applications.drop(columns="age"), outcomes)


def test_loaded_days_track_late_arrivals(warehouse: Warehouse, world: World) -> None:
    first, second = DAY, DAY + timedelta(days=1)
    on_time = datetime(2025, 1, 12, 1, 0)
    warehouse.write_day(first, *simulate_day(world, first), loaded_at=on_time)
    warehouse.write_day(second, *simulate_day(world, second), loaded_at=on_time)
    loaded = warehouse.loaded_days(DAY - timedelta(days=5), DAY + timedelta(days=5))
    assert list(loaded.columns) == ["application_date", "rows", "last_loaded_at"]
    assert list(loaded["application_date"]) == [first, second]
    assert list(loaded["rows"]) == [len(warehouse.read_applications(d)) for d in (first, second)]
    assert (loaded["last_loaded_at"] == pd.Timestamp(on_time)).all()
    late = datetime(2025, 1, 20, 9, 30)
    warehouse.write_day(first, *simulate_day(world, first), loaded_at=late)
    loaded = warehouse.loaded_days(first, second).set_index("application_date")
    assert loaded.loc[first, "last_loaded_at"] == pd.Timestamp(late)
    assert loaded.loc[second, "last_loaded_at"] == pd.Timestamp(on_time)
    assert warehouse.loaded_days(date(2024, 1, 1), date(2024, 1, 31)).empty


def test_outcomes_respect_the_cutoff(warehouse: Warehouse, world: World) -> None:
    days = [DAY + timedelta(days=i) for i in range(3)]
    for day in days:
        warehouse.write_day(day, *simulate_day(world, day, label_lag_days=30))
    known = DAY + timedelta(days=30)  # known date of DAY's outcomes

    def n_known(cutoff: datetime | date) -> int:
        return len(warehouse.read_outcomes(cutoff))

    per_day = [len(warehouse.read_applications(d)) for d in days]
    assert n_known(known) == 0  # midnight of the known date: not strictly after it yet
    assert n_known(datetime.combine(known, datetime.min.time())) == 0
    assert n_known(datetime.combine(known, datetime.min.time()) + timedelta(microseconds=1)) == per_day[0]
    assert n_known(known + timedelta(days=2)) == per_day[0] + per_day[1]
    outcomes = warehouse.read_outcomes(known + timedelta(days=10))
    assert (outcomes[schema.KNOWN_DATE] < known + timedelta(days=10)).all()
    assert len(outcomes) == sum(per_day)
    some = outcomes[schema.APPLICATION_ID].iloc[:5].tolist()
    picked = warehouse.read_outcomes(known + timedelta(days=10), application_ids=some)
    assert picked[schema.APPLICATION_ID].tolist() == sorted(some)
    # A cutoff one day after DAY's known date: DAY's outcomes are known, the next day's are not.
    second_day_id = warehouse.read_applications(days[1])[schema.APPLICATION_ID].iloc[0]
    early = warehouse.read_outcomes(known + timedelta(days=1), application_ids=[some[0], second_day_id])
    assert early[schema.APPLICATION_ID].tolist() == [some[0]]
    ranged = warehouse.read_outcomes(known + timedelta(days=10), first_day=days[1], last_day=days[2])
    assert len(ranged) == per_day[1] + per_day[2]
