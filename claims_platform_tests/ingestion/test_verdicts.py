"""Day-level verdicts (pure): volume against the typical day, rejected share, quarantine, history."""

from datetime import date, timedelta

from claims_platform.core.contract import REJECTION_REASON, ROW_NUMBER
from claims_platform.core.schema import APPLICATION_ID
from claims_platform.ingestion.batches import validate_days
from claims_platform.ingestion.verdicts import VolumeLimits, judge_days, volume_bounds
from claims_platform.source.generator import World, simulate_days

LIMITS = VolumeLimits(min_rows=1, max_rows=1_000_000, min_share_of_typical=0.25, max_multiple_of_typical=4.0)


def test_bounds_follow_the_typical_day_and_the_absolute_limits():
    assert (volume_bounds([], LIMITS).low, volume_bounds([], LIMITS).high) == (1, 1_000_000)
    bounds = volume_bounds([0, 100, 80, 120, 0], LIMITS)  # empty days are not typical
    assert (bounds.low, bounds.high, bounds.typical, bounds.history_days) == (25, 400, 100.0, 3)
    tight = VolumeLimits(min_rows=50, max_rows=300, min_share_of_typical=0.25, max_multiple_of_typical=4.0)
    assert (volume_bounds([100], tight).low, volume_bounds([100], tight).high) == (50, 300)


def test_a_broken_day_is_quarantined_whole_and_later_days_are_judged_without_it():
    first, last = date(2025, 5, 1), date(2025, 5, 12)
    raw, _ = simulate_days(World.from_seed(5), first, last)
    raw = raw[
        ~((raw["application_date"] == date(2025, 5, 6)) & (raw.groupby("application_date").cumcount() >= 100))
    ]
    raw.loc[raw.index[raw["application_date"] == date(2025, 5, 9)][:3], "age"] = (
        300  # 3 bad rows: a small share
    )
    _, batches = validate_days(raw, first, last)
    verdicts = judge_days(batches, {}, {}, LIMITS, 0.05)

    assert list(verdicts.quarantined) == [date(2025, 5, 6)]
    assert verdicts.quarantined[date(2025, 5, 6)][0].startswith("plausible_daily_volume: 100 rows, expected ")
    held = verdicts.batches[date(2025, 5, 6)]
    assert held.valid.empty and len(held.rejected) == 100 == batches[date(2025, 5, 6)].rows_read
    assert held.rejected[REJECTION_REASON].str.startswith("day quarantined: plausible_daily_volume").all()
    # Each held row can be found again in the read by its row number, as a rejected row can.
    read_positions = raw.reset_index(drop=True).index[
        raw.reset_index(drop=True)["application_date"] == date(2025, 5, 6)
    ]
    assert sorted(held.rejected[ROW_NUMBER]) == sorted(read_positions)
    assert set(held.rejected[APPLICATION_ID]) == set(
        raw.loc[raw["application_date"] == date(2025, 5, 6), APPLICATION_ID]
    )
    # 3 bad rows of ~1,200 on a clean 8-day history: kept, but not enough history to call it unusual.
    assert date(2025, 5, 9) not in verdicts.quarantined and verdicts.unusual == {}
    assert len(verdicts.batches[date(2025, 5, 9)].rejected) == 3


def test_a_share_far_above_history_is_named_and_quarantined_days_stay_out_of_history():
    day = date(2025, 5, 29)
    history = {day - timedelta(days=i): (1_200, 0) for i in range(1, 29)}
    raw, _ = simulate_days(World.from_seed(5), day, day)
    raw.loc[raw.index[:25], "income level"] = 9
    _, batches = validate_days(raw, day, day)
    verdicts = judge_days(batches, {}, history, LIMITS, 0.05)
    assert list(verdicts.unusual) == ["2025-05-29"] and not verdicts.quarantined
    assert (
        "25 of" in verdicts.unusual["2025-05-29"]
        and "0.00% over the previous 33,600 rows" in verdicts.unusual["2025-05-29"]
    )
