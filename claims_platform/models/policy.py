"""From a calibrated claim probability to a risk band and a decision (pure).

The thresholds are defined here once; the scoring asset's run config may override them, and the
values used are recorded with every scored day.
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
