"""Planning an import: the days its rows are spread over when the export has no dates, chosen with the
planner its caller hands in (the training rules live above the world outside; the third step)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from claims_platform.core import settings
from claims_platform.core.months import add_months

# Whole-month spreads tried by default: from the start to the end of the month this many months later.
WHOLE_MONTH_SPREADS = range(3, settings.TRAINING_WINDOW_MONTHS + 1)


class ImportPlan(Protocol):
    """What the importer asks of a plan of what the platform can do with an import: the training rules
    live above the world outside (``claims_platform.training.import_plan`` makes one), so the caller
    hands the importer its :data:`Planner`."""

    @property
    def scoring(self) -> Sequence[object]: ...  # the months whose days a trained model would score
    @property
    def useful(self) -> bool: ...  # a model can be trained, and it will have imported days to score
    @property
    def trainable_months(self) -> Sequence[date]: ...
    def why_not_trainable(self) -> str: ...
    def requirements(self) -> str: ...


# rows per day, claims per day (valid rows only), label lag in days -> the plan
Planner = Callable[[Mapping[date, int], Mapping[date, int], int], ImportPlan]


# ------------------------------------------------------------------------------------------ spreading
def spread_over_days(n_rows: int, days: int) -> np.ndarray:
    """Day offset of each row, in file order: ``days`` consecutive days of nearly equal size."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    bounds = np.linspace(0, n_rows, days + 1).round().astype(np.int64)
    return np.repeat(np.arange(days, dtype=np.int64), np.diff(bounds))


def _spread_candidates(
    n_rows: int, start: date, days: int | None, daily_volume: int | None
) -> Iterator[tuple[int, str]]:
    """(number of days, how it was chosen) in order of preference."""
    if days is not None:
        yield days, f"over --days {days}"
        return
    if daily_volume is not None:
        yield math.ceil(n_rows / daily_volume), f"at about {daily_volume:,} a day (--daily-volume)"
        return
    yield math.ceil(n_rows / settings.DAILY_VOLUME), f"at about {settings.DAILY_VOLUME:,} a day"
    for months in WHOLE_MONTH_SPREADS:
        end = add_months(start.replace(day=1), months + 1) - timedelta(days=1)
        n_days = (end - start).days + 1
        if n_days > n_rows:
            return
        yield n_days, f"over whole months to {end}"


@dataclass(frozen=True)
class _Spread:
    offsets: np.ndarray
    start: date
    how: str
    plan: ImportPlan


def day_counts(days: Sequence[date] | np.ndarray, mask: np.ndarray, claims: np.ndarray):
    frame = pd.DataFrame({"day": np.asarray(days, dtype=object)[mask], "claims": claims[mask]})
    grouped = frame.groupby("day")["claims"]
    return grouped.size().to_dict(), grouped.sum().astype(int).to_dict()


def choose_spread(
    n_rows: int,
    start: date,
    days: int | None,
    daily_volume: int | None,
    valid: np.ndarray,
    claims: np.ndarray,
    label_lag_days: int,
    planner: Planner,
) -> _Spread:
    """The first candidate spread whose plan scores two months, else one, else the first candidate.

    Two scored months make the default robust: a month can be trainable and its candidate still fail
    the quality gate (small holdouts make calibration noisy), and the next month's model then scores.
    """
    tried: list[_Spread] = []
    for n_days, how in _spread_candidates(n_rows, start, days, daily_volume):
        offsets = spread_over_days(n_rows, n_days)
        first = np.bincount(offsets[valid], minlength=n_days)
        claimed = np.bincount(offsets[valid], weights=claims[valid], minlength=n_days).astype(int)
        day_of = [start + timedelta(days=i) for i in range(n_days)]
        plan = planner(
            dict(zip(day_of, first.tolist(), strict=True)),
            dict(zip(day_of, claimed.tolist(), strict=True)),
            label_lag_days,
        )
        tried.append(_Spread(offsets, start, how, plan))
        if len(plan.scoring) >= 2:
            break
    chosen = next(
        (t for t in tried if len(t.plan.scoring) >= 2), next((t for t in tried if t.plan.useful), tried[0])
    )
    natural = tried[0]
    if chosen is not natural:
        span = int(natural.offsets[-1]) + 1
        why = f"{natural.how} the rows would fill {span} day{'s' if span != 1 else ''}"
        why += (
            ", too few to train a model and then score days with it"
            if not natural.plan.useful
            else (", enough to score one month only")
        )
        chosen = _Spread(chosen.offsets, start, f"{chosen.how} ({why})", chosen.plan)
    return chosen
