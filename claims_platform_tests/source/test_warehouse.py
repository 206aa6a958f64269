"""The warehouse on SQLite and PostgreSQL: round trip, idempotency, loaded days, outcome cutoff."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema
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


def _batch(
    world: World, prefix: str, days: list[date], per_day: int = 40
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``per_day`` simulated rows on each day, renamed into the batch ``prefix``."""
    parts = [simulate_day(world, day) for day in days]
    applications = pd.concat([a.iloc[:per_day] for a, _ in parts], ignore_index=True)
    outcomes = pd.concat([o.iloc[:per_day] for _, o in parts], ignore_index=True)
    ids = [f"{prefix}{i}" for i in range(len(applications))]
    return applications.assign(**{schema.APPLICATION_ID: ids}), outcomes.assign(
        **{schema.APPLICATION_ID: ids}
    )


def _count(warehouse: Warehouse, prefix: str) -> tuple[int, int]:
    apps = warehouse.read_applications_between(date(2000, 1, 1), date(2100, 1, 1))[schema.APPLICATION_ID]
    outs = warehouse.read_outcomes(date(2200, 1, 1))[schema.APPLICATION_ID]
    return int(apps.str.startswith(prefix).sum()), int(outs.str.startswith(prefix).sum())


def test_write_batch_replaces_exactly_its_own_ids(warehouse: Warehouse, world: World) -> None:
    days = [DAY, DAY + timedelta(days=1)]
    # Names a LIKE would confuse with "a_b:": another case, a wildcard match, a longer name.
    neighbours = ["A_B:", "axb:", "a_bc:", "a_b-"]
    for prefix in neighbours:
        warehouse.write_batch(prefix, *_batch(world, prefix, days))
    warehouse.write_day(DAY + timedelta(days=5), *simulate_day(world, DAY + timedelta(days=5)))
    simulated = len(warehouse.read_applications(DAY + timedelta(days=5)))
    assert warehouse.write_batch("a_b:", *_batch(world, "a_b:", days))[:3] == (80, 0, ())
    # Again, moved to other days and smaller: the earlier rows go, wherever they were.
    moved = [DAY + timedelta(days=10)]
    assert warehouse.write_batch("a_b:", *_batch(world, "a_b:", moved, per_day=30))[:3] == (
        30,
        80,
        tuple(days),
    )
    assert _count(warehouse, "a_b:") == (30, 30)
    assert warehouse.read_applications(DAY)[schema.APPLICATION_ID].str.startswith("a_b:").sum() == 0
    for prefix in neighbours:
        assert _count(warehouse, prefix) == (80, 80), prefix
    assert len(warehouse.read_applications(DAY + timedelta(days=5))) == simulated


def test_an_unchanged_batch_is_kept_as_it_is_and_a_changed_one_replaced(
    warehouse: Warehouse, world: World
) -> None:
    days = [DAY, DAY + timedelta(days=1)]
    applications, outcomes = _batch(world, "k:", days)
    assert not warehouse.write_batch("k:", applications, outcomes, keep_if_unchanged=True).unchanged
    loaded = warehouse.loaded_days(DAY, days[-1])
    # The same rows again (missing values, floats, dates and all): nothing is written, load times stay.
    again = warehouse.write_batch("k:", applications.copy(), outcomes.copy(), keep_if_unchanged=True)
    assert again == (0, 0, tuple(days), True)
    assert warehouse.loaded_days(DAY, days[-1]).equals(loaded)
    # One value, one outcome or one day different: the batch is replaced.
    for changed in (
        (applications.assign(income=applications["income"].where(applications.index != 7, 1)), outcomes),
        (
            applications,
            outcomes.assign(
                claim_status=outcomes["claim_status"].where(outcomes.index != 3, 1 - outcomes["claim_status"])
            ),
        ),
        (applications.assign(application_date=days[0]), outcomes),
    ):
        written = warehouse.write_batch("k:", *changed, keep_if_unchanged=True)
        assert not written.unchanged and written.written == written.replaced == 80
    assert not warehouse.write_batch(
        "k:", applications, outcomes
    ).unchanged  # without the option: always written


def test_write_batch_is_all_or_nothing(warehouse: Warehouse, world: World) -> None:
    applications, outcomes = _batch(world, "b:", [DAY])
    warehouse.write_batch("b:", applications, outcomes)
    broken = outcomes.assign(**{schema.CLAIM_STATUS: np.nan})  # NOT NULL: the insert fails after the deletes
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError differs by engine
        warehouse.write_batch("b:", applications.iloc[:5], broken.iloc[:5])
    assert _count(warehouse, "b:") == (40, 40)
    with pytest.raises(ValueError, match="ids outside the batch"):
        warehouse.write_batch("c:", applications, outcomes)
    with pytest.raises(ValueError, match="non-empty id prefix"):
        warehouse.write_batch("", applications, outcomes)


def test_first_days_finds_the_earliest_day_before(
    warehouse: Warehouse, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import claims_platform.source.warehouse as module

    days = [DAY + timedelta(days=i) for i in range(4)]
    base = simulate_day(world, days[0])[0].iloc[:3]
    for i, day in enumerate(days):
        # id "x" on every day, "y" from the third day on, plus one id of each day's own.
        ids = ["x", "y" if i >= 2 else f"only{i}", f"own{i}"]
        applications = base.assign(**{schema.APPLICATION_ID: ids, schema.APPLICATION_DATE: day})
        outcomes = pd.DataFrame(
            {schema.APPLICATION_ID: ids, schema.CLAIM_STATUS: 0, schema.KNOWN_DATE: day + timedelta(days=30)}
        )
        warehouse.write_day(day, applications, outcomes)
    monkeypatch.setattr(module, "_IN_LIST_CHUNK", 2)  # several chunks
    wanted = ["x", "y", "own1", "own3", "only0", "nowhere", "x"]
    assert warehouse.first_days(wanted, before=days[3]) == {
        "x": days[0],
        "y": days[2],
        "own1": days[1],
        "only0": days[0],
    }
    # Strictly before: an id first seen on `before` itself is absent.
    assert warehouse.first_days(["y", "x"], before=days[2]) == {"x": days[0]}
    assert warehouse.first_days([], before=days[3]) == {}
    assert warehouse.first_days(["x"], before=days[0]) == {}


def test_a_warehouse_nothing_was_loaded_into_holds_no_days(tmp_path):
    """The late-data sensor ticks from `make dev` on; before the first load it finds nothing, no error."""
    empty = Warehouse(f"sqlite:///{tmp_path / 'empty.db'}")
    frame = empty.loaded_days(date(2025, 1, 1), date(2025, 12, 31))
    assert frame.empty and list(frame.columns) == ["application_date", "rows", "last_loaded_at"]
