"""Who scores next month: the champion/challenger rule (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of comparing a candidate with the champion on the candidate's holdout."""

    promote: bool
    reason: str
    candidate_version: int
    candidate_kappa: float
    champion_version: int | None
    champion_kappa: float | None

    def as_dict(self) -> dict:
        """The decision as plain values, for the audit record."""
        return asdict(self)


def decide_promotion(
    candidate_version: int, candidate_kappa: float, champion_version: int | None, champion_kappa: float | None
) -> PromotionDecision:
    """Promote the candidate only if its kappa is strictly higher; ties and worse keep the champion.

    Both kappas must come from the same holdout rows. The first model ever is promoted.
    """
    if champion_version is None:
        return PromotionDecision(True, "first model: no champion yet", candidate_version, candidate_kappa, None, None)
    if champion_version == candidate_version:
        return PromotionDecision(
            False, "candidate already is the champion", candidate_version, candidate_kappa, champion_version, champion_kappa
        )
    if champion_kappa is None:
        raise ValueError("champion_kappa is required when a champion exists")
    if candidate_kappa > champion_kappa:
        reason = f"candidate kappa {candidate_kappa:.4f} > champion kappa {champion_kappa:.4f}"
        return PromotionDecision(True, reason, candidate_version, candidate_kappa, champion_version, champion_kappa)
    verdict = "ties" if candidate_kappa == champion_kappa else "is below"
    reason = f"candidate kappa {candidate_kappa:.4f} {verdict} champion kappa {champion_kappa:.4f}: champion kept"
    return PromotionDecision(False, reason, candidate_version, candidate_kappa, champion_version, champion_kappa)
