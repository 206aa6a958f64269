"""The champion chain as pure functions: who scores next month, and why.

The chain is PARTITIONED STATE. The decision for training month M starts from the state left by
the decision for M−1 (never from the registry's current alias), so re-deciding any month — a
re-materialization, a backfill of history — gives the decision it gave the first time.

The state (:class:`ChainState`) is the stack of champions still standing (``lineage``; the last
one is the champion) and the versions withdrawn by rollbacks. A decision:

1. judges the month's candidate and the incumbent on the SAME holdout, with the ONE decision
   policy scoring uses (:mod:`claims_platform.core.policy`) and the quality gate
   (:mod:`claims_platform.models.gate`) — :func:`judge`;
2. advances the state: a promotion pushes the candidate, anything else keeps it — :func:`advance`;
   with ``promote=False`` it only records what would have happened;
3. may be followed by rollbacks, each withdrawing the champion and restoring the one before it
   — :func:`roll_back`.

Promotion needs the candidate to beat the incumbent by more than the holdout's noise, on the measure
the policy itself optimises: the VALUE per application of its decisions (margin earned less claims and
reviews, :func:`~claims_platform.core.policy.realised_values`). A PAIRED bootstrap of the difference
on the same rows (:func:`paired_value_comparison`) promotes only when the lower end of its interval is
above a margin; a strict ``>`` on point estimates would promote on noise. Kappa of the policy's screen
is compared the same way and reported beside it (:func:`paired_kappa_comparison`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from claims_platform.core.policy import DecisionPolicy
from claims_platform.training.metrics import kappa_from_counts

Outcome = Literal["first champion", "promoted", "kept", "ineligible", "no model"]


# ------------------------------------------------------------------------------------ the state


@dataclass(frozen=True)
class ModelRef:
    """A registered model version as the chain knows it: enough to score with it and to warm-start from it."""

    version: int
    model_uri: str  # where its files are (the version's artifact location)
    training_month: str  # "YYYY-MM" of the window it was trained on
    params: dict[str, Any] = field(default_factory=dict)  # its tuned hyperparameters
    promoted_in: str = ""  # "YYYY-MM": the decision that made it champion (it scores from the month after)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelRef:
        """A reference from its record form."""
        return cls(
            version=int(values["version"]),
            model_uri=str(values["model_uri"]),
            training_month=str(values["training_month"]),
            params=dict(values.get("params") or {}),
            promoted_in=str(values.get("promoted_in", "")),
        )


@dataclass(frozen=True)
class Withdrawal:
    """A champion withdrawn by a rollback."""

    version: int
    restored: int
    reason: str
    requested_by: str
    month: str  # the training month whose decision was rolled back
    at: str  # ISO instant


@dataclass(frozen=True)
class ChainState:
    """The champions still standing (oldest first; the last is the champion) and the withdrawn ones."""

    lineage: tuple[ModelRef, ...] = ()
    withdrawn: tuple[Withdrawal, ...] = ()

    @property
    def champion(self) -> ModelRef | None:
        """The model in force after this decision, if any."""
        return self.lineage[-1] if self.lineage else None

    @property
    def previous_champion(self) -> ModelRef | None:
        """The champion a rollback would restore, if any."""
        return self.lineage[-2] if len(self.lineage) > 1 else None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the decision record (JSON)."""
        return {
            "lineage": [asdict(ref) for ref in self.lineage],
            "withdrawn": [asdict(w) for w in self.withdrawn],
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> ChainState:
        """The state recorded by a decision (``None``: the chain's start, no champion yet)."""
        if not values:
            return cls()
        return cls(
            lineage=tuple(ModelRef.from_dict(ref) for ref in values.get("lineage", ())),
            withdrawn=tuple(Withdrawal(**w) for w in values.get("withdrawn", ())),
        )


# ------------------------------------------------------------------------- the paired comparison


@dataclass(frozen=True)
class Comparison:
    """Candidate versus incumbent on the same rows, by one measure: both values, their difference and its interval."""

    metric: str  # "value per application" (what promotion judges) or "kappa" (reported beside it)
    candidate: float
    incumbent: float
    difference: float  # candidate − incumbent
    low: float  # the difference's bootstrap interval
    high: float
    confidence: float
    resamples: int
    margin: float
    rows: int

    @property
    def candidate_better(self) -> bool:
        """The candidate beats the incumbent by more than the margin AND the holdout's noise."""
        return self.low > self.margin

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the audit record."""
        return {**asdict(self), "candidate_better": self.candidate_better}

    def describe(self) -> str:
        """One clause: both values, the difference and its interval."""
        digits = 2 if self.metric == VALUE_METRIC else 4
        return (
            f"{self.metric} {self.candidate:.{digits}f} vs {self.incumbent:.{digits}f}, difference {self.difference:+.{digits}f} "
            f"({self.confidence:.0%} interval {self.low:+.{digits}f}..{self.high:+.{digits}f})"
        )


VALUE_METRIC = "value per application"


def _bootstrap(counts: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The observed cell counts (row 0) and ``resamples`` multinomial redraws of as many rows."""
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    return np.vstack([counts, draws])


def _percentiles(difference: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(difference[1:], [tail, 1.0 - tail])
    return float(low), float(high)


def paired_value_comparison(
    policy: DecisionPolicy,
    y: np.ndarray,
    candidate_p: np.ndarray,
    incumbent_p: np.ndarray,
    *,
    margin: float = 0.0,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of the value per application of the policy's decisions, candidate − incumbent.

    A row's value depends only on its outcome and the two decisions (3 × 3 × 2 cells), so resampling rows
    is a multinomial draw over 18 cells: fast however large the holdout, and paired (both models judged
    on the same resampled rows). What promotion judges: the policy's own measure, in the costs' currency.
    """
    y = np.asarray(y, dtype=np.int64)
    c, i = policy.decision_index(candidate_p), policy.decision_index(incumbent_p)
    if not len(y) == len(c) == len(i):
        raise ValueError(f"{len(y)} outcomes, {len(c)} candidate and {len(i)} incumbent probabilities")
    if len(y) == 0:
        raise ValueError("no holdout rows to compare on")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    cell = y * 9 + c * 3 + i
    draws = _bootstrap(np.bincount(cell, minlength=18), resamples, seed)
    values = policy.costs.values(np.array([0, 1]))  # (outcome, decision)
    cells = np.arange(18)
    value_c = values[cells // 9, (cells // 3) % 3]
    value_i = values[cells // 9, cells % 3]
    cand, inc = draws @ value_c / len(y), draws @ value_i / len(y)
    low, high = _percentiles(cand - inc, confidence)
    return Comparison(
        VALUE_METRIC,
        float(cand[0]),
        float(inc[0]),
        float(cand[0] - inc[0]),
        low,
        high,
        confidence,
        resamples,
        margin,
        len(y),
    )


def paired_kappa_comparison(
    y: np.ndarray,
    candidate_flags: np.ndarray,
    incumbent_flags: np.ndarray,
    *,
    margin: float = 0.0,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of kappa(candidate) − kappa(incumbent) on the same holdout rows.

    Each row falls in one of 8 cells (outcome × candidate's flag × incumbent's flag); resampling
    rows with replacement is a multinomial draw over those cells, so ``resamples`` bootstrap
    replicates cost a few milliseconds however large the holdout. Pairing matters: both models
    are judged on the same resampled rows, so the rows' own difficulty cancels out of the
    difference. The interval is the percentile interval at ``confidence``; seeded, so the same
    inputs always give the same decision.
    """
    y = np.asarray(y, dtype=bool)
    c = np.asarray(candidate_flags, dtype=bool)
    i = np.asarray(incumbent_flags, dtype=bool)
    if not len(y) == len(c) == len(i):
        raise ValueError(f"{len(y)} outcomes, {len(c)} candidate flags, {len(i)} incumbent flags")
    if len(y) == 0:
        raise ValueError("no holdout rows to compare on")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    cell = y.astype(int) * 4 + c.astype(int) * 2 + i.astype(int)
    draws = _bootstrap(np.bincount(cell, minlength=8), resamples, seed)
    y0, y1 = draws[:, 0:4], draws[:, 4:8]
    # Cell order within an outcome: (c, i) = (0,0), (0,1), (1,0), (1,1).
    cand = kappa_from_counts(
        tp=y1[:, 2] + y1[:, 3], fp=y0[:, 2] + y0[:, 3], fn=y1[:, 0] + y1[:, 1], tn=y0[:, 0] + y0[:, 1]
    )
    inc = kappa_from_counts(
        tp=y1[:, 1] + y1[:, 3], fp=y0[:, 1] + y0[:, 3], fn=y1[:, 0] + y1[:, 2], tn=y0[:, 0] + y0[:, 2]
    )
    low, high = _percentiles(cand - inc, confidence)
    return Comparison(
        "kappa",
        float(cand[0]),
        float(inc[0]),
        float(cand[0] - inc[0]),
        low,
        high,
        confidence,
        resamples,
        margin,
        len(y),
    )


# ------------------------------------------------------------------------------------ the verdict


@dataclass(frozen=True)
class PromotionRules:
    """How a candidate may replace the incumbent."""

    margin: float = (
        0.0  # value per application (the costs' currency) the candidate must gain beyond the holdout's noise
    )
    confidence: float = 0.95  # of the paired bootstrap interval
    resamples: int = 2000
    max_champion_age_months: int = 6  # an incumbent trained longer ago than this is stale
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the audit record."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """What the evidence says: promote the candidate or not, and why (one sentence)."""

    outcome: Outcome
    promote: bool
    reason: str


def months_between(earlier: str, later: str) -> int:
    """Whole months from ``earlier`` to ``later`` ("YYYY-MM" or longer ISO keys)."""
    (y0, m0), (y1, m1) = (map(int, key[:7].split("-")) for key in (earlier, later))
    return (y1 - y0) * 12 + (m1 - m0)


def incumbent_staleness(incumbent: ModelRef, month: str, rules: PromotionRules) -> list[str]:
    """Why the incumbent is stale at training month ``month`` (empty when it is not)."""
    age = months_between(incumbent.training_month, month)
    if age > rules.max_champion_age_months:
        return [
            f"stale: trained on a window ending {incumbent.training_month}, {age} months before "
            f"{month[:7]} (max_champion_age_months={rules.max_champion_age_months})"
        ]
    return []


def judge(
    candidate_version: int | None,
    candidate_problems: list[str],
    incumbent: ModelRef | None,
    incumbent_problems: list[str],
    comparison: Comparison | None,
) -> Verdict:
    """The verdict on one month's candidate. Pure: the same evidence always gives the same verdict.

    - a candidate that failed training or the quality gate is ineligible: the incumbent stays
      (outcome "no model" when there is none yet: nothing can score next month);
    - no incumbent: the eligible candidate becomes the first champion;
    - an incumbent that fails the gate on this holdout, cannot be scored, or is stale is replaced
      by the eligible candidate;
    - otherwise the candidate is promoted only when ``comparison`` says it is better beyond noise.
    """
    if candidate_problems or candidate_version is None:
        problems = "; ".join(candidate_problems) or "no candidate"
        if incumbent is None:
            return Verdict("no model", False, f"candidate ineligible: {problems}; no champion yet")
        return Verdict(
            "ineligible", False, f"candidate ineligible: {problems}; champion v{incumbent.version} kept"
        )
    if incumbent is None:
        return Verdict("first champion", True, f"first eligible model: v{candidate_version} becomes champion")
    if incumbent_problems:
        return Verdict(
            "promoted",
            True,
            f"champion v{incumbent.version} {'; '.join(incumbent_problems)}: replaced by eligible v{candidate_version}",
        )
    if comparison is None:
        raise ValueError("a comparison is needed when both candidate and incumbent are eligible")
    interval = comparison.describe()
    if comparison.candidate_better:
        return Verdict(
            "promoted",
            True,
            f"v{candidate_version} beats v{incumbent.version} beyond noise: {interval} > margin {comparison.margin}",
        )
    return Verdict(
        "kept",
        False,
        f"v{candidate_version} not better beyond noise: {interval}, lower end not above margin {comparison.margin}; "
        f"champion v{incumbent.version} kept",
    )


def advance(state: ChainState, verdict: Verdict, candidate: ModelRef | None, promote: bool) -> ChainState:
    """The state after a verdict: the candidate pushed on the lineage when promoted for real."""
    if verdict.promote and promote:
        if candidate is None:
            raise ValueError("a promotion needs the candidate's reference")
        return replace(state, lineage=(*state.lineage, candidate))
    return state


class RollbackRefused(ValueError):
    """A rollback that cannot be done (nothing to restore)."""


def roll_back(
    state: ChainState, *, reason: str, requested_by: str, month: str, at: str
) -> tuple[ChainState, Withdrawal]:
    """Withdraw the champion and restore the one before it; ``(new state, the withdrawal)``.

    Each rollback goes one step further back along the lineage. The first champion ever cannot be
    rolled back (nothing would be left to score).
    """
    if state.champion is None:
        raise RollbackRefused(f"nothing to roll back in {month[:7]}: there is no champion")
    if state.previous_champion is None:
        raise RollbackRefused(
            f"cannot roll back {month[:7]}: v{state.champion.version} is the only champion left in the lineage, "
            "and withdrawing it would leave nothing to score"
        )
    withdrawal = Withdrawal(
        version=state.champion.version,
        restored=state.previous_champion.version,
        reason=reason,
        requested_by=requested_by,
        month=month[:7],
        at=at,
    )
    return ChainState(lineage=state.lineage[:-1], withdrawn=(*state.withdrawn, withdrawal)), withdrawal
