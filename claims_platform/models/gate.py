"""The quality gate a model must pass on a holdout before it may score (pure).

Defined once: the candidate's `candidate_quality` check reports it, and the champion decision
enforces it — on the candidate (whatever the check said, it re-reads the verdict stored with the
candidate and re-applies the gate to the holdout predictions) and on the incumbent (an incumbent
that fails it on the newest holdout is replaced by an eligible candidate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class QualityGate:
    """Holdout ROC AUC at least ``min_auc``, calibration error at most ``max_ece``, no missing prediction."""

    min_auc: float = 0.85
    max_ece: float = 0.03

    def __post_init__(self) -> None:
        if not 0.5 <= self.min_auc <= 1.0:
            raise ValueError(f"min_auc must be in [0.5, 1], got {self.min_auc}")
        if not 0.0 < self.max_ece <= 1.0:
            raise ValueError(f"max_ece must be in (0, 1], got {self.max_ece}")

    def failures(self, roc_auc: float, ece: float, missing: int = 0) -> list[str]:
        """What fails the gate, each as a sentence; empty when the gate is passed."""
        problems = []
        if missing:
            problems.append(f"{missing} missing predictions")
        if not np.isfinite(roc_auc) or roc_auc < self.min_auc:
            problems.append(f"holdout AUC {roc_auc:.4f} < {self.min_auc}")
        if not np.isfinite(ece) or ece > self.max_ece:
            problems.append(f"holdout ECE {ece:.4f} > {self.max_ece}")
        return problems

    def as_dict(self) -> dict[str, float]:
        """The thresholds as plain values, for records and metadata."""
        return asdict(self)
