"""The champion decision of a month, made (pure but for loading the two models): the candidate and the
incumbent judged on the candidate's holdout at one policy, promotion by the paired comparison, the chain
advanced, and the rollbacks recorded on the month before kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from claims_platform.core.months import shift_month_key
from claims_platform.core.policy import DecisionPolicy
from claims_platform.core.schema import CLAIM_STATUS
from claims_platform.models.champion import PromotionRules
from claims_platform.models.gate import QualityGate


@dataclass(frozen=True)
class Judged:
    """What a decision is judged by: the policy, the quality gate, the promotion rules, and whether it may
    promote (False: record-only)."""

    policy: DecisionPolicy
    gate: QualityGate
    rules: PromotionRules
    promote: bool


def holdout_of(training_set: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    from claims_platform.training.split import out_of_time_split

    if training_set.empty:
        return None, None
    try:
        split = out_of_time_split(training_set)
    except ValueError:
        return None, None  # the candidate's record says why it could not train
    return split.holdout, split.holdout_month


def holdout_metrics(model_uri: str, holdout: pd.DataFrame, holdout_month: str, policy: DecisionPolicy):
    """A model's probabilities and metrics on the holdout of ``holdout_month`` ("YYYY-MM").

    A model registered with a calibrator refitted on that very month (a candidate, or an earlier candidate
    of the same month) is judged with the calibrator it had before it saw it (``evaluated_with``): no model
    is judged on rows it was fitted on.
    """
    from dataclasses import replace

    import numpy as np

    from claims_platform.models.loading import load_scorer_cached
    from claims_platform.training.metrics import evaluate

    scorer = load_scorer_cached(model_uri)
    if scorer.calibrator.get("fitted_on", {}).get("holdout_month") == holdout_month:
        scorer = replace(scorer, calibrator=scorer.calibrator["evaluated_with"])
    p = scorer.predict(holdout)
    missing = int(np.isnan(p).sum())
    metrics = evaluate(holdout[CLAIM_STATUS].to_numpy(), np.nan_to_num(p, nan=0.0), policy.refer_at)
    return p, metrics, missing


@dataclass
class _Evidence:
    """One model's evidence on the holdout: its problems (gate failures, staleness) and its figures."""

    record: dict[str, Any]
    problems: list[str]
    p: Any = None


def _candidate_evidence(candidate_model: dict, holdout, holdout_month, judged: Judged) -> _Evidence:
    evidence = _Evidence({"version": candidate_model.get("version"), "status": candidate_model["status"]}, [])
    if candidate_model["status"] != "trained":
        evidence.problems.append(f"training failed: {candidate_model.get('failure')}")
    elif holdout is None:
        evidence.problems.append("no holdout to judge it on")
    else:
        evidence.p, metrics, missing = holdout_metrics(
            candidate_model["model_uri"], holdout, holdout_month, judged.policy
        )
        evidence.problems += judged.gate.failures(metrics, missing)
        evidence.record["holdout_metrics"] = metrics
    evidence.record["problems"] = evidence.problems
    return evidence


def _incumbent_evidence(incumbent, month: str, holdout, holdout_month, judged: Judged) -> _Evidence | None:
    from claims_platform.models.champion import incumbent_staleness

    if incumbent is None:
        return None
    evidence = _Evidence({"version": incumbent.version, "training_month": incumbent.training_month}, [])
    evidence.problems += incumbent_staleness(incumbent, month, judged.rules)
    if holdout is not None:
        evidence.p, metrics, missing = holdout_metrics(
            incumbent.model_uri, holdout, holdout_month, judged.policy
        )
        evidence.problems += judged.gate.failures(metrics, missing)
        evidence.record["holdout_metrics"] = metrics
    evidence.record["problems"] = evidence.problems
    return evidence


def _comparisons(holdout, candidate: _Evidence, incumbent: _Evidence | None, judged: Judged):
    """The paired comparisons of candidate and incumbent on the same holdout rows: expected value per
    application (what promotion judges) and kappa (reported beside it); None where one has no probabilities."""
    from claims_platform.models.champion import paired_kappa_comparison, paired_value_comparison

    if incumbent is None or candidate.p is None or incumbent.p is None:
        return None, None
    y, rules, policy = holdout[CLAIM_STATUS].to_numpy(), judged.rules, judged.policy
    bootstrap = {"confidence": rules.confidence, "resamples": rules.resamples, "seed": rules.seed}
    value = paired_value_comparison(policy, y, candidate.p, incumbent.p, margin=rules.margin, **bootstrap)
    kappa = paired_kappa_comparison(y, policy.screen(candidate.p), policy.screen(incumbent.p), **bootstrap)
    return value, kappa


def _kept_rollbacks(recorded: dict | None, state, month: str, promote: bool, log) -> tuple[Any, list[dict]]:
    """Rollbacks recorded on this month before: re-deciding the month keeps those that still apply."""
    from claims_platform.models.champion import roll_back

    kept = []
    for done in (recorded or {}).get("rollbacks", []) if promote else []:
        champion = state.champion
        if champion is None or champion.version != done["version"]:
            log.warning(f"Recorded rollback of v{done['version']} no longer applies to {month[:7]}: dropped")
            continue
        state, _ = roll_back(
            state, reason=done["reason"], requested_by=done["requested_by"], month=month, at=done["at"]
        )
        kept.append(done)
    return state, kept


def _candidate_ref(candidate_model: dict, month: str):
    """The month's registered candidate as the chain of champions records it (None when none was)."""
    from claims_platform.models.champion import ModelRef

    version = candidate_model.get("version")
    if version is None:
        return None
    return ModelRef(
        version=int(version), model_uri=candidate_model["model_uri"], training_month=candidate_model["training_month"],
        params=candidate_model.get("params", {}), promoted_in=month[:7],
    )  # fmt: skip


def _outcome(verdict, promote: bool, rollbacks: list[dict]) -> tuple[str, str]:
    """The decision's outcome and reason: the verdict's (recorded only with promotion off), then any rollback."""
    outcome = verdict.outcome if promote else f"record-only: {verdict.outcome}"
    if not rollbacks:
        return outcome, verdict.reason
    withdrawn = ", ".join(f"v{r['version']} withdrawn ({r['requested_by']})" for r in rollbacks)
    return "rolled back", f"{verdict.reason}; then rolled back: {withdrawn}"


def _importance_moves(candidate_model: dict, champion, candidate: _Evidence, incumbent: _Evidence | None):
    """The candidate's top features by importance, each with the incumbent's rank: how the ranking moved.
    None when the candidate was not judged (nothing to rank)."""
    from claims_platform.models.importance import ranking_moves
    from claims_platform.models.loading import importance_with_method

    if candidate.p is None:
        return None
    method, shares = importance_with_method(candidate_model["model_uri"])
    incumbent_method, old = (None, {})
    if incumbent is not None and incumbent.p is not None:
        incumbent_method, old = importance_with_method(champion.model_uri)
    return {"method": method, "incumbent_method": incumbent_method, "top": ranking_moves(shares, old)}


def _advance_chain(
    state, candidate_model: dict, candidate, incumbent, comparison, recorded, judged: Judged, *, month, log
):
    """The verdict on the month's candidate and the chain it leaves: ``(verdict, new state, rollbacks kept)``."""
    from claims_platform.models.champion import advance, judge

    verdict = judge(
        candidate_model.get("version"),
        candidate.problems,
        state.champion,
        incumbent.problems if incumbent else [],
        comparison,
    )
    advanced = advance(state, verdict, _candidate_ref(candidate_model, month), judged.promote)
    new_state, rollbacks = _kept_rollbacks(recorded, advanced, month, judged.promote, log)
    return verdict, new_state, rollbacks


def decide(
    judged: Judged,
    previous: dict[str, Any] | None,
    recorded: dict[str, Any] | None,
    candidate_model: dict,
    training_set: pd.DataFrame,
    *,
    month: str,
    model_name: str,
    now: str,
    log,
    launched_by: str,
    run_id: str,
) -> dict[str, Any]:
    """Judge the month's candidate against the incumbent left by the month before: the decision record."""
    from claims_platform.models.champion import ChainState

    state = ChainState.from_dict(previous["state"] if previous else None)
    holdout, holdout_month = holdout_of(training_set)
    candidate = _candidate_evidence(candidate_model, holdout, holdout_month, judged)
    incumbent = _incumbent_evidence(state.champion, month, holdout, holdout_month, judged)
    comparison, kappa_comparison = _comparisons(holdout, candidate, incumbent, judged)
    verdict, new_state, rollbacks = _advance_chain(
        state, candidate_model, candidate, incumbent, comparison, recorded, judged, month=month, log=log
    )
    outcome, reason = _outcome(verdict, judged.promote, rollbacks)
    champion, previous_champion = new_state.champion, new_state.previous_champion
    return {
        "training_month": month[:7],
        "scores_month": shift_month_key(month, 1)[:7],
        "model_name": model_name,
        "outcome": outcome,
        "reason": reason,
        "would_promote": verdict.promote,
        "promote_switch": judged.promote,
        "champion": asdict(champion) if champion else None,
        "previous_champion": previous_champion.version if previous_champion else None,
        "candidate": candidate.record,
        "incumbent": incumbent.record if incumbent else None,
        "comparison": comparison.as_dict() if comparison else None,
        "kappa_comparison": kappa_comparison.as_dict() if kappa_comparison else None,
        "importance": _importance_moves(candidate_model, state.champion, candidate, incumbent),
        "holdout": {"month": holdout_month, "rows": 0 if holdout is None else len(holdout)},
        "policy": judged.policy.as_dict(),
        "gate": judged.gate.as_dict(),
        "rules": judged.rules.as_dict(),
        "state": new_state.as_dict(),
        "rollbacks": rollbacks,
        "launched_by": launched_by,
        "dagster_run_id": run_id,
        "decided_at": now,
    }
