"""The ONE decision policy: from a calibrated claim probability to accept / refer / decline (pure).

The thresholds are a BUSINESS setting, defined here once, not a property of each model: the
platform's probabilities are calibrated, so "p >= 0.30" means the same risk whichever model
produced it, and the risk appetite it encodes belongs to underwriting, not to the training run.
The same policy is used twice, and must be: promotion compares candidate and champion on the
decision this policy makes (its SCREEN, see :meth:`DecisionPolicy.screen`), and scoring applies it.
Each champion decision records the policy it judged on and hands it to the model in force, so the
days of a month are scored with the policy their model was chosen under — a backfill of an old day
reproduces it, even after the setting changed. docs/models.md says more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ACCEPT, REFER, DECLINE = "accept", "refer", "decline"
DECISIONS = (ACCEPT, REFER, DECLINE)

# Upper edges of the risk bands, on the calibrated probability of a claim.
RISK_BANDS = (("low", 0.05), ("moderate", 0.15), ("high", 0.40), ("very high", 1.0))


@dataclass(frozen=True)
class DecisionPolicy:
    """Accept below ``refer_at``; refer to an underwriter below ``decline_at``; decline above.

    Defaults: an applicant whose claim probability is at least the portfolio's 15% base rate ×2 goes
    to an underwriter; one more likely than not to claim is declined.
    """

    refer_at: float = 0.30
    decline_at: float = 0.50

    def __post_init__(self) -> None:
        if not 0.0 < self.refer_at <= self.decline_at <= 1.0:
            raise ValueError(f"need 0 < refer_at <= decline_at <= 1, got {self.refer_at}, {self.decline_at}")

    @classmethod
    def from_dict(cls, values: dict) -> DecisionPolicy:
        """The policy recorded in a decision (``as_dict`` form)."""
        return cls(refer_at=float(values["refer_at"]), decline_at=float(values["decline_at"]))

    def as_dict(self) -> dict[str, float]:
        """The thresholds as plain values, for records and metadata."""
        return {"refer_at": self.refer_at, "decline_at": self.decline_at}

    def screen(self, probability: np.ndarray) -> np.ndarray:
        """True where the applicant is NOT accepted automatically (referred or declined).

        This is the decision that decides who enters the book, and with it the claims reserve, so
        it is the one promotion judges models on (Cohen's kappa of the screen against the outcome).
        """
        return np.asarray(probability, dtype="float64") >= self.refer_at

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """The decision for each probability."""
        p = np.asarray(probability, dtype="float64")
        if np.isnan(p).any():
            raise ValueError(f"{int(np.isnan(p).sum())} missing probabilities: no decision can be made for them")
        return np.where(p >= self.decline_at, DECLINE, np.where(p >= self.refer_at, REFER, ACCEPT))


def risk_band(probability: np.ndarray) -> np.ndarray:
    """The risk band of each probability."""
    edges = np.array([edge for _, edge in RISK_BANDS[:-1]])
    labels = np.array([name for name, _ in RISK_BANDS], dtype=object)
    return labels[np.searchsorted(edges, np.asarray(probability, dtype="float64"), side="right")]


def decision_counts(decisions: pd.Series) -> dict[str, int]:
    """Count of each decision, every decision present (zeros included)."""
    counts = decisions.value_counts()
    return {d: int(counts.get(d, 0)) for d in DECISIONS}
