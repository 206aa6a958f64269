"""The predictions' level over a rolling week: the test that pools small days (pure, no Dagster).

A day's drift tests (:mod:`claims_platform.monitoring.drift`) judge that day alone. At 50 applications a
day they cannot see a shift in RISK: when riskier applicants arrive (a tenth of the non-claimants
replaced by claimants, the ``risk_shift`` scenario), a day's mean predicted probability moves by about
1.5–1.9 of its own standard errors, and the day's distance tests, spread over every column, flagged 0–4
of 30 such days. Yet that shift moves the reserve by a third.

For such a shift the mean predicted probability is the test to pool. If applicants arrive from
``(1 − ε)·f + ε·f₁`` instead of ``f = r·f₁ + (1 − r)·f₀`` (claimants ``f₁``, non-claimants ``f₀``,
claim rate ``r``), a calibrated model's ``p(x) = r·f₁/f`` gives the likelihood ratio of a row as
``1 + ε·(p(x) − r)/r``: its score in ``ε`` is linear in ``p``. Summing the rows' probabilities is the
locally most powerful test of a prior shift, and it pools exactly: the week's rows are one sample.

So each day the platform also judges the last ``days`` calendar days (those scored by the same model) as
one sample: ``z = (mean − μ) / (σ·√(1/N + 1/R))`` with ``N`` the pooled rows, ``μ`` and ``σ`` the mean and
standard deviation of the reference's probabilities, and ``R`` its rows (the reference is a sample too).
The level has shifted when ``|z|`` reaches the two-sided normal quantile of ``alarm_rate`` (1 in 10,000
windows), and an episode it keeps going stays open while ``|z|`` is at least ``clear_z``. The pinned
distance tests stay the day's tests; this one only pools what they see day by day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist


@dataclass(frozen=True)
class DayLevel:
    """A day's mean predicted probability, and the reference of the model that scored it."""

    rows: int
    mean: float
    reference_mean: float
    reference_sd: float
    reference_rows: int
    model: str  # the model version: only days scored by the same model pool


@dataclass(frozen=True)
class LevelRules:
    """How many calendar days pool, and the false-alarm rate of one pooled window."""

    days: int = 7  # CLAIMS_DRIFT_LEVEL_DAYS
    alarm_rate: float = 1e-4
    # An episode the level keeps going goes on while |z| stays at or above this (hysteresis): a shift that
    # sits about the alarm does not end and restart its episode; chance alone is below it 19 days in 20.
    clear_z: float = 1.96

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"the level's window must be at least 1 day, got {self.days}")
        if not 0 < self.alarm_rate < 1:
            raise ValueError(f"the level's alarm_rate must be in (0, 1), got {self.alarm_rate}")
        if not 0 < self.clear_z <= self.z:
            raise ValueError(f"the level's clear_z must be in (0, {self.z:.2f}], got {self.clear_z}")

    @property
    def z(self) -> float:
        """The |z| at which a window's level has shifted (3.89 at 1 in 10,000)."""
        return NormalDist().inv_cdf(1 - self.alarm_rate / 2)


def pooled_z(window: list[DayLevel]) -> float | None:
    """The standardised shift of the window's mean probability from its reference (None: no rows)."""
    rows = sum(d.rows for d in window)
    if rows == 0 or not window:
        return None
    reference = window[-1]
    if reference.reference_sd <= 0 or reference.reference_rows <= 0:
        return None
    mean = sum(d.rows * d.mean for d in window) / rows
    se = reference.reference_sd * math.sqrt(1 / rows + 1 / reference.reference_rows)
    return (mean - reference.reference_mean) / se


def level_shifts(levels: Mapping[str, DayLevel | None], rules: LevelRules = LevelRules()) -> dict[str, float]:
    """Each day's pooled z: the day and the ``rules.days − 1`` calendar days before it that were scored by
    the same model (a day without a level has none)."""
    shifts: dict[str, float] = {}
    for day, level in levels.items():
        if level is None:
            continue
        first = date.fromisoformat(day) - timedelta(days=rules.days - 1)
        window = [
            other
            for d, other in sorted(levels.items())
            if other is not None and other.model == level.model and first.isoformat() <= d <= day
        ]
        z = pooled_z(window)
        if z is not None:
            shifts[day] = z
    return shifts
