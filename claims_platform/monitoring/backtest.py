"""The reserve backtest: the claims each night's forecast expected against the claims that came (pure).

Every night :mod:`claims_platform.scoring.reserve` forecasts the claims among the day's ACCEPTED
applicants: Σp and an exact 95% Poisson-binomial interval. Once the month's outcomes are known
(:func:`outcomes_known_from`), the forecast can be checked:

- **per day** (:func:`daily_backtest`): the claims among the day's accepted applicants against the
  interval as forecast that night. Referred and declined applicants are not in the book and do
  not count. If the probabilities are calibrated, about 95% of days land inside (a little
  more: the exact interval of a discrete count covers at least 95%).
- **per month** (:func:`month_backtest`): the days' coverage, and the month's claims against the
  interval of the month pooled (exact below ``EXACT_MAX_APPLICANTS`` applicants, refined normal
  above), with the ratio of actual to expected claims.

An accepted application whose outcome is missing cannot be checked. A day's row keeps the
forecast as made (for all its accepted applicants) and counts the missing outcomes, so a day with
many is visibly not comparable; the month re-bases its expected claims and interval on the accepted
applicants whose outcome IS known, so missing outcomes do not read as fewer claims.

:class:`PerformanceBounds` says how far the realised figures may fall from what the model promised
before the platform should act on it.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from claims_platform.core.policy import ACCEPT
from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID, CLAIM_STATUS
from claims_platform.scoring.reserve import claims_interval

DAILY_COLUMNS = (
    "day",
    "accepted",
    "accepted_with_outcome",
    "missing_outcomes",
    "actual_claims",
    "expected_claims",
    "claims_low",
    "claims_high",
    "inside_interval",
    "actual_to_expected",
)


def _iso_days(values: pd.Series) -> pd.Series:
    """Dates, timestamps or ISO strings as ``"YYYY-MM-DD"`` strings."""
    return pd.Series(pd.to_datetime(values).dt.strftime("%Y-%m-%d"), index=values.index, dtype=object)


def _ratio(actual: float, expected: float) -> float:
    return actual / expected if expected > 0 else math.nan


def _check_outcomes(outcomes: pd.DataFrame) -> None:
    duplicated = outcomes.loc[outcomes[APPLICATION_ID].duplicated(), APPLICATION_ID].unique()
    if len(duplicated):
        shown = ", ".join(map(str, duplicated[:5])) + (" ..." if len(duplicated) > 5 else "")
        raise ValueError(f"{len(duplicated)} application id(s) have more than one outcome: {shown}")
    status = outcomes[CLAIM_STATUS].dropna()
    if not status.isin((0, 1)).all():
        raise ValueError(f"claim_status must be 0 or 1, got {sorted(set(status) - {0, 1})[:5]}")


def accepted_outcomes(scores: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The accepted applications: ``day``, ``claim_probability`` and ``claim_status`` (NaN if not known).

    ``scores`` has ``application_id``, ``application_date``, ``claim_probability`` and ``decision``;
    ``outcomes`` has ``application_id`` and ``claim_status``, at most one row per id (ValueError).
    The month's probabilities for :func:`month_backtest` are the rows whose ``claim_status`` is known.
    """
    _check_outcomes(outcomes)
    accepted = scores.loc[scores["decision"] == ACCEPT]
    rows = pd.DataFrame(
        {
            APPLICATION_ID: accepted[APPLICATION_ID].to_numpy(),
            "day": _iso_days(accepted[APPLICATION_DATE]).to_numpy(),
            "claim_probability": accepted["claim_probability"].to_numpy(dtype="float64"),
        }
    )
    known = outcomes[[APPLICATION_ID, CLAIM_STATUS]]
    merged = rows.merge(known, on=APPLICATION_ID, how="left", validate="many_to_one")
    merged[CLAIM_STATUS] = merged[CLAIM_STATUS].astype("float64")
    return merged


def daily_backtest(forecast: pd.DataFrame, scores: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per forecast day, sorted: the accepted applicants' claims against that night's forecast.

    ``forecast`` has one row per day as :func:`~claims_platform.scoring.assets._forecast_row` makes it
    (``day``, ``accepted_expected_claims``, ``accepted_claims_low``, ``accepted_claims_high``, ...).
    Columns: ``DAILY_COLUMNS``; ``actual_claims`` counts claims among accepted rows with a known
    outcome, ``inside_interval`` is ``claims_low <= actual_claims <= claims_high`` and
    ``actual_to_expected`` is NaN when no claims were expected. A day of scores without a forecast
    row, a day forecast twice or an application with two outcomes is a ValueError.
    """
    days = _iso_days(forecast["day"])
    twice = sorted(days[days.duplicated()].unique())
    if twice:
        raise ValueError(f"the forecast has more than one row for day(s) {twice}")
    unforecast = sorted(set(_iso_days(scores[APPLICATION_DATE])) - set(days))
    if unforecast:
        raise ValueError(
            f"scores for day(s) {unforecast} have no forecast row: materialize `reserve_forecast` first"
        )
    rows = accepted_outcomes(scores, outcomes)
    per_day = (
        rows.groupby("day")
        .agg(
            accepted=("claim_probability", "size"),
            accepted_with_outcome=(CLAIM_STATUS, "count"),
            actual_claims=(CLAIM_STATUS, "sum"),
        )
        .reindex(days.to_numpy(), fill_value=0)
    )
    expected = forecast["accepted_expected_claims"].to_numpy(dtype="float64")
    low = forecast["accepted_claims_low"].to_numpy(dtype="int64")
    high = forecast["accepted_claims_high"].to_numpy(dtype="int64")
    actual = per_day["actual_claims"].to_numpy().round().astype("int64")
    accepted = per_day["accepted"].to_numpy(dtype="int64")
    with_outcome = per_day["accepted_with_outcome"].to_numpy(dtype="int64")
    table = pd.DataFrame(
        {
            "day": days.to_numpy(),
            "accepted": accepted,
            "accepted_with_outcome": with_outcome,
            "missing_outcomes": accepted - with_outcome,
            "actual_claims": actual,
            "expected_claims": expected,
            "claims_low": low,
            "claims_high": high,
            "inside_interval": (low <= actual) & (actual <= high),
            "actual_to_expected": [_ratio(a, e) for a, e in zip(actual, expected, strict=True)],
        },
        columns=list(DAILY_COLUMNS),
    )
    return table.sort_values("day", ignore_index=True)


@dataclass(frozen=True)
class MonthBacktest:
    """A month of daily backtests, and the month's claims against its own pooled interval."""

    days: int
    days_inside: int
    coverage: float  # days_inside / days
    actual_claims: int
    expected_claims: float  # Σp over accepted applicants with a known outcome
    claims_low: int  # 95% interval of the month pooled, same applicants
    claims_high: int
    inside_interval: bool
    actual_to_expected: float  # NaN when no claims were expected
    missing_outcomes: int

    def as_dict(self, prefix: str = "backtest_") -> dict[str, float | int | bool]:
        """Fields as plain values (floats to 4 decimals) with a prefix, for Dagster metadata."""
        return {f"{prefix}{k}": round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def month_backtest(
    daily: pd.DataFrame, accepted_probabilities: np.ndarray, level_sd: float = 0.0
) -> MonthBacktest:
    """The month of :func:`daily_backtest` rows, pooled.

    ``accepted_probabilities`` are the claim probabilities of the month's accepted applicants whose
    outcome is known (one per ``accepted_with_outcome``; see :func:`accepted_outcomes`): the month's
    expected claims and interval are theirs, so that missing outcomes are not read as fewer claims.
    ``level_sd``: the model's calibration uncertainty, which the month's interval carries (one model
    scores the whole month, so its error does not average out over the days as the Bernoulli noise does).
    """
    if len(daily) == 0:
        raise ValueError("no days to backtest")
    p = np.asarray(accepted_probabilities, dtype="float64").ravel()
    with_outcome = int(daily["accepted_with_outcome"].sum())
    if len(p) != with_outcome:
        raise ValueError(
            f"{len(p)} probabilities for {with_outcome} accepted applicants with a known outcome: pass the "
            "probabilities of exactly those applicants"
        )
    if len(p) and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite and in [0, 1]")
    days = len(daily)
    days_inside = int(daily["inside_interval"].sum())
    actual = int(daily["actual_claims"].sum())
    expected = float(p.sum())
    low, high = claims_interval(p, level_sd=level_sd)
    return MonthBacktest(
        days=days,
        days_inside=days_inside,
        coverage=days_inside / days,
        actual_claims=actual,
        expected_claims=expected,
        claims_low=low,
        claims_high=high,
        inside_interval=bool(low <= actual <= high),
        actual_to_expected=_ratio(actual, expected),
        missing_outcomes=int(daily["missing_outcomes"].sum()),
    )


@dataclass(frozen=True)
class PerformanceBounds:
    """How far a month's realised figures may fall from the model's promise before it is a failure.

    ``kappa_margin``: the realised kappa at the screen may be at most this far below the model's
    holdout kappa. ``ratio_low``–``ratio_high``: the band for the month's actual / expected claims
    among accepted applicants (the reserve is wrong by more than 15% outside the default band).
    """

    kappa_margin: float = 0.05
    ratio_low: float = 0.85
    ratio_high: float = 1.15

    def __post_init__(self) -> None:
        if not self.kappa_margin >= 0:  # also rejects NaN
            raise ValueError(f"kappa_margin must be >= 0, got {self.kappa_margin}")
        if not 0 < self.ratio_low < 1 < self.ratio_high:
            raise ValueError(f"need 0 < ratio_low < 1 < ratio_high, got {self.ratio_low}, {self.ratio_high}")

    def failures(self, realised_kappa: float, holdout_kappa: float, actual_to_expected: float) -> list[str]:
        """Why the month is outside the bounds, one human-readable reason each; empty when within."""
        reasons = []
        if math.isnan(realised_kappa):
            reasons.append(
                f"realised kappa is not available (the model's holdout kappa is {holdout_kappa:.3f})"
            )
        elif realised_kappa < holdout_kappa - self.kappa_margin:
            reasons.append(
                f"realised kappa {realised_kappa:.3f} is {holdout_kappa - realised_kappa:.3f} below the model's "
                f"holdout kappa {holdout_kappa:.3f} (margin {self.kappa_margin:.3f})"
            )
        if math.isnan(actual_to_expected):
            reasons.append(
                "actual/expected claims is not available: no claims were expected among accepted applicants"
            )
        elif not self.ratio_low <= actual_to_expected <= self.ratio_high:
            reasons.append(
                f"actual/expected claims {actual_to_expected:.2f} outside {self.ratio_low:.2f}–{self.ratio_high:.2f}"
            )
        return reasons


def outcomes_known_from(month_key: str, label_lag_days: int) -> date:
    """The first day on which every outcome of the month (key ``"YYYY-MM-01"``) is known.

    The outcome of an application on day d is known from the first instant of d + ``label_lag_days``
    (UTC), so the month's last outcome is known on its last day + ``label_lag_days``.
    """
    first = date.fromisoformat(month_key)
    if first.day != 1:
        raise ValueError(f"a monthly partition key is the first day of its month, got {month_key!r}")
    if label_lag_days < 0:
        raise ValueError(f"label_lag_days must be >= 0, got {label_lag_days}")
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return last + timedelta(days=label_lag_days)
