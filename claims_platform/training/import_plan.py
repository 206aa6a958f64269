"""What an import will let the platform do: which months can train, which days can be scored (pure).

The platform's rules are read from the modules that enforce them, never restated here:

- the training set of month M (``training.dataset.training_window``): applications of the
  ``settings.TRAINING_WINDOW_MONTHS`` months ending with M (not before ``settings.FIRST_DAY``),
  labelled with the outcomes known before the first instant of M+1 — an application's outcome is known
  ``label_lag_days`` after its day;
- a month of the window is a training month only when ``training.dataset.MIN_MONTH_COVERAGE`` of its
  applications are labelled (``label_applications``);
- the out-of-time split (``training.split``): at least ``MIN_MONTHS`` labelled months; the holdout is the
  last of them, the validation slice the latest days holding ``TrainingConfig.validation_fraction`` of
  the rest (cut on a day boundary, never the earliest day), the train part what is left; each part needs
  ``MIN_ROWS_PER_PART`` rows and both claim outcomes;
- the champion decided for month M scores the days of month M+1; a month that cannot train keeps the
  champion of the month before.

The inputs are per-day counts of the rows that will be VALID (rows breaking the data contract never
reach a training set) and of their claims, so the plan of a million-row import costs microseconds.
A month that the plan calls trainable can still fail later for reasons no count can foresee (the
candidate's quality gate); a month it calls untrainable cannot train. Only this import's rows are
counted: other data already in the warehouse (another batch, simulated days) may add to a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from claims_platform.core import settings
from claims_platform.core.months import add_months
from claims_platform.training.config import TrainingConfig
from claims_platform.training.dataset import MIN_MONTH_COVERAGE, training_window
from claims_platform.training.split import MIN_MONTHS, MIN_ROWS_PER_PART

VALIDATION_FRACTION = TrainingConfig().validation_fraction


@dataclass(frozen=True)
class MonthPlan:
    """Whether the monthly training of ``month`` will find a usable training set in the import."""

    month: date  # first day of the training month
    trainable: bool
    reason: str  # why not, or what the split will hold
    labelled_months: tuple[str, ...]  # "YYYY-MM" months of the window labelled enough to train on

    @property
    def key(self) -> str:
        return self.month.strftime("%Y-%m")


@dataclass(frozen=True)
class ScoringPlan:
    """Imported days of ``month`` that the champion decided for ``decided_in`` will score."""

    month: date
    decided_in: date  # the month before: its champion decision picks the model
    days: tuple[date, ...]


@dataclass(frozen=True)
class ImportPlan:
    """Training months and scoreable days of an import (see the module's docstring for the rules)."""

    first_day: date
    last_day: date
    days_with_rows: int
    valid_rows: int
    label_lag_days: int
    months: tuple[MonthPlan, ...]  # every month from the first day's to the last day's
    scoring: tuple[ScoringPlan, ...]

    @property
    def trainable_months(self) -> tuple[date, ...]:
        return tuple(m.month for m in self.months if m.trainable)

    @property
    def scoreable_days(self) -> tuple[date, ...]:
        return tuple(d for s in self.scoring for d in s.days)

    @property
    def useful(self) -> bool:
        """A model can be trained, and it will have imported days to score."""
        return bool(self.trainable_months) and bool(self.scoring)

    @property
    def training_months(self) -> tuple[date, ...]:
        """The monthly trainings to run, in order: from the first trainable month to the import's last month.

        A month in between that cannot train still has to decide ("ineligible, champion kept"), because
        each decision takes the incumbent from the month before.
        """
        if not self.trainable_months:
            return ()
        first, last = self.trainable_months[0], self.months[-1].month
        return tuple(m.month for m in self.months if first <= m.month <= last)

    def requirements(self) -> str:
        """What a training month needs, in the words of the rules that enforce it (one sentence)."""
        return (
            f"A training month needs {MIN_MONTHS} earlier months with {MIN_MONTH_COVERAGE:.0%} of their outcomes known "
            f"(outcomes arrive {self.label_lag_days} days after each application) and {MIN_ROWS_PER_PART}+ rows of both "
            "outcomes in its train, validation and holdout parts"
        )

    def why_not_trainable(self) -> str:
        """The reason of the month that came closest to training (most labelled months, latest)."""
        if not self.months:
            return "the import has no valid rows"
        best = max(self.months, key=lambda m: (len(m.labelled_months), m.month))
        return f"{best.key}: {best.reason}"


def _labelled(day: date, label_lag_days: int, cutoff: datetime) -> bool:
    # An outcome is known from the first instant of its known_date (label_applications: known_date < cutoff).
    return datetime.combine(day + timedelta(days=label_lag_days), time()) < cutoff


def _part_problem(name: str, rows: int, claims: int) -> str | None:
    if rows < MIN_ROWS_PER_PART:
        return f"the {name} part would have {rows:,} rows, fewer than the {MIN_ROWS_PER_PART} needed"
    if claims == 0 or claims == rows:
        return (
            f"the {name} part would hold only {'claims' if claims else 'non-claims'}; it needs both outcomes"
        )
    return None


def _validation_start(days: list[date], rows: Mapping[date, int], fraction: float) -> date:
    """The first validation day, as ``training.split.validation_split`` cuts it (days sorted ascending)."""
    total = sum(rows[d] for d in days)
    tail = 0
    reached = days[0]
    for day in reversed(days):
        tail += rows[day]
        if tail / total >= fraction:
            reached = day
            break
    return max(reached, days[1])


def plan_month(
    month: date, rows: Mapping[date, int], claims: Mapping[date, int], label_lag_days: int
) -> MonthPlan:
    """Whether training month ``month`` will be trainable on these per-day counts of valid rows."""
    window = training_window(month, settings.TRAINING_WINDOW_MONTHS, earliest=settings.FIRST_DAY)
    in_window = sorted(d for d, n in rows.items() if n and window.first_day <= d <= window.last_day)
    by_month: dict[str, list[date]] = {}
    for day in in_window:
        by_month.setdefault(day.strftime("%Y-%m"), []).append(day)
    coverage: dict[str, float] = {}
    labelled_days: dict[str, list[date]] = {}
    for key, days in by_month.items():
        known = [d for d in days if _labelled(d, label_lag_days, window.cutoff)]
        coverage[key] = sum(rows[d] for d in known) / sum(rows[d] for d in days)
        labelled_days[key] = known
    kept = [k for k in sorted(coverage) if coverage[k] >= MIN_MONTH_COVERAGE]
    cutoff = window.cutoff.date().isoformat()
    if len(kept) < MIN_MONTHS:
        shown = ", ".join(f"{k} {coverage[k]:.0%}" for k in sorted(coverage)) or "none"
        return MonthPlan(
            month,
            False,
            f"{len(kept)} month(s) of its window {MIN_MONTH_COVERAGE:.0%} labelled with outcomes known before {cutoff} "
            f"(labelled: {shown}); an out-of-time split needs {MIN_MONTHS}",
            tuple(kept),
        )
    holdout_days = labelled_days[kept[-1]]
    development = sorted(d for k in kept[:-1] for d in labelled_days[k])
    problem = _part_problem(
        "holdout", sum(rows[d] for d in holdout_days), sum(claims.get(d, 0) for d in holdout_days)
    )
    if problem is None and len(development) < 2:
        problem = f"the months before the holdout have {len(development)} labelled day(s); a validation slice needs 2"
    if problem is None:
        start = _validation_start(development, rows, VALIDATION_FRACTION)
        parts = {
            "train": [d for d in development if d < start],
            "validation": [d for d in development if d >= start],
        }
        for name, days in parts.items():
            problem = problem or _part_problem(
                name, sum(rows[d] for d in days), sum(claims.get(d, 0) for d in days)
            )
    if problem is not None:
        return MonthPlan(month, False, problem, tuple(kept))
    size = {
        "holdout": sum(rows[d] for d in holdout_days),
        "development": sum(rows[d] for d in development),
    }
    return MonthPlan(
        month,
        True,
        f"months {', '.join(kept)} labelled before {cutoff}: {size['development']:,} rows to learn from, "
        f"holdout {kept[-1]} {size['holdout']:,} rows",
        tuple(kept),
    )


def plan_import(
    rows_per_day: Mapping[date, int],
    claims_per_day: Mapping[date, int],
    label_lag_days: int = settings.LABEL_LAG_DAYS,
) -> ImportPlan:
    """The plan of an import from its per-day counts of valid rows and of their claims.

    Trainable months are looked for from the import's first month to its last; days are scoreable when
    the month before theirs has a champion decision with a trainable month at or before it.
    """
    if label_lag_days < 0:
        raise ValueError(f"label_lag_days must not be negative, got {label_lag_days}")
    days = sorted(d for d, n in rows_per_day.items() if n > 0)
    if not days:
        nothing = settings.FIRST_DAY  # no day holds a valid row
        return ImportPlan(nothing, nothing, 0, 0, label_lag_days, (), ())
    rows = {d: int(rows_per_day[d]) for d in days}
    claims = {d: int(claims_per_day.get(d, 0)) for d in days}
    months = []
    month, last_month = days[0].replace(day=1), days[-1].replace(day=1)
    while month <= last_month:
        months.append(plan_month(month, rows, claims, label_lag_days))
        month = add_months(month, 1)
    trainable = [m.month for m in months if m.trainable]
    scoring: dict[date, list[date]] = {}
    for day in days:
        decided_in = add_months(day.replace(day=1), -1)
        if trainable and trainable[0] <= decided_in:
            scoring.setdefault(day.replace(day=1), []).append(day)
    return ImportPlan(
        first_day=days[0],
        last_day=days[-1],
        days_with_rows=len(days),
        valid_rows=sum(rows.values()),
        label_lag_days=label_lag_days,
        months=tuple(months),
        scoring=tuple(ScoringPlan(m, add_months(m, -1), tuple(ds)) for m, ds in sorted(scoring.items())),
    )
