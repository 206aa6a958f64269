"""Outcomes by group of every protected column: who is declined or referred, who claims, and whether the
model's probabilities are right for each group (pure functions; the assets only call them).

**Groups.** A level of a categorical or binary column is a group (``gender`` 0 and 1, ``location`` A–Z);
``age`` is cut into the bands :data:`AGE_BANDS`, and any other numeric column into four equal-width
bands of its schema range.

**Per group** (each with its 95% interval): applications; the decline and referral rates (Wilson); the
realised claim rate (Wilson); the mean probability, i.e. the claim rate the model expects, with the
interval a *calibrated* model's realised rate falls in (±1.96·√Σp(1−p)/n, the Poisson-binomial spread);
and, where the group has at least :attr:`FairnessTolerance.min_rows` rows and
:attr:`~FairnessTolerance.min_each_outcome` claims and non-claims, kappa at the policy's screen
(bootstrap) and AUC (Hanley–McNeil).

**The check** compares each group with the rest of the same column's rows:

- *calibration*: the group's gap (realised minus expected claim rate) against the rest's. Under a
  calibrated model both gaps are noise with variance Σp(1−p)/n², so the difference is flagged when it
  exceeds ``calibration`` (the tolerance, in claim-rate points) plus z standard errors;
- *decline rate*: the group's decline rate against the rest's, flagged beyond ``decline_rate`` points
  plus z standard errors. A group whose applicants really are riskier is declined more often; the
  tolerance is the disparity the insurer accepts, and the calibration check says whether the model's
  probabilities for that group are right.

z is Bonferroni's for every comparison of the table at once (two per group): a month of 32 groups tests
64 differences, and an i.i.d. month should raise no flag 95% of the time, not 5% of its comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from claims_platform.core import schema
from claims_platform.core.policy import DECLINE, REFER

AGE_BANDS: tuple[tuple[int, int], ...] = ((18, 34), (35, 49), (50, 64), (65, 95))
Z95 = NormalDist().inv_cdf(0.975)
GROUP_COLUMNS = (
    "column",
    "group",
    "applications",
    "decline_rate",
    "decline_low",
    "decline_high",
    "refer_rate",
    "refer_low",
    "refer_high",
    "claim_rate",
    "claim_low",
    "claim_high",
    "mean_probability",
    "expected_low",
    "expected_high",
    "kappa",
    "kappa_low",
    "kappa_high",
    "auc",
    "auc_low",
    "auc_high",
    "calibration_vs_rest",
    "calibration_margin",
    "decline_vs_rest",
    "decline_margin",
    "flag",
)


@dataclass(frozen=True)
class FairnessTolerance:
    """How far a group may depart from the rest before the check flags it (beyond its own interval)."""

    calibration: float = 0.02  # realised-minus-expected claim rate, group against the rest, in rate points
    decline_rate: float = 0.05  # decline rate, group against the rest, in rate points
    family_confidence: float = 0.95  # of the whole table: no flag on a fair month this often
    min_rows: int = 200  # kappa and AUC only for groups this large ...
    min_each_outcome: int = 10  # ... with at least this many claims and non-claims

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def z(self, comparisons: int) -> float:
        """The two-sided z of each of ``comparisons`` tests for the table's family-wise confidence."""
        return NormalDist().inv_cdf(1.0 - (1.0 - self.family_confidence) / (2.0 * max(comparisons, 1)))


def group_labels(values: pd.Series, column: str) -> pd.Series:
    """Each row's group of protected ``column`` (as text): its level, or its band of a numeric column."""
    spec = schema.COLUMNS_BY_NAME[column]
    if spec.levels is not None:
        return values.astype("object").map(
            lambda v: "missing" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v)
        )
    bands = AGE_BANDS if column == "age" else _equal_bands(float(spec.low), float(spec.high))
    edges = [low for low, _ in bands[1:]]
    index = np.searchsorted(edges, values.to_numpy(dtype="float64"), side="right")
    names = np.array([f"{low:g}–{high:g}" for low, high in bands], dtype=object)
    labels = pd.Series(names[index], index=values.index, dtype="object")
    return labels.where(values.notna(), "missing")


def _equal_bands(low: float, high: float) -> tuple[tuple[float, float], ...]:
    edges = np.linspace(low, high, 5)
    return tuple((float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True))


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound at 0 and at small n)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def auc_interval(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """AUC with its 95% interval (Hanley and McNeil's standard error)."""
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, p))
    positives, negatives = float(y.sum()), float(len(y) - y.sum())
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    half = Z95 * np.sqrt(max(variance, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


@dataclass(frozen=True)
class _Totals:
    """What a set of rows sums to: enough to compare any group with the rest of its column."""

    n: float
    claims: float
    expected: float  # Σp
    variance: float  # Σp(1−p)
    declines: float

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray, declined: np.ndarray) -> _Totals:
        return cls(
            float(len(y)), float(y.sum()), float(p.sum()), float((p * (1 - p)).sum()), float(declined.sum())
        )

    def __sub__(self, other: _Totals) -> _Totals:
        return _Totals(*(a - b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))

    @property
    def gap(self) -> float:
        return (self.claims - self.expected) / self.n

    @property
    def decline_rate(self) -> float:
        return self.declines / self.n


def group_table(
    frame: pd.DataFrame,
    y: Sequence[int],
    p: Sequence[float],
    decisions: Sequence[str],
    columns: Sequence[str],
    tolerance: FairnessTolerance = FairnessTolerance(),
    *,
    refer_at: float,
) -> pd.DataFrame:
    """One row per group of each of ``columns`` (protected, in ``frame``): rates with their intervals,
    the comparison with the rest of the column, and the flag (empty when none); in :data:`GROUP_COLUMNS`."""
    y_all = np.asarray(y, dtype=np.int64)
    p_all = np.asarray(p, dtype=np.float64)
    decided = np.asarray(decisions, dtype=object)
    declined, referred = decided == DECLINE, decided == REFER
    labels = {column: group_labels(frame[column], column).to_numpy() for column in columns}
    comparisons = 2 * sum(len(np.unique(v)) for v in labels.values() if len(np.unique(v)) > 1)
    z = tolerance.z(comparisons)
    whole = _Totals.of(y_all, p_all, declined)
    rows = []
    for column in columns:
        groups = labels[column]
        for group in _ordered(np.unique(groups), column):
            rows_in = groups == group
            yg, pg = y_all[rows_in], p_all[rows_in]
            inside = _Totals.of(yg, pg, declined[rows_in])
            rest = whole - inside
            rows.append(
                {
                    "column": column,
                    "group": str(group),
                    **_rates(inside, int(referred[rows_in].sum())),
                    **_ranking(yg, pg, refer_at, tolerance),
                    **_against_rest(inside, rest, z, tolerance),
                }
            )
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))


def _ordered(groups: np.ndarray, column: str) -> list[str]:
    if schema.COLUMNS_BY_NAME[column].levels is not None:
        return sorted(groups, key=lambda g: (g == "missing", g))
    return sorted(groups, key=lambda g: (g == "missing", float(g.split("–")[0]) if g != "missing" else 0.0))


def _rates(inside: _Totals, refers: int) -> dict[str, float]:
    n = inside.n
    decline_low, decline_high = wilson(inside.declines, n)
    refer_low, refer_high = wilson(refers, n)
    claim_low, claim_high = wilson(inside.claims, n)
    mean = inside.expected / n
    spread = Z95 * np.sqrt(inside.variance) / n
    return {
        "applications": int(n),
        "decline_rate": inside.decline_rate,
        "decline_low": decline_low,
        "decline_high": decline_high,
        "refer_rate": refers / n,
        "refer_low": refer_low,
        "refer_high": refer_high,
        "claim_rate": inside.claims / n,
        "claim_low": claim_low,
        "claim_high": claim_high,
        "mean_probability": mean,
        "expected_low": max(0.0, mean - spread),
        "expected_high": min(1.0, mean + spread),
    }


def _ranking(y: np.ndarray, p: np.ndarray, refer_at: float, tolerance: FairnessTolerance) -> dict[str, float]:
    from claims_platform.training.metrics import kappa_interval, realised_kappa

    claims = int(y.sum())
    large = len(y) >= tolerance.min_rows and min(claims, len(y) - claims) >= tolerance.min_each_outcome
    if not large:
        return dict.fromkeys(("kappa", "kappa_low", "kappa_high", "auc", "auc_low", "auc_high"), float("nan"))
    flagged = p >= refer_at
    kappa_low, kappa_high = kappa_interval(y, flagged)
    auc, auc_low, auc_high = auc_interval(y, p)
    return {
        "kappa": realised_kappa(y, flagged),
        "kappa_low": kappa_low,
        "kappa_high": kappa_high,
        "auc": auc,
        "auc_low": auc_low,
        "auc_high": auc_high,
    }


def _against_rest(inside: _Totals, rest: _Totals, z: float, tolerance: FairnessTolerance) -> dict:
    if rest.n <= 0:  # the column has one group: nothing to compare with
        return {"calibration_vs_rest": float("nan"), "calibration_margin": float("nan"),
                "decline_vs_rest": float("nan"), "decline_margin": float("nan"), "flag": ""}  # fmt: skip
    calibration = inside.gap - rest.gap
    calibration_se = np.sqrt(inside.variance / inside.n**2 + rest.variance / rest.n**2)
    decline = inside.decline_rate - rest.decline_rate
    decline_se = np.sqrt(
        _binomial_variance(inside.decline_rate, inside.n) + _binomial_variance(rest.decline_rate, rest.n)
    )
    calibration_margin = tolerance.calibration + z * float(calibration_se)
    decline_margin = tolerance.decline_rate + z * float(decline_se)
    flags = []
    if abs(calibration) > calibration_margin:
        flags.append(f"claims {calibration:+.1%} against expected, compared with the rest")
    if abs(decline) > decline_margin:
        flags.append(f"declined {decline:+.1%} compared with the rest")
    return {
        "calibration_vs_rest": float(calibration),
        "calibration_margin": calibration_margin,
        "decline_vs_rest": float(decline),
        "decline_margin": decline_margin,
        "flag": "; ".join(flags),
    }


def _binomial_variance(rate: float, n: float) -> float:
    # At a rate of 0 or 1 the plug-in variance is 0; half a row either way keeps the interval honest.
    shrunk = (rate * n + 0.5) / (n + 1.0)
    return shrunk * (1.0 - shrunk) / n


def fairness_flags(table: pd.DataFrame) -> list[str]:
    """One line per flagged group: ``"gender 1: claims +3.1% against expected, compared with the rest"``."""
    flagged = table[table["flag"].astype(bool)]
    return [f"{row.column} {row.group}: {row.flag}" for row in flagged.itertuples()]


def table_records(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-ready records (rates rounded to 5 places; NaN as None)."""
    rounded = table.round(5).astype(object).where(table.notna(), None)
    return rounded.to_dict(orient="records")


def protected_in(declared: Mapping[str, str]) -> tuple[str, ...]:
    """Every declared protected column (excluded or monitored), in schema order: each is reported by group."""
    return tuple(name for name in schema.FEATURES if name in declared)
