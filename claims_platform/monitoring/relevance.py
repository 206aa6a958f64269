"""Drift that matters: whether a drifted day can move decisions, and so is worth a retrain (pure).

A drift test flags a column whatever the model makes of it. The columns it flags most easily (``age``,
``income``, ``location``) carry about 1–2% of the demo models' importance, so a 4-year shift of ``age``
alerts while neither the predictions nor the label-free performance estimate move. A drifted day
MATTERS when at least one of these holds:

- the predicted probabilities drifted (their own pinned test): the decisions move with them;
- the drifted feature columns together carry at least ``min_importance_share`` of the model in force's
  importance (mean |TreeSHAP| on its holdout, :mod:`claims_platform.models.importance`; a derived
  column counts as its source, once);
- the day's estimated kappa (the plug-in estimate from its calibrated probabilities, before any outcome)
  lies more than ``max_kappa_drop`` below the reference sample's AND below the chance floor of a day of
  its size drawn from the reference (:func:`kappa_floor`: the estimate a day like the reference falls
  below with probability ``false_alarm_rate`` / ``KAPPA_RATE_DIVISOR``). At 50 rows a day the estimate
  itself moves by ±0.1 by chance: a floor from the estimate's own 95% range alone made a third of small
  drifted days "matter". The floor's rate is a tenth of the drift tests': the rule is asked on every day
  of an episode, and at the tests' own 0.5% a month-long drift the model barely uses came to "matter" by
  chance in 3 of 12 worlds at 50 a day (one upgraded alert and a retrain it did not need).

A drifted day that does not matter is a WARNING: its episode alerts at warning level and asks for no
retrain. Too many rows rejected by the data contract alone is such a warning here: ingestion raises
its own alert about the rows, and retraining on the same feed would not mend it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from claims_platform.models.importance import column_shares, touched_share
from claims_platform.training.metrics import kappa_from_counts

NONE, WARNING, RETRAIN = "none", "warning", "retrain"


@dataclass(frozen=True)
class RelevanceRules:
    """When a drifted day is worth a retrain."""

    min_importance_share: float = 0.10  # of the model's importance carried by the drifted columns together
    max_kappa_drop: float = 0.05  # estimated kappa below the reference's by more than this (and beyond noise)

    def __post_init__(self) -> None:
        if not 0 < self.min_importance_share <= 1:
            raise ValueError(f"min_importance_share must be in (0, 1], got {self.min_importance_share}")
        if not 0 < self.max_kappa_drop < 1:
            raise ValueError(f"max_kappa_drop must be in (0, 1), got {self.max_kappa_drop}")


@dataclass(frozen=True)
class DriftRelevance:
    """A day's drift weighed by what the model makes of it."""

    drifted: bool
    matters: bool
    importance: dict[str, float] = field(
        default_factory=dict
    )  # each drifted column's share of the model's importance
    drifted_importance: float | None = (
        None  # their share together; None when the model's importance is unknown
    )
    kappa_drop: float | None = None  # reference's estimated kappa less the day's
    reasons: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        """``retrain`` (drift that can move decisions), ``warning`` (drift the model barely feels) or ``none``."""
        return RETRAIN if self.matters else WARNING if self.drifted else NONE

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level,
            "matters": self.matters,
            "importance": {c: round(s, 4) for c, s in self.importance.items()},
            "drifted_importance": None
            if self.drifted_importance is None
            else round(self.drifted_importance, 4),
            "kappa_drop": None if self.kappa_drop is None else round(self.kappa_drop, 4),
            "reasons": list(self.reasons),
        }


# Resampled days behind a kappa floor, and how many rows' worth of days a chunk holds in memory.
FLOOR_DAYS = 2_000
KAPPA_RATE_DIVISOR = 10
_CHUNK_ELEMENTS = 4_000_000


def plug_in_kappa(p: np.ndarray, screen: float) -> np.ndarray:
    """The plug-in estimated kappa at ``p >= screen`` of each row of ``p`` (days × applicants), vectorised."""
    flagged = p >= screen
    tp = np.where(flagged, p, 0.0).sum(axis=1)
    fn = np.where(flagged, 0.0, p).sum(axis=1)
    n_flagged = flagged.sum(axis=1)
    return kappa_from_counts(tp, n_flagged - tp, fn, p.shape[1] - n_flagged - fn)


def floor_rows(rows: int) -> int:
    """The row count a day's kappa floor is computed at: ``rows`` to two significant digits (one floor for
    the days of about one size)."""
    if rows < 100:
        return max(rows, 1)
    digits = 10 ** (int(math.log10(rows)) - 1)
    return int(round(rows / digits) * digits)


def kappa_floor(
    reference_p: np.ndarray, rows: int, screen: float, false_alarm_rate: float, seed: int = 0
) -> float:
    """The plug-in estimated kappa that a day of ``rows`` applicants like the reference's falls below with
    probability ``false_alarm_rate`` / ``KAPPA_RATE_DIVISOR``, from ``FLOOR_DAYS`` days resampled from the
    reference's probabilities: their ``false_alarm_rate`` quantile (10 days below it at 0.5%: measured, not
    assumed), its distance below their median stretched by the normal's ratio of the two tail quantiles
    (a tenth of the rate is 1.28 times as far out at 0.5%). Ten times the days would cost 0.4 s at 1,200
    rows and 5 s at 12,000 on the nightly run's path, once per model and day size."""
    p = np.asarray(reference_p, dtype="float64")
    rng = np.random.default_rng([seed, rows])
    per_chunk = max(1, _CHUNK_ELEMENTS // max(rows, 1))
    kappas = []
    for start in range(0, FLOOR_DAYS, per_chunk):
        days = min(per_chunk, FLOOR_DAYS - start)
        kappas.append(plug_in_kappa(p[rng.integers(0, len(p), size=(days, rows))], screen))
    drawn = np.concatenate(kappas)
    median, measured = np.quantile(drawn, [0.5, false_alarm_rate])
    stretch = NormalDist().inv_cdf(false_alarm_rate / KAPPA_RATE_DIVISOR) / NormalDist().inv_cdf(
        false_alarm_rate
    )
    return float(median - (median - measured) * stretch)


def drift_relevance(
    drifted: bool,
    drifted_columns: Iterable[str],
    prediction_drifted: bool,
    importance: Mapping[str, float] | None,
    estimated_kappa: float | None = None,
    reference_kappa: tuple[float, float] | None = None,
    rules: RelevanceRules = RelevanceRules(),
) -> DriftRelevance:
    """Whether a day's drift matters (see the module's docstring).

    ``importance``: the model's importance share per feature (empty or None when unknown: then drifted columns
    count as mattering, as before importance was weighed); ``estimated_kappa``: the day's plug-in
    estimate; ``reference_kappa``: the reference sample's plug-in estimate and the chance floor of a day
    of this size (:func:`kappa_floor`).
    """
    columns = list(drifted_columns)
    known = bool(importance)
    shares = column_shares(importance, columns) if known else {}
    touched = touched_share(importance, columns) if known else None
    drop = None
    if estimated_kappa is not None and reference_kappa is not None:
        drop = reference_kappa[0] - estimated_kappa
    reasons = []
    if drifted:
        if prediction_drifted:
            reasons.append("the predicted probabilities drifted")
        if columns and not known:
            reasons.append(f"{len(columns)} column(s) drifted and the model's importance is unknown")
        elif touched is not None and columns and touched >= rules.min_importance_share:
            reasons.append(
                f"the drifted columns carry {touched:.0%} of the model's importance (>= {rules.min_importance_share:.0%})"
            )
        if drop is not None and drop > rules.max_kappa_drop and estimated_kappa < reference_kappa[1]:
            reasons.append(
                f"the estimated kappa {estimated_kappa:.3f} is {drop:.3f} below the reference's {reference_kappa[0]:.3f}, "
                f"beyond chance (floor {reference_kappa[1]:.3f} at this many rows)"
            )
    return DriftRelevance(
        drifted=drifted,
        matters=bool(reasons),
        importance=shares,
        drifted_importance=touched,
        kappa_drop=drop,
        reasons=tuple(reasons),
    )
