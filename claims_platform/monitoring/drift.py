"""The day's drift decision: Evidently's statistical tests, pinned per column type (pure, no Dagster).

**Which test, and why pinned.** Evidently picks a test by itself when none is given: a p-value test
(Kolmogorov–Smirnov, chi-squared) for a reference of up to 1,000 rows and a distance above it, so
the same day flips between "drifted" and not as the reference changes size; and a p-value test on
~1,200 rows flags ANY tiny difference as the sample grows (and 5% of columns on identical days by
construction). The platform pins a DISTANCE per column type, whose value estimates how far the two
distributions are apart whatever the sample sizes, with a threshold on that distance:

- numerical columns (wide-range integers and floats, and the predicted probability): Evidently's
  ``wasserstein`` — the Wasserstein-1 distance normed by the reference's standard deviation (a shift
  of the whole column by 0.1 standard deviations scores 0.1);
- categorical columns (letters, 0/1 flags, small ordinal integers such as ``health_status``): its
  ``jensenshannon`` distance between the level frequencies, a missing value being a level of its own
  (so a source that starts sending blanks drifts too).

**Thresholds that hold at any volume.** A distance measured on 66 rows is mostly sampling noise: fixed
thresholds set for ~1,200 rows (0.20 and 0.15) flagged 61 of 61 i.i.d. days of a 66-a-day export, and
were loose at 1,200 rows. So each test's threshold is CALIBRATED per model and per day's row count
(:class:`NullCalibration`): the reference is resampled into days of the day's size, the chance
distance of each test measured, and the thresholds set so that a whole i.i.d. day (every test
together) drifts with probability ``false_alarm_rate`` (0.5%). Why a threshold per day rather than
pooling small days into windows: a window of a week at 50 rows a day would hold a drifted day's
evidence for a week, and the episode rules (:mod:`~claims_platform.monitoring.episodes`) need days
that are independent; the EWMA there already pools the evidence of several small days.
Measured on i.i.d. days of 2 worlds: 0.3–1.3% of days flagged at 20, 50, 100, 300, 1,200 and 5,000
rows a day (``bench/bench_quality.py`` has the volumes the platform is judged at).

The two distances are computed here as Evidently computes its ``wasserstein`` and ``jensenshannon``
stat tests (scipy's formulas on the same inputs, in numpy; a test holds them equal to Evidently's own
on random data), in about 15 ms for the 41 columns of a day (the reference's sorted values and level
counts are prepared once per model) and without importing Evidently (6 s per process) or
scipy.stats: the decision sits on the nightly run's critical path, while the Evidently report that
shows it (:mod:`claims_platform.monitoring.reports`) is built in a run of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from claims_platform.core import schema
from claims_platform.core.column_kinds import ColumnKind, column_kinds
from claims_platform.models.reference import PREDICTION_COLUMN

MISSING_LEVEL = "(missing)"


# Evidently's names of the two pinned tests.
NUMERICAL_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"


@dataclass(frozen=True)
class DriftSettings:
    """The pinned tests' thresholds, and when a day counts as drifted.

    A threshold left unset (the default) is CALIBRATED to the day's row count and the model's reference
    (:class:`NullCalibration`), so that an i.i.d. day drifts with probability ``false_alarm_rate``
    whether it holds 50 rows or 50,000; a number sets that column kind's threshold by hand.
    """

    numerical_threshold: float | None = None
    categorical_threshold: float | None = None
    prediction_threshold: float | None = None
    false_alarm_rate: float = 0.005  # of a whole i.i.d. day (every test together), calibrated thresholds
    # A day is drifted when at least this many feature columns drift, or the predictions do.
    min_drifted_columns: int = 1
    # ... or when more of its rows than this broke the data contract (a data-quality change: the
    # simulator's normal days reject nothing).
    max_rejected_share: float = 0.01

    def __post_init__(self) -> None:
        for name in ("numerical_threshold", "categorical_threshold", "prediction_threshold"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be above 0, got {value}")
        if not 0 < self.false_alarm_rate < 0.5:
            raise ValueError(f"false_alarm_rate must be in (0, 0.5), got {self.false_alarm_rate}")
        if self.min_drifted_columns < 1:
            raise ValueError(f"min_drifted_columns must be at least 1, got {self.min_drifted_columns}")
        if not 0 < self.max_rejected_share <= 1:
            raise ValueError(f"max_rejected_share must be in (0, 1], got {self.max_rejected_share}")

    def method_for(self, kind: ColumnKind) -> tuple[str, float | None]:
        """The (method, threshold set by hand or None) pinned for a column kind."""
        if kind == "numerical":
            return NUMERICAL_METHOD, self.numerical_threshold
        return CATEGORICAL_METHOD, self.categorical_threshold

    def as_dict(self) -> dict[str, object]:
        return {
            "numerical_method": NUMERICAL_METHOD,
            "categorical_method": CATEGORICAL_METHOD,
            **asdict(self),
        }


# The null calibration: this many resampled days at each of these row counts (a day is calibrated at
# the nearest, in ratio; above the last, the distances' sampling noise scales as one over sqrt(rows)).
CALIBRATION_DAYS = 2_000
CALIBRATION_GRID = (10, 17, 30, 50, 85, 150, 300)
# Each test's chance distances are put on one footing by their own 99th percentile: a percentile high in
# the distribution, near where the alarm is, keeps the tests with a few levels (whose distances jump between
# a handful of values) from dominating the day's largest ratio. At the 95th the footing was set in the
# body of the distributions, and the tail's alarm fell unevenly: an occupation mix moved from uniform to
# 40% A alerted on scenario day 4–12 at 50 rows a day (by the 7th in 9 of 12 worlds); at the 99th on day
# 3–7 in all 12, with i.i.d. days still flagged at the calibrated rate.
SCALE_QUANTILE = 0.99


@dataclass(frozen=True)
class NullCalibration:
    """How far a day of ``rows`` rows of the reference's own population lies from it by chance, per test.

    Measured by resampling: ``CALIBRATION_DAYS`` days of ``rows`` rows drawn from the reference (whole
    rows, so columns that repeat each other stay together) are scored against it. Each test's typical
    chance distance (its median, ``scale``) is taken; a day's statistic is the largest of its tests'
    distance / scale; ``tau`` is that statistic's ``1 − false_alarm_rate`` quantile, so that an i.i.d.
    day drifts on any test with probability ``false_alarm_rate``. A day of ``n`` rows gets
    ``tau · scale · sqrt((1/n + 1/R) · rows)`` with ``R`` the reference's rows: a real day and the
    reference are two samples of the population (the resampled days were compared with the reference
    itself), and between calibrated row counts the distances shrink as one over the square root of the
    rows compared. Small days are calibrated at their own size, where that scaling no longer holds
    (a Jensen-Shannon distance over 10 levels measured on 17 rows is mostly empty levels).
    """

    rows: int
    scale: Mapping[str, float]
    tau: float
    reference_rows: int
    false_alarm_rate: float

    def thresholds(self, rows: int) -> dict[str, float]:
        """Each test's threshold for a day of ``rows`` rows (feature columns and the predictions)."""
        factor = self.tau * math.sqrt((1 / max(rows, 1) + 1 / self.reference_rows) * self.rows)
        return {column: factor * scale for column, scale in self.scale.items()}


def calibration_rows(rows: int) -> int:
    """The calibrated row count a day of ``rows`` rows is measured at: the nearest in ratio."""
    return min(CALIBRATION_GRID, key=lambda grid: abs(math.log(max(rows, 1) / grid)))


def calibrate_null(
    reference: Reference, rows: int, false_alarm_rate: float, seed: int = 0
) -> NullCalibration:
    """The :class:`NullCalibration` of ``reference`` at ``rows`` rows a day (vectorised: under 0.3 s
    for 42 tests at 300 rows, less below)."""
    rng = np.random.default_rng([seed, rows])
    picks = rng.integers(0, reference.rows, size=(CALIBRATION_DAYS, rows))
    distances = {
        name: _resampled_distances(reference.frame[name], kind, picks)
        for name, kind in reference.kinds.items()
    }
    if reference.prediction is not None:
        distances[PREDICTION_COLUMN] = _resampled_distances(
            reference.frame[PREDICTION_COLUMN], "numerical", picks
        )
    scale = {name: max(float(np.quantile(d, SCALE_QUANTILE)), 1e-6) for name, d in distances.items()}
    statistic = np.max(np.vstack([distances[name] / scale[name] for name in distances]), axis=0)
    tau = float(np.quantile(statistic, 1 - false_alarm_rate))
    return NullCalibration(
        rows=rows, scale=scale, tau=tau, reference_rows=reference.rows, false_alarm_rate=false_alarm_rate
    )


def _resampled_distances(values: pd.Series, kind: ColumnKind, rows: np.ndarray) -> np.ndarray:
    """The test's distance of each resampled day (``rows``: days × row positions) from the whole column."""
    if kind == "categorical":
        prepared = for_drift(values, kind).to_numpy()
        levels, codes = np.unique(prepared.astype(str), return_inverse=True)
        reference_share = np.bincount(codes, minlength=len(levels)) / len(codes)
        days = rows.shape[0]
        counts = np.bincount(
            (np.arange(days)[:, None] * len(levels) + codes[rows]).ravel(), minlength=days * len(levels)
        )
        shares = counts.reshape(days, len(levels)) / rows.shape[1]
        middle = (shares + reference_share) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(shares > 0, shares * np.log(shares / middle), 0.0).sum(axis=1)
            right = np.where(
                reference_share > 0, reference_share * np.log(reference_share / middle), 0.0
            ).sum(axis=1)
        return np.sqrt(np.maximum(left + right, 0.0) / 2)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = numbers[~np.isnan(numbers)]
    # Missing numbers: resample the present ones (their rows' pairing with other columns is lost).
    numbers = present[rows % len(present)] if len(present) < len(numbers) else numbers[rows]
    ordered = np.sort(numbers, axis=1)
    # W1 of a sample against the column: the mean gap between the sample's order statistics and the
    # column's quantiles at the same levels (exact as the column's size grows), over its std.
    levels = (np.arange(rows.shape[1]) + 0.5) / rows.shape[1]
    quantiles = np.quantile(present, levels)
    return np.abs(ordered - quantiles).mean(axis=1) / max(float(np.std(present)), 0.001)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: its score against the pinned threshold."""

    column: str
    kind: ColumnKind
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """A day's drift: every feature column's test and the predictions' test."""

    columns: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    min_drifted_columns: int
    rows: int
    reference_rows: int
    settings: dict[str, object] = field(default_factory=dict)
    rejected_rows: int = 0
    max_rejected_share: float = 1.0

    @property
    def drifted_columns(self) -> dict[str, float]:
        """Drifted feature columns and their scores, worst first."""
        drifted = sorted((c for c in self.columns if c.drifted), key=lambda c: -c.score)
        return {c.column: round(c.score, 4) for c in drifted}

    @property
    def drift_share(self) -> float:
        """Share of feature columns that drifted."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def prediction_drifted(self) -> bool:
        return bool(self.prediction and self.prediction.drifted)

    @property
    def rejected_share(self) -> float:
        """Share of the day's rows that the data contract rejected."""
        read = self.rows + self.rejected_rows
        return self.rejected_rows / read if read else 0.0

    @property
    def rejected_share_exceeded(self) -> bool:
        return self.rejected_share > self.max_rejected_share

    @property
    def drifted(self) -> bool:
        """The day's decision: enough feature columns drifted, or the predictions did, or too many rows were rejected."""
        return (
            len(self.drifted_columns) >= self.min_drifted_columns
            or self.prediction_drifted
            or self.rejected_share_exceeded
        )

    @property
    def severity(self) -> float:
        """How far the day is from its thresholds: the largest score / threshold of its tests (the rejected
        share against its limit included). 1 or more when a test drifted; what the episode rules smooth."""
        ratios = [c.score / c.threshold for c in self.columns]
        if self.prediction is not None:
            ratios.append(self.prediction.score / self.prediction.threshold)
        ratios.append(self.rejected_share / self.max_rejected_share)
        return float(max(ratios))

    def worst(self, n: int = 5) -> dict[str, float]:
        """The ``n`` highest-scoring feature columns (drifted or not), for a glance at near misses."""
        top = sorted(self.columns, key=lambda c: -c.score)[:n]
        return {c.column: round(c.score, 4) for c in top}

    def summary(self) -> dict[str, object]:
        """Plain values for metadata, the stored summary and the alerts sensor."""
        return {
            "drifted": self.drifted,
            "severity": round(self.severity, 4),
            "drift_share": round(self.drift_share, 4),
            "drifted_columns": self.drifted_columns,
            "prediction_drift_score": round(self.prediction.score, 4) if self.prediction else None,
            "prediction_drifted": self.prediction_drifted,
            "rows": self.rows,
            "rejected_rows": self.rejected_rows,
            "rejected_share": round(self.rejected_share, 4),
            "rejected_share_exceeded": self.rejected_share_exceeded,
            "reference_rows": self.reference_rows,
            "column_scores": {c.column: round(c.score, 4) for c in self.columns},
            "column_thresholds": {
                c.column: round(c.threshold, 4)
                for c in (*self.columns, *([self.prediction] if self.prediction else []))
            },
            "settings": self.settings,
        }


def for_drift(values: pd.Series, kind: ColumnKind) -> pd.Series:
    """A column as the tests see it: numbers as float (nulls dropped), levels as text with missing a level."""
    if kind == "numerical":
        return pd.to_numeric(values, errors="coerce").astype("float64").dropna().reset_index(drop=True)
    if values.dtype.kind in "iufb":
        numbers = values.astype("float64")
        text = np.where(numbers.isna(), MISSING_LEVEL, numbers.fillna(0).astype(np.int64).astype(str))
        return pd.Series(text, dtype=object)
    return values.fillna(MISSING_LEVEL).astype(str).astype(object).reset_index(drop=True)


class Reference:
    """A reference sample with its columns already prepared for the tests (one per model, many days).

    Besides the prepared columns it keeps what every day's test needs of them (a numerical column's
    sorted values and standard deviation, a categorical column's level counts), so a backfill of a
    year against one model computes them once rather than once per day.
    """

    def __init__(self, frame: pd.DataFrame, kinds: Mapping[str, ColumnKind] | None = None):
        self.kinds: dict[str, ColumnKind] = dict(
            kinds or column_kinds([c for c in schema.FEATURES if c in frame.columns])
        )
        self.rows = len(frame)
        self.frame = frame.reset_index(drop=True)
        self._calibrations: dict[tuple[int, float], NullCalibration] = {}
        self.columns = {name: for_drift(frame[name], kind) for name, kind in self.kinds.items()}
        self.prediction = (
            for_drift(frame[PREDICTION_COLUMN], "numerical") if PREDICTION_COLUMN in frame.columns else None
        )
        self.samples: dict[str, _Sample] = {
            name: _sample(values, self.kinds[name]) for name, values in self.columns.items()
        }
        self.prediction_sample = (
            _sample(self.prediction, "numerical") if self.prediction is not None else None
        )

    def calibration(self, rows: int, false_alarm_rate: float) -> NullCalibration:
        """The null calibration a day of ``rows`` rows is judged by, computed once per calibrated size."""
        key = (calibration_rows(rows), false_alarm_rate)
        if key not in self._calibrations:
            self._calibrations[key] = calibrate_null(self, key[0], false_alarm_rate)
        return self._calibrations[key]


@dataclass(frozen=True)
class _Sample:
    """What a test needs of one prepared column: sorted numbers and their std, or level counts."""

    size: int
    sorted_values: np.ndarray | None = None
    std: float = 0.0
    counts: Mapping[str, int] | None = None


def _numbers(sorted_values: np.ndarray) -> _Sample:
    std = float(np.std(sorted_values)) if len(sorted_values) else 0.0
    return _Sample(size=len(sorted_values), sorted_values=sorted_values, std=std)


def _sample(values: pd.Series, kind: ColumnKind) -> _Sample:
    if kind == "numerical":
        return _numbers(np.sort(np.asarray(values, dtype="float64")))
    counts = values.value_counts(dropna=True)
    return _Sample(
        size=len(values), counts=dict(zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True))
    )


def _day_sample(values: pd.Series, kind: ColumnKind) -> _Sample:
    """``_sample(for_drift(values, kind), kind)`` without building the prepared column (a day, 41 columns)."""
    if kind == "numerical" or values.dtype.kind in "iufb":
        numbers = np.asarray(pd.to_numeric(values, errors="coerce"), dtype="float64")
        present = numbers[~np.isnan(numbers)]
        if kind == "numerical":
            present.sort()
            return _numbers(present)
        counts: dict[str, int] = {}
        for level, count in zip(*np.unique(present.astype(np.int64), return_counts=True), strict=True):
            counts[str(level)] = int(count)
        if len(present) < len(numbers):
            counts[MISSING_LEVEL] = len(numbers) - len(present)
        return _Sample(size=len(numbers), counts=counts)
    counts = {}
    for level, count in values.value_counts(dropna=False).items():
        if count:
            key = MISSING_LEVEL if pd.isna(level) else str(level)
            counts[key] = counts.get(key, 0) + int(count)
    return _Sample(size=len(values), counts=counts)


def _wasserstein_normed(reference: _Sample, current: _Sample) -> float:
    u, v = reference.sorted_values, current.sorted_values
    values = np.sort(np.concatenate([u, v]), kind="mergesort")
    u_cdf = np.searchsorted(u, values[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, values[:-1], side="right") / len(v)
    distance = float(np.sum(np.abs(u_cdf - v_cdf) * np.diff(values)))
    return distance / max(reference.std, 0.001)


def _jensen_shannon(reference: _Sample, current: _Sample) -> float:
    levels = sorted(set(reference.counts) | set(current.counts), key=str)
    p = np.array([reference.counts.get(level, 0) for level in levels], dtype="float64")
    q = np.array([current.counts.get(level, 0) for level in levels], dtype="float64")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(np.sqrt(max(float(left.sum() + right.sum()), 0.0) / 2))


def wasserstein_normed(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's ``wasserstein`` score: the Wasserstein-1 distance over the reference's standard deviation.

    The distance is scipy's ``wasserstein_distance`` for two unweighted samples (the area between
    their empirical CDFs), computed with numpy so the nightly run does not import scipy.stats for it.
    """
    return _wasserstein_normed(_sample(reference, "numerical"), _sample(current, "numerical"))


def jensen_shannon(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's ``jensenshannon`` score for a categorical column: the distance between the level shares.

    As scipy's ``jensenshannon`` (natural logarithm) on the shares of every level seen in either sample.
    """
    return _jensen_shannon(_sample(reference, "categorical"), _sample(current, "categorical"))


def _test(name: str, kind: ColumnKind, ref: _Sample, current: pd.Series, threshold: float) -> ColumnDrift:
    cur = _day_sample(current, kind)
    if ref.size == 0 or cur.size == 0:
        raise ValueError(f"{name}: no values to compare ({ref.size} in the reference, {cur.size} today)")
    if kind == "numerical":
        method, score = NUMERICAL_METHOD, _wasserstein_normed(ref, cur)
    else:
        method, score = CATEGORICAL_METHOD, _jensen_shannon(ref, cur)
    return ColumnDrift(name, kind, method, float(threshold), score, bool(score >= threshold))


def day_thresholds(reference: Reference, settings: DriftSettings, rows: int) -> dict[str, float]:
    """Each test's threshold for a day of ``rows`` rows: set by hand in ``settings``, else calibrated."""
    calibrated = reference.calibration(rows, settings.false_alarm_rate).thresholds(rows)
    fixed = {"numerical": settings.numerical_threshold, "categorical": settings.categorical_threshold}
    out = {
        name: fixed[kind] if fixed[kind] is not None else calibrated[name]
        for name, kind in reference.kinds.items()
    }
    if PREDICTION_COLUMN in calibrated:
        out[PREDICTION_COLUMN] = settings.prediction_threshold or calibrated[PREDICTION_COLUMN]
    return out


def measure_drift(
    current: pd.DataFrame,
    reference: Reference | pd.DataFrame,
    settings: DriftSettings | None = None,
    rejected_rows: int = 0,
) -> DriftResult:
    """Test every feature column of ``current`` against ``reference``, and the predictions when both have them.

    Both hold the feature columns; the predicted probability, when present in both, is tested as
    ``PREDICTION_COLUMN``. Columns are typed from the schema. Pass a :class:`Reference` to prepare a
    reference once for many days. ``rejected_rows``: the day's rows the data contract rejected
    (``current`` holds the valid ones).
    """
    settings = settings or DriftSettings()
    reference = reference if isinstance(reference, Reference) else Reference(reference)
    missing = [c for c in reference.kinds if c not in current.columns]
    if missing:
        raise ValueError(f"today's applications lack the reference's column(s) {missing}")
    if current.empty:
        raise ValueError("no applications to compare with the reference")
    thresholds = day_thresholds(reference, settings, len(current))
    columns = tuple(
        _test(name, kind, reference.samples[name], current[name], thresholds[name])
        for name, kind in reference.kinds.items()
    )
    prediction = None
    if PREDICTION_COLUMN in current.columns and reference.prediction_sample is not None:
        prediction = _test(
            PREDICTION_COLUMN,
            "numerical",
            reference.prediction_sample,
            current[PREDICTION_COLUMN],
            thresholds[PREDICTION_COLUMN],
        )
    return DriftResult(
        columns=columns,
        prediction=prediction,
        min_drifted_columns=settings.min_drifted_columns,
        rows=len(current),
        reference_rows=reference.rows,
        settings=settings.as_dict(),
        rejected_rows=rejected_rows,
        max_rejected_share=settings.max_rejected_share,
    )
