"""Day-level verdicts on an ingested batch: plausible volume, rejected share, quarantine (pure, no Dagster).

A row that breaks the contract is rejected on its own. A DAY can be broken as a whole — far fewer or
more rows than usual (an extract cut short, a day loaded twice), or too many bad rows to trust the
rest — and then none of its rows may reach training or scoring. Such a day is *quarantined*: every
row goes to ``rejected_applications`` with the day-level reason, ``applications`` holds none of them,
and the other days of the run carry on. Every message names the numbers and the run-config key that
changes the limit (``ops: ingest_applications: config: <key>``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import median

import pandas as pd

from claims_platform.core.contract import REJECTION_REASON, ROW_NUMBER
from claims_platform.ingestion.batches import DayBatch

CONFIG_PATH = "ops: ingest_applications: config"
VOLUME_HISTORY_DAYS = 28  # the "typical" day is the median of this many days before
QUARANTINED = "day quarantined"


@dataclass(frozen=True)
class VolumeLimits:
    """The run config's volume limits (see ``IngestionConfig``)."""

    min_rows: int
    max_rows: int
    min_share_of_typical: float
    max_multiple_of_typical: float


@dataclass(frozen=True)
class VolumeBounds:
    """The rows a day may hold, and where the bounds come from."""

    low: int
    high: int
    typical: float | None  # median rows of the non-empty days before; None without history
    history_days: int = 0  # how many non-empty days that median is over

    def describe(self) -> str:
        basis = (
            f"a typical day has {self.typical:,.0f} rows: the median of the {self.history_days} non-empty days"
            f" among the {VOLUME_HISTORY_DAYS} before"
            if self.typical is not None
            else "no earlier days to compare with"
        )
        return f"{self.low:,}..{self.high:,} ({basis})"


def volume_bounds(history: Sequence[int], limits: VolumeLimits) -> VolumeBounds:
    """Bounds for a day given the row counts of the days before it (empty days ignored)."""
    counts = [n for n in history if n > 0]
    if not counts:
        return VolumeBounds(limits.min_rows, limits.max_rows, None)
    typical = float(median(counts))
    low = max(limits.min_rows, math.ceil(limits.min_share_of_typical * typical))
    high = min(limits.max_rows, math.floor(limits.max_multiple_of_typical * typical))
    return VolumeBounds(low, max(low, high), typical, len(counts))


def rolling_history(rows_by_day: Mapping[date, int], day: date, days: int = VOLUME_HISTORY_DAYS) -> list[int]:
    """Row counts of the ``days`` days before ``day`` (absent days count as empty)."""
    return [rows_by_day.get(day - timedelta(days=i), 0) for i in range(1, days + 1)]


def volume_problem(rows: int, bounds: VolumeBounds) -> str | None:
    """Why ``rows`` is implausible for the day, or None. An empty day is not judged here (it only warns)."""
    if rows == 0 or bounds.low <= rows <= bounds.high:
        return None
    keys = "min_share_of_typical / min_rows" if rows < bounds.low else "max_multiple_of_typical / max_rows"
    return (
        f"plausible_daily_volume: {rows:,} rows, expected {bounds.describe()}; "
        f"if the volume is real, change {keys} under {CONFIG_PATH}"
    )


def rejected_share_problem(rows: int, rejected: int, max_share: float) -> str | None:
    """Why the day's share of rejected rows makes the whole day untrustworthy, or None."""
    if rows == 0 or rejected / rows <= max_share:
        return None
    return (
        f"rejected_share_within_limit: {rejected:,} of {rows:,} rows ({rejected / rows:.1%}) broke the contract, "
        f"more than max_rejected_share {max_share:.1%} (under {CONFIG_PATH})"
    )


def quarantine(batch: DayBatch, problems: Sequence[str]) -> DayBatch:
    """The day with every row moved to the rejected rows, each carrying the day-level reason.

    Rows already rejected keep their own reason with the day's appended; the valid rows are kept as
    stored (typed values written back as text), so nothing is lost and the day can be re-ingested.
    """
    reason = f"{QUARANTINED}: " + "; ".join(problems)
    moved = batch.valid.astype("object").map(
        lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    )
    moved[REJECTION_REASON] = reason
    moved.insert(0, ROW_NUMBER, pd.Series(batch.valid_row_numbers, index=moved.index, dtype="int64"))
    already = batch.rejected.copy()
    if len(already):
        already[REJECTION_REASON] = already[REJECTION_REASON] + "; " + reason
    rejected = pd.concat([already, moved[already.columns]], ignore_index=True) if len(moved) else already
    rejected = rejected.sort_values(ROW_NUMBER, kind="stable", ignore_index=True).astype(
        {ROW_NUMBER: "int64"}
    )
    return replace(batch, valid=batch.valid.iloc[0:0], rejected=rejected, valid_row_numbers=())


@dataclass(frozen=True)
class ShareHistory:
    """Rows read and rows rejected by the contract over earlier days (quarantines excluded)."""

    rows: int
    rejected: int

    @property
    def share(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0


# A day's rejected share is unusual when it is this improbable under the history's rate...
SHARE_P_VALUE = 1e-4
# ...and at least this much above it (so one stray row on a clean history is no alarm).
SHARE_MIN_EXCESS = 0.005
MIN_HISTORY_ROWS = 5_000


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, p)) if k > 0 else 1.0


def unusual_rejected_share(rows: int, rejected: int, history: ShareHistory) -> str | None:
    """Why the day's rejected share is out of line with the history, or None.

    A contract that starts dropping one kind of applicant (a new valid code, a unit change upstream)
    rejects a small share every day, below the blocking limit; this compares it with the share the
    same contract rejected before. A floor of one row in ``history.rows`` avoids a zero rate.
    """
    if rows == 0 or history.rows < MIN_HISTORY_ROWS:
        return None
    rate = max(history.rejected, 1) / history.rows
    share = rejected / rows
    if share - history.share < SHARE_MIN_EXCESS or binomial_upper_tail(rejected, rows, rate) >= SHARE_P_VALUE:
        return None
    return (
        f"rejected_share_vs_history: {rejected:,} of {rows:,} rows rejected ({share:.2%}) against "
        f"{history.share:.2%} over the previous {history.rows:,} rows; look at rejected_applications' reasons"
    )


@dataclass
class DayVerdicts:
    """What :func:`judge_days` found: the days as they will be stored, and the messages per day."""

    batches: dict[date, DayBatch]
    quarantined: dict[date, list[str]]  # day -> the day-level problems that quarantined it
    implausible: dict[str, str]  # day -> plausible_daily_volume's message
    unusual: dict[str, str]  # day -> rejected_share_vs_history's message


def judge_days(
    batches: Mapping[date, DayBatch],
    volumes_before: Mapping[date, int],
    shares_before: Mapping[date, tuple[int, int]],
    limits: VolumeLimits,
    max_rejected_share: float,
) -> DayVerdicts:
    """Judge each day of a run in date order against the days before it, quarantining broken ones.

    ``volumes_before``: rows per day before the run (the warehouse's counts); ``shares_before``:
    (rows read, rows rejected) of stored days before the run, quarantined ones left out. Each day
    of the run joins the history of the days after it, as in day-by-day runs.
    """
    volumes, shares = dict(volumes_before), dict(shares_before)
    out = DayVerdicts(dict(batches), {}, {}, {})
    for day, batch in sorted(batches.items()):
        volume = volume_problem(batch.rows_read, volume_bounds(rolling_history(volumes, day), limits))
        volumes[day] = batch.rows_read
        if volume:
            out.implausible[str(day)] = volume
        share = rejected_share_problem(batch.rows_read, len(batch.rejected), max_rejected_share)
        problems = [p for p in (volume, share) if p]
        if problems:
            out.quarantined[day] = problems
            out.batches[day] = quarantine(batch, problems)
            continue
        window = [
            shares[d]
            for d in (day - timedelta(days=i) for i in range(1, VOLUME_HISTORY_DAYS + 1))
            if d in shares
        ]
        history = ShareHistory(sum(r for r, _ in window), sum(k for _, k in window))
        if note := unusual_rejected_share(batch.rows_read, len(batch.rejected), history):
            out.unusual[str(day)] = note
        shares[day] = (batch.rows_read, len(batch.rejected))
    return out
