"""The champion chain's pure rules: paired comparison, verdicts, state, rollback, audit (no Dagster, no MLflow)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from claims_platform.core.policy import BusinessCosts, DecisionPolicy, realised_values
from claims_platform.core.run_origin import launched_by
from claims_platform.models.assets import ChampionDecisionConfig, model_in_force_record
from claims_platform.models.champion import (
    ChainState,
    ModelRef,
    PromotionRules,
    RollbackRefused,
    Verdict,
    advance,
    incumbent_staleness,
    judge,
    paired_kappa_comparison,
    paired_value_comparison,
    roll_back,
)
from claims_platform.models.gate import QualityGate


def _ref(version: int, month: str = "2025-03") -> ModelRef:
    return ModelRef(
        version=version, model_uri=f"file:///models/{version}", training_month=month, promoted_in=month
    )


def _holdout(seed: int, n: int = 37_000, noise: float = 0.12):
    """A holdout and two models' calibrated-looking probabilities of the SAME quality (independent noise)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.15
    signal = np.where(y, 0.55, 0.08)
    return y, np.clip(signal + rng.normal(0, noise, n), 0, 1), np.clip(signal + rng.normal(0, noise, n), 0, 1)


def test_the_comparison_reports_cohens_kappa_of_each_screen():
    y, candidate, incumbent = _holdout(0, n=5000)
    flags = DecisionPolicy().screen(candidate), DecisionPolicy().screen(incumbent)
    comparison = paired_kappa_comparison(y, *flags)
    assert comparison.metric == "kappa"
    assert comparison.candidate == pytest.approx(cohen_kappa_score(y, flags[0]), abs=1e-12)
    assert comparison.incumbent == pytest.approx(cohen_kappa_score(y, flags[1]), abs=1e-12)
    assert comparison.difference == pytest.approx(comparison.candidate - comparison.incumbent)


def test_the_promotion_measure_is_the_value_per_application_of_the_policys_decisions():
    y, candidate, incumbent = _holdout(0, n=5000)
    policy = DecisionPolicy()
    comparison = paired_value_comparison(policy, y, candidate, incumbent)
    assert comparison.metric == "value per application"
    assert comparison.candidate == pytest.approx(realised_values(policy, candidate, y).mean())
    assert comparison.incumbent == pytest.approx(realised_values(policy, incumbent, y).mean())
    # By hand, one row of each kind (margin 2,400, claim 12,000, review 200 right 3 times in 4).
    values = realised_values(policy, np.array([0.01, 0.01, 0.2, 0.2, 0.9]), np.array([0, 1, 0, 1, 1]))
    np.testing.assert_allclose(
        values, [2400, 2400 - 12000, 0.75 * 2400 - 200, 0.25 * (2400 - 12000) - 200, 0]
    )
    same = paired_value_comparison(policy, y, candidate, candidate)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)  # paired


def test_a_candidate_equal_to_the_champion_up_to_noise_is_not_promoted():
    policy = DecisionPolicy()
    # Find a holdout where the equal-quality candidate happens to score a higher kappa: the old
    # strict ">" rule would have promoted it on noise.
    for seed in range(50):
        y, candidate, incumbent = _holdout(seed)
        comparison = paired_value_comparison(policy, y, candidate, incumbent)
        if comparison.candidate > comparison.incumbent:
            break
    assert comparison.difference > 0
    assert comparison.low < 0 < comparison.high  # the interval straddles zero: noise
    assert not comparison.candidate_better
    verdict = judge(2, [], _ref(1), [], comparison)
    assert verdict == Verdict("kept", False, verdict.reason) and "not better beyond noise" in verdict.reason


def test_a_clearly_better_candidate_is_promoted_and_the_margin_is_respected():
    policy = DecisionPolicy()
    y, candidate, _ = _holdout(1, noise=0.08)
    _, _, incumbent = _holdout(1, noise=0.2)
    comparison = paired_value_comparison(policy, y, candidate, incumbent)
    assert comparison.low > 0 and comparison.candidate_better
    verdict = judge(2, [], _ref(1), [], comparison)
    assert verdict.outcome == "promoted" and "value per application" in verdict.reason
    strict = paired_value_comparison(policy, y, candidate, incumbent, margin=comparison.low + 0.01)
    assert not strict.candidate_better


def test_the_comparison_is_reproducible_and_paired():
    y, candidate, incumbent = _holdout(3, n=4000)
    flags = DecisionPolicy().screen(candidate), DecisionPolicy().screen(incumbent)
    assert paired_kappa_comparison(y, *flags) == paired_kappa_comparison(y, *flags)
    same = paired_kappa_comparison(y, flags[0], flags[0])
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)  # paired: identical models never differ
    with pytest.raises(ValueError, match="outcomes"):
        paired_kappa_comparison(y[:10], *flags)


@pytest.mark.parametrize(
    ("candidate_problems", "incumbent", "incumbent_problems", "outcome", "promote"),
    [
        (["training failed: too few months"], None, [], "no model", False),
        (["holdout AUC 0.80 < 0.85"], _ref(1), [], "ineligible", False),
        ([], None, [], "first champion", True),
        ([], _ref(1), ["holdout ECE 0.05 > 0.03"], "promoted", True),
    ],
)
def test_verdicts_without_a_comparison(candidate_problems, incumbent, incumbent_problems, outcome, promote):
    verdict = judge(2, candidate_problems, incumbent, incumbent_problems, None)
    assert (verdict.outcome, verdict.promote) == (outcome, promote)
    if candidate_problems and incumbent is not None:
        assert verdict.reason.endswith("champion v1 kept")


def test_a_stale_incumbent_is_replaced():
    rules = PromotionRules(max_champion_age_months=6)
    assert incumbent_staleness(_ref(1, "2025-03"), "2025-09-01", rules) == []
    problems = incumbent_staleness(_ref(1, "2025-03"), "2025-10-01", rules)
    assert problems and "7 months" in problems[0]
    assert judge(2, [], _ref(1, "2025-03"), problems, None).promote


def _gate_metrics(
    auc: float = 0.9, ece: float = 0.01, expected: float = 600.0, actual: float = 600.0
) -> dict[str, float]:
    return {
        "roc_auc": auc, "ece": ece, "accepted_expected_claims": expected, "accepted_actual_claims": actual,
        "accepted_claims_sd": float(np.sqrt(expected)),
    }  # fmt: skip


def test_the_gate():
    gate = QualityGate(min_auc=0.85, max_ece=0.03)
    assert gate.failures(_gate_metrics()) == []
    assert gate.failures(_gate_metrics(0.84, 0.04), missing=3) == [
        "3 missing predictions",
        "holdout AUC 0.8400 < 0.85",
        "holdout ECE 0.0400 > 0.03",
    ]
    assert gate.failures(_gate_metrics(auc=float("nan")))  # a NaN metric never passes
    assert gate.failures({"roc_auc": 0.9, "ece": 0.01}) == []  # a record from before the accepted band
    with pytest.raises(ValueError):
        QualityGate(min_auc=0.2)


def test_the_gate_refuses_a_candidate_that_would_under_reserve_beyond_noise():
    assert QualityGate().max_accepted_bias == 0.10
    gate = QualityGate(max_accepted_bias=0.05)
    # 600 expected among the accepted (Poisson sd ~24.5): ±5% and 1.96 sd of noise allow 522..678.
    assert gate.failures(_gate_metrics(actual=670)) == []
    [problem] = gate.failures(_gate_metrics(actual=740))  # a fifth more claims than the model expects
    assert "740 against 600.0 expected (ratio 1.23)" in problem and "outside 522..678" in problem
    assert gate.failures(_gate_metrics(actual=510))  # over-reserving beyond the band fails too
    # A small holdout: its own noise dominates, and a ratio of 1.2 alone is not evidence.
    assert gate.failures(_gate_metrics(expected=25, actual=30)) == []


def test_record_only_promotion_changes_nothing():
    state = ChainState(lineage=(_ref(1),))
    win = Verdict("promoted", True, "better")
    assert advance(state, win, _ref(2, "2025-04"), promote=False) == state
    assert advance(state, win, _ref(2, "2025-04"), promote=True).champion.version == 2
    assert advance(state, Verdict("kept", False, "no"), _ref(2, "2025-04"), promote=True) == state


def test_rollback_walks_back_one_step_at_a_time_and_never_empties_the_lineage():
    state = ChainState(lineage=(_ref(1), _ref(2, "2025-04"), _ref(3, "2025-05")))
    once, first = roll_back(state, reason="drift", requested_by="ann", month="2025-06-01", at="t1")
    assert (first.version, first.restored, once.champion.version) == (3, 2, 2)
    twice, second = roll_back(once, reason="still", requested_by="bob", month="2025-06-01", at="t2")
    assert (second.version, second.restored, twice.champion.version) == (2, 1, 1)
    assert [w.requested_by for w in twice.withdrawn] == ["ann", "bob"]
    with pytest.raises(RollbackRefused, match="only champion left"):
        roll_back(twice, reason="x", requested_by="cy", month="2025-06-01", at="t3")
    # The state survives its JSON form.
    assert ChainState.from_dict(twice.as_dict()) == twice


def test_launched_by_names_the_requester_or_what_launched_the_run():
    assert (
        launched_by({"dagster/schedule_name": "monthly_training_schedule"})
        == "schedule monthly_training_schedule"
    )
    assert launched_by({"dagster/backfill": "abc"}) == "backfill abc"
    assert launched_by({"dagster/backfill": "abc"}, requested_by="ann") == "requested by ann"
    assert launched_by({}).startswith("manual launch")


def test_model_in_force_carries_the_champion_and_its_policy_or_says_why_there_is_none():
    decision = {
        "model_name": "claims_classifier",
        "policy": {"refer_at": 0.3, "decline_at": 0.5},
        "outcome": "kept",
        "reason": "not better",
        "champion": {"version": 4, "model_uri": "s3://bucket/models/4"},
    }
    record = model_in_force_record(decision, "2025-05-01")
    assert (record["version"], record["model_uri"], record["decided_in"]) == (
        4,
        "s3://bucket/models/4",
        "2025-05",
    )
    empty = model_in_force_record(
        {**decision, "champion": None, "reason": "candidate ineligible"}, "2025-01-01"
    )
    assert empty["version"] is None and "no champion after the decision of 2025-01" in empty["reason"]


def test_a_redecision_uses_what_was_recorded_unless_told_otherwise():
    recorded = {
        "policy": {"refer_at": 0.25, "decline_at": 0.6},
        "gate": {"min_auc": 0.9999, "max_ece": 0.03},
        "rules": {"margin": -0.5, "confidence": 0.9, "resamples": 500, "max_champion_age_months": 3},
    }
    previous = {"policy": {"refer_at": 0.35, "decline_at": 0.55}}
    policy, gate, rules = ChampionDecisionConfig().settings(recorded, previous)
    assert (policy.refer_at, gate.min_auc, rules.margin, rules.resamples) == (0.25, 0.9999, -0.5, 500)
    policy, gate, rules = ChampionDecisionConfig(min_auc=0.9).settings(recorded, previous)
    assert gate.min_auc == 0.9 and rules.margin == -0.5
    # A month decided for the first time: defaults, and the policy the chain carries from the month before.
    policy, gate, rules = ChampionDecisionConfig().settings(None, previous)
    assert (policy.refer_at, gate, rules) == (0.35, QualityGate(), PromotionRules())
    assert ChampionDecisionConfig().settings(None, None)[0] == DecisionPolicy()
    # New costs: the thresholds of least expected cost under them, the other costs as in force.
    policy, _, _ = ChampionDecisionConfig(review_cost=400.0).settings(None, None)
    assert policy == DecisionPolicy.from_costs(BusinessCosts(review_cost=400.0))
    assert policy.refer_at > DecisionPolicy().refer_at and policy.decline_at < DecisionPolicy().decline_at
    with pytest.raises(ValueError, match="promote: false"):
        ChampionDecisionConfig(promote=False, review_cost=100.0)


def test_the_thresholds_are_where_the_expected_costs_of_the_decisions_cross():
    costs = BusinessCosts(claim_cost=10_000, premium_margin=2_000, review_cost=100, review_accuracy=0.8)
    # By hand: accept/refer where M − pC = (1−p)aM + p(1−a)(M−C) − R, refer/decline where the refer line is 0.
    refer_at = (2_000 * 0.2 + 100) / (0.8 * 10_000 + 2_000 * (1 - 1.6))
    decline_at = (0.8 * 2_000 - 100) / (0.8 * 2_000 + 0.2 * 8_000)
    assert costs.thresholds() == pytest.approx((refer_at, decline_at))
    assert (refer_at, decline_at) == pytest.approx((500 / 6800, 1500 / 3200))
    policy = DecisionPolicy.from_costs(costs)
    p = np.linspace(0.001, 0.999, 999)
    best = costs.expected_values(p).argmax(axis=1)
    assert (policy.decision_index(p) == best).all()  # the least expected cost at every probability
    # A review never worth its cost: no refer band, accept or decline at the break-even M / C.
    assert BusinessCosts(review_cost=5_000).thresholds() == pytest.approx((0.2, 0.2))
    # A recorded policy without costs keeps its thresholds and is valued with the default costs.
    old = DecisionPolicy.from_dict({"refer_at": 0.3, "decline_at": 0.5})
    assert (old.refer_at, old.decline_at, old.costs) == (0.3, 0.5, BusinessCosts())
    assert DecisionPolicy.from_dict(DecisionPolicy().as_dict()) == DecisionPolicy()
    # The cost-derived policy costs less than the former fixed thresholds at calibrated probabilities.
    rng = np.random.default_rng(0)
    probabilities = rng.beta(0.6, 3.5, 50_000)
    assert DecisionPolicy().expected_cost(probabilities) < DecisionPolicy(0.3, 0.5).expected_cost(
        probabilities
    )
