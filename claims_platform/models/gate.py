"""The quality gate a model must pass on a holdout before it may score (pure).

Beside ranking (AUC) and overall calibration (ECE) it checks the reserve's own number: among the
holdout applicants the policy would ACCEPT, actual claims against expected (Σp). A model that
under-forecasts them by a fifth (a two-month-old model did, on the demo's first scored month) would
under-reserve by as much; it fails when its actual/expected lies outside ``1 ± max_accepted_bias``
beyond the holdout's own noise (1.96 Poisson-binomial standard deviations), so a small holdout is not
refused for chance alone.

Defined once: the candidate's `candidate_quality` check reports it, and the champion decision
enforces it — on the candidate (whatever the check said, it re-reads the verdict stored with the
candidate and re-applies the gate to the holdout predictions) and on the incumbent (an incumbent
that fails it on the newest holdout is replaced by an eligible candidate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class QualityGate:
    """Holdout ROC AUC at least ``min_auc``, calibration error at most ``max_ece``, accepted applicants'
    actual/expected claims within ``1 ± max_accepted_bias`` beyond noise, no missing prediction."""

    min_auc: float = 0.85
    max_ece: float = 0.03
    # The holdout judges the calibrator fitted on the validation slice alone, itself known to only ~5–8% in the
    # low tail after a few months: the band refuses what is clearly beyond that (the demo's first champion
    # under-forecast its accepted applicants' claims by 23%), with the holdout's noise on top.
    max_accepted_bias: float = 0.10

    def __post_init__(self) -> None:
        if not 0.5 <= self.min_auc <= 1.0:
            raise ValueError(f"min_auc must be in [0.5, 1], got {self.min_auc}")
        if not 0.0 < self.max_ece <= 1.0:
            raise ValueError(f"max_ece must be in (0, 1], got {self.max_ece}")
        if not 0.0 < self.max_accepted_bias < 1.0:
            raise ValueError(f"max_accepted_bias must be in (0, 1), got {self.max_accepted_bias}")

    def failures(self, metrics: Mapping[str, float], missing: int = 0) -> list[str]:
        """What fails the gate on holdout ``metrics`` (:func:`~claims_platform.training.metrics.evaluate`),
        each as a sentence; empty when the gate is passed."""
        problems = []
        roc_auc, ece = metrics["roc_auc"], metrics["ece"]
        if missing:
            problems.append(f"{missing} missing predictions")
        if not np.isfinite(roc_auc) or roc_auc < self.min_auc:
            problems.append(f"holdout AUC {roc_auc:.4f} < {self.min_auc}")
        if not np.isfinite(ece) or ece > self.max_ece:
            problems.append(f"holdout ECE {ece:.4f} > {self.max_ece}")
        biased = self.accepted_bias(metrics)
        if biased:
            problems.append(biased)
        return problems

    def accepted_bias(self, metrics: Mapping[str, float]) -> str | None:
        """Why the accepted applicants' claims are outside the band beyond noise, or None (also when unmeasured)."""
        if "accepted_expected_claims" not in metrics:
            return None  # a record from before the gate measured it
        expected, actual = metrics["accepted_expected_claims"], metrics["accepted_actual_claims"]
        noise = 1.96 * metrics["accepted_claims_sd"]
        low, high = (
            expected * (1 - self.max_accepted_bias) - noise,
            expected * (1 + self.max_accepted_bias) + noise,
        )
        if low <= actual <= high:
            return None
        ratio = actual / expected if expected > 0 else float("inf")
        return (
            f"holdout claims among accepted applicants {actual:.0f} against {expected:.1f} expected (ratio {ratio:.2f}): "
            f"outside {low:.0f}..{high:.0f}, the ±{self.max_accepted_bias:.0%} band widened by the holdout's noise"
        )

    def as_dict(self) -> dict[str, float]:
        """The thresholds as plain values, for records and metadata."""
        return asdict(self)
