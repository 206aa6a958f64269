"""The ONE decision policy: from a calibrated claim probability to accept / refer / decline (pure).

**Derived from costs.** The thresholds are not two magic numbers but the decisions of least expected
cost for a calibrated probability ``p``, given the business's costs (:class:`BusinessCosts`, defined
here once): an accepted policy earns its premium margin ``M`` and pays the average claim ``C`` if it
claims; a declined one earns and costs nothing; a referred one costs an underwriter's review ``R``,
after which the underwriter decides right with probability ``a`` (accepts a non-claimant, declines a
claimant). The expected values are lines in ``p``:

- accept: ``M − p·C``
- refer: ``(1 − p)·a·M + p·(1 − a)·(M − C) − R``
- decline: ``0``

so the policy accepts below ``refer_at``, refers up to ``decline_at`` and declines above, where the
lines cross (:meth:`BusinessCosts.thresholds`). Refer means "the model is not sure enough for the cost
of being wrong": the band is as wide as a review is worth. With the defaults (a £12,000 claim, a £2,400
margin, a £200 review right three times in four) it runs from 10.3% to 38.1%; the former fixed 30%/50%
referred one application in a hundred.

The same policy is used twice, and must be: promotion compares candidate and champion on the value of
the decisions this policy makes (:func:`realised_values`), and scoring applies it. Each champion
decision records the policy it judged on (thresholds and costs) and hands it to the model in force, so
the days of a month are scored with the policy their model was chosen under — a backfill of an old
day reproduces it, even after the setting changed. docs/models.md says more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

ACCEPT, REFER, DECLINE = "accept", "refer", "decline"
DECISIONS = (ACCEPT, REFER, DECLINE)

# Upper edges of the risk bands, on the calibrated probability of a claim.
RISK_BANDS = (("low", 0.05), ("moderate", 0.15), ("high", 0.40), ("very high", 1.0))


@dataclass(frozen=True)
class BusinessCosts:
    """What a decision costs and earns, per application (one currency, the reserve's)."""

    claim_cost: float = 12_000.0  # the average claim
    premium_margin: float = (
        2_400.0  # what an accepted policy earns when it does not claim (premium less expenses)
    )
    review_cost: float = 200.0  # an underwriter's review of a referred application
    review_accuracy: float = 0.75  # share of referred applicants the underwriter decides right

    def __post_init__(self) -> None:
        if not 0 < self.premium_margin < self.claim_cost:
            raise ValueError(
                f"need 0 < premium_margin < claim_cost, got {self.premium_margin}, {self.claim_cost}"
            )
        if self.review_cost < 0:
            raise ValueError(f"review_cost must not be negative, got {self.review_cost}")
        if not 0.5 <= self.review_accuracy <= 1.0:
            raise ValueError(f"review_accuracy must be in [0.5, 1], got {self.review_accuracy}")

    def values(self, claimed: np.ndarray) -> np.ndarray:
        """The value of (accept, refer, decline) for each outcome ``claimed`` (0/1): shape (n, 3)."""
        y = np.asarray(claimed, dtype="float64").reshape(-1, 1)
        m, c, r, a = self.premium_margin, self.claim_cost, self.review_cost, self.review_accuracy
        accept = m - c * y
        refer = (1 - y) * a * m + y * (1 - a) * (m - c) - r
        return np.hstack([accept, refer, np.zeros_like(y)])

    def expected_values(self, probability: np.ndarray) -> np.ndarray:
        """Expected value of (accept, refer, decline) at each claim probability: shape (n, 3)."""
        p = np.asarray(probability, dtype="float64").reshape(-1, 1)
        return (1 - p) * self.values(np.zeros(1)) + p * self.values(np.ones(1))

    def thresholds(self) -> tuple[float, float]:
        """(refer_at, decline_at): where the expected-value lines cross; refer_at == decline_at when a review
        is never worth its cost (then the policy accepts or declines at the break-even ``M / C``)."""
        m, c, r, a = self.premium_margin, self.claim_cost, self.review_cost, self.review_accuracy
        refer_at = (m * (1 - a) + r) / (a * c + m * (1 - 2 * a))
        decline_at = (a * m - r) / (a * m + (1 - a) * (c - m))
        if not 0 < refer_at < decline_at < 1:
            return m / c, m / c
        return refer_at, decline_at

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


_DEFAULT_COSTS = BusinessCosts()
_DEFAULT_REFER_AT, _DEFAULT_DECLINE_AT = _DEFAULT_COSTS.thresholds()


@dataclass(frozen=True)
class DecisionPolicy:
    """Accept below ``refer_at``; refer to an underwriter below ``decline_at``; decline above; and the costs
    the decisions are valued with. :meth:`from_costs` derives the thresholds (the default policy is the
    default costs' thresholds); a policy recorded before costs kept its fixed thresholds."""

    refer_at: float = _DEFAULT_REFER_AT
    decline_at: float = _DEFAULT_DECLINE_AT
    costs: BusinessCosts = field(default_factory=BusinessCosts)

    def __post_init__(self) -> None:
        if not 0.0 < self.refer_at <= self.decline_at <= 1.0:
            raise ValueError(f"need 0 < refer_at <= decline_at <= 1, got {self.refer_at}, {self.decline_at}")

    @classmethod
    def from_costs(cls, costs: BusinessCosts) -> DecisionPolicy:
        """The policy of least expected cost under ``costs``."""
        refer_at, decline_at = costs.thresholds()
        return cls(refer_at=refer_at, decline_at=decline_at, costs=costs)

    @classmethod
    def from_dict(cls, values: dict) -> DecisionPolicy:
        """The policy recorded in a decision (``as_dict`` form); one recorded without costs is valued with the defaults."""
        costs = BusinessCosts(**values["costs"]) if values.get("costs") else BusinessCosts()
        return cls(refer_at=float(values["refer_at"]), decline_at=float(values["decline_at"]), costs=costs)

    def as_dict(self) -> dict:
        """The thresholds and the costs as plain values, for records and metadata."""
        return {"refer_at": self.refer_at, "decline_at": self.decline_at, "costs": self.costs.as_dict()}

    def screen(self, probability: np.ndarray) -> np.ndarray:
        """True where the applicant is NOT accepted automatically (referred or declined).

        This decides who enters the book, and with it the claims reserve: kappa is reported on it.
        """
        return np.asarray(probability, dtype="float64") >= self.refer_at

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """The decision for each probability."""
        p = np.asarray(probability, dtype="float64")
        if np.isnan(p).any():
            raise ValueError(
                f"{int(np.isnan(p).sum())} missing probabilities: no decision can be made for them"
            )
        return np.where(p >= self.decline_at, DECLINE, np.where(p >= self.refer_at, REFER, ACCEPT))

    def decision_index(self, probability: np.ndarray) -> np.ndarray:
        """0 accept, 1 refer, 2 decline (the columns of :meth:`BusinessCosts.values`)."""
        p = np.asarray(probability, dtype="float64")
        return (p >= self.refer_at).astype(np.int64) + (p >= self.decline_at).astype(np.int64)

    def expected_cost(self, probability: np.ndarray) -> float:
        """Expected cost per application of this policy's decisions at these probabilities: claims and reviews
        less the premium margin earned (negative: the applications earn more than they cost)."""
        p = np.asarray(probability, dtype="float64")
        if not len(p):
            return 0.0
        values = self.costs.expected_values(p)
        return float(-values[np.arange(len(p)), self.decision_index(p)].mean())


# The policy the platform used before decisions were derived from costs: what its partitions are compared with.
FIXED_POLICY = DecisionPolicy(refer_at=0.30, decline_at=0.50)


def realised_values(policy: DecisionPolicy, probability: np.ndarray, claimed: np.ndarray) -> np.ndarray:
    """The value each application's decision turned out to have, once its outcome is known (the promotion's
    measure: its mean is the value per application)."""
    return policy.costs.values(claimed)[
        np.arange(len(np.asarray(claimed))), policy.decision_index(probability)
    ]


def risk_band(probability: np.ndarray) -> np.ndarray:
    """The risk band of each probability."""
    edges = np.array([edge for _, edge in RISK_BANDS[:-1]])
    labels = np.array([name for name, _ in RISK_BANDS], dtype=object)
    return labels[np.searchsorted(edges, np.asarray(probability, dtype="float64"), side="right")]


def decision_counts(decisions: pd.Series) -> dict[str, int]:
    """Count of each decision, every decision present (zeros included)."""
    counts = decisions.value_counts()
    return {d: int(counts.get(d, 0)) for d in DECISIONS}
