"""The reserve backtest on a month worked out by hand, its errors, the bounds and the label calendar (pure)."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from claims_platform.monitoring.backtest import (
    DAILY_COLUMNS,
    PerformanceBounds,
    accepted_outcomes,
    daily_backtest,
    month_backtest,
    outcomes_known_from,
)
from claims_platform.scoring.reserve import forecast_claims

# (id, day, p, decision, claim_status or None when the outcome is missing)
APPLICATIONS = [
    ("a1", date(2025, 1, 1), 0.10, "accept", 0),
    ("a2", date(2025, 1, 1), 0.20, "accept", 1),
    ("a3", date(2025, 1, 1), 0.35, "refer", 1),  # not in the book: its claim must not count
    ("b1", date(2025, 1, 2), 0.05, "accept", 1),
    ("b2", date(2025, 1, 2), 0.05, "accept", 1),
    ("b3", date(2025, 1, 2), 0.60, "decline", 1),  # idem
    ("b4", date(2025, 1, 2), 0.10, "accept", None),  # outcome not (yet) known
    ("c1", date(2025, 1, 3), 0.25, "accept", 0),
    ("c2", date(2025, 1, 3), 0.15, "accept", 0),
    ("c3", date(2025, 1, 3), 0.45, "refer", 0),
]
# The forecast as made each night, worked out by hand from the accepted p (exact Poisson-binomial):
# 01-01  p = .10, .20       P(0) = .72, P(≤1) = .98          -> [0, 1], expected 0.3
# 01-02  p = .05, .05, .10  P(0) = .81225, P(≤1) = .988      -> [0, 1], expected 0.2
# 01-03  p = .25, .15       P(0) = .6375, P(≤1) = .9625      -> [0, 2], expected 0.4
FORECAST = [("2025-01-01", 0.3, 0, 1, 2), ("2025-01-02", 0.2, 0, 1, 3), ("2025-01-03", 0.4, 0, 2, 2)]


def _scores() -> pd.DataFrame:
    rows = [(i, d, p, decision) for i, d, p, decision, _ in APPLICATIONS]
    return pd.DataFrame(rows, columns=["application_id", "application_date", "claim_probability", "decision"])


def _outcomes() -> pd.DataFrame:
    rows = [(i, y) for i, _, _, _, y in APPLICATIONS if y is not None]
    return pd.DataFrame(rows, columns=["application_id", "claim_status"]).astype({"claim_status": "int64"})


def _forecast(rows=FORECAST) -> pd.DataFrame:
    columns = [
        "day",
        "accepted_expected_claims",
        "accepted_claims_low",
        "accepted_claims_high",
        "accepted_applicants",
    ]
    return pd.DataFrame(rows, columns=columns).assign(all_expected_claims=1.0)


def test_the_hand_worked_forecast_is_what_the_reserve_forecast_gives():
    scores = _scores()
    for day, expected, low, high, applicants in FORECAST:
        accepted = scores.loc[
            (scores["application_date"] == date.fromisoformat(day)) & (scores["decision"] == "accept")
        ]
        made = forecast_claims(accepted["claim_probability"].to_numpy(), 12_000.0)
        assert (made.expected_claims, made.claims_low, made.claims_high, made.applicants) == (
            pytest.approx(expected),
            low,
            high,
            applicants,
        )


def test_daily_backtest_by_hand():
    # Forecast rows out of order: the result is sorted by day.
    daily = daily_backtest(_forecast(FORECAST[::-1]), _scores(), _outcomes())
    assert list(daily.columns) == list(DAILY_COLUMNS)
    assert list(daily["day"]) == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert list(daily["accepted"]) == [2, 3, 2]
    assert list(daily["accepted_with_outcome"]) == [2, 2, 2]
    assert list(daily["missing_outcomes"]) == [0, 1, 0]
    assert list(daily["actual_claims"]) == [1, 2, 0]  # a3's and b3's claims do not count
    assert list(daily["expected_claims"]) == pytest.approx([0.3, 0.2, 0.4])
    assert list(daily["claims_low"]) == [0, 0, 0] and list(daily["claims_high"]) == [1, 1, 2]
    assert list(daily["inside_interval"]) == [True, False, True]  # 2 claims above 01-02's [0, 1]
    assert list(daily["actual_to_expected"]) == pytest.approx([1 / 0.3, 2 / 0.2, 0.0])
    assert daily["inside_interval"].dtype == bool


def test_month_backtest_by_hand():
    scores, outcomes = _scores(), _outcomes()
    daily = daily_backtest(_forecast(), scores, outcomes)
    rows = accepted_outcomes(scores, outcomes)
    known = rows.loc[rows["claim_status"].notna(), "claim_probability"].to_numpy()
    assert sorted(known) == pytest.approx(sorted([0.10, 0.20, 0.05, 0.05, 0.25, 0.15]))  # b4 has no outcome

    month = month_backtest(daily, known)
    # Pooled p of the six with an outcome: P(≤2) = .96989 < .975 <= P(≤3) = .99736, so [0, 3].
    assert (month.days, month.days_inside) == (3, 2)
    assert month.coverage == pytest.approx(2 / 3)
    assert month.actual_claims == 3 and month.expected_claims == pytest.approx(0.8)
    assert (month.claims_low, month.claims_high) == (0, 3)
    assert month.inside_interval is True  # on the upper edge: the interval is inclusive
    assert month.actual_to_expected == pytest.approx(3 / 0.8)
    assert month.missing_outcomes == 1

    values = month.as_dict()
    assert values["backtest_coverage"] == 0.6667 and values["backtest_actual_to_expected"] == 3.75
    assert values["backtest_inside_interval"] is True and values["backtest_days"] == 3
    assert set(month.as_dict(prefix="")) == {
        "days", "days_inside", "coverage", "actual_claims", "expected_claims", "claims_low", "claims_high",
        "inside_interval", "actual_to_expected", "missing_outcomes",
    }  # fmt: skip


def test_a_forecast_day_without_applications_expects_nothing():
    forecast = _forecast([*FORECAST, ("2025-01-04", 0.0, 0, 0, 0)])
    daily = daily_backtest(forecast, _scores(), _outcomes())
    last = daily.iloc[-1]
    assert (last["day"], last["accepted"], last["actual_claims"], bool(last["inside_interval"])) == (
        "2025-01-04",
        0,
        0,
        True,
    )
    assert math.isnan(last["actual_to_expected"])


def test_duplicate_outcomes_are_an_error_naming_the_id():
    outcomes = pd.concat([_outcomes(), pd.DataFrame({"application_id": ["b1"], "claim_status": [0]})])
    with pytest.raises(ValueError, match="b1"):
        daily_backtest(_forecast(), _scores(), outcomes)


def test_scores_without_a_forecast_row_are_an_error_naming_the_day():
    with pytest.raises(ValueError, match=r"2025-01-02"):
        daily_backtest(_forecast([FORECAST[0], FORECAST[2]]), _scores(), _outcomes())
    with pytest.raises(ValueError, match="more than one row"):
        daily_backtest(_forecast([*FORECAST, FORECAST[0]]), _scores(), _outcomes())


def test_month_backtest_needs_the_probabilities_of_the_rows_with_an_outcome():
    daily = daily_backtest(_forecast(), _scores(), _outcomes())
    all_accepted = _scores().query("decision == 'accept'")["claim_probability"].to_numpy()  # 7, b4 included
    with pytest.raises(ValueError, match="7 probabilities for 6"):
        month_backtest(daily, all_accepted)
    with pytest.raises(ValueError, match="no days"):
        month_backtest(daily.iloc[:0], np.array([]))


# -------------------------------------------------------------------------------------- bounds


def test_bounds_failures_say_what_and_by_how_much():
    bounds = PerformanceBounds()
    assert bounds.failures(0.712, 0.793, 1.23) == [
        "realised kappa 0.712 is 0.081 below the model's holdout kappa 0.793 (margin 0.050)",
        "actual/expected claims 1.23 outside 0.85–1.15",
    ]
    assert bounds.failures(0.76, 0.793, 1.0) == []
    assert bounds.failures(0.85, 0.793, 0.80) == ["actual/expected claims 0.80 outside 0.85–1.15"]
    assert PerformanceBounds(kappa_margin=0.25).failures(0.5, 0.75, 0.85) == []  # edges are within
    assert PerformanceBounds(ratio_low=0.5, ratio_high=1.5).failures(0.8, 0.8, 1.5) == []
    assert len(bounds.failures(math.nan, 0.793, math.nan)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kappa_margin": -0.01},
        {"kappa_margin": math.nan},
        {"ratio_low": 0.0},
        {"ratio_low": 1.0},
        {"ratio_high": 1.0},
        {"ratio_low": 1.2, "ratio_high": 1.1},
    ],
)
def test_bounds_validate_themselves(kwargs):
    with pytest.raises(ValueError):
        PerformanceBounds(**kwargs)


# ------------------------------------------------------------------------------ label calendar


@pytest.mark.parametrize(
    ("month", "lag", "known"),
    [
        ("2025-01-01", 30, date(2025, 3, 2)),  # 31 Jan + 30 days
        ("2025-02-01", 30, date(2025, 3, 30)),  # 28 Feb + 30 days
        ("2025-02-01", 0, date(2025, 2, 28)),
        ("2024-02-01", 0, date(2024, 2, 29)),  # leap year
        ("2025-12-01", 30, date(2026, 1, 30)),
    ],
)
def test_outcomes_known_from(month, lag, known):
    assert outcomes_known_from(month, lag) == known


def test_outcomes_known_from_rejects_a_day_key_and_a_negative_lag():
    with pytest.raises(ValueError, match="first day"):
        outcomes_known_from("2025-01-15", 30)
    with pytest.raises(ValueError, match="label_lag_days"):
        outcomes_known_from("2025-01-01", -1)
