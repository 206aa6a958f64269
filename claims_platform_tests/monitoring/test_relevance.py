"""Drift that matters: weighed by the model's importance, its predictions and its estimated kappa (pure)."""

import lightgbm as lgb
import numpy as np
import pytest

from claims_platform.models.importance import column_shares, gain_shares, touched_share
from claims_platform.monitoring.relevance import (
    RelevanceRules,
    drift_relevance,
    floor_rows,
    kappa_floor,
    plug_in_kappa,
)

# A model's gain shares: one strong column, two weak ones (income level is derived from income).
IMPORTANCE = {
    "insurance_hist_5": 0.30,
    "credit_score_2": 0.07,
    "income": 0.017,
    "age": 0.015,
    "occupation": 0.001,
}


def test_drift_in_columns_the_model_barely_uses_is_a_warning():
    relevance = drift_relevance(True, ["income", "income level", "age"], False, IMPORTANCE)
    assert relevance.level == "warning" and not relevance.matters and relevance.reasons == ()
    assert relevance.importance == {"income": 0.017, "income level": 0.017, "age": 0.015}
    assert relevance.drifted_importance == pytest.approx(0.032)  # income once, not twice


def test_drift_in_columns_carrying_enough_of_the_model_asks_for_a_retrain():
    relevance = drift_relevance(True, ["insurance_hist_5"], False, IMPORTANCE)
    assert relevance.level == "retrain" and "30%" in relevance.reasons[0]
    # Together: 0.07 + 0.017 + 0.015 = 0.102 >= 0.10.
    assert drift_relevance(True, ["credit_score_2", "income", "age"], False, IMPORTANCE).matters
    assert not drift_relevance(True, ["credit_score_2", "income"], False, IMPORTANCE).matters
    assert drift_relevance(
        True, ["credit_score_2"], False, IMPORTANCE, rules=RelevanceRules(min_importance_share=0.05)
    ).matters


def test_prediction_drift_or_an_estimated_kappa_drop_beyond_chance_matters_whatever_the_columns():
    assert drift_relevance(True, [], True, IMPORTANCE).reasons == ("the predicted probabilities drifted",)
    # Estimated kappa 0.60 against the reference's 0.75, whose days of this size fall below 0.66 by chance
    # one time in 200: a drop beyond chance.
    dropped = drift_relevance(True, ["age"], False, IMPORTANCE, 0.60, (0.75, 0.66))
    assert (
        dropped.matters
        and dropped.kappa_drop == pytest.approx(0.15)
        and "below the reference" in dropped.reasons[0]
    )
    # The same estimate on a small day, where chance alone reaches down to 0.55: not a drop.
    assert not drift_relevance(True, ["age"], False, IMPORTANCE, 0.60, (0.75, 0.55)).matters
    # A drop of 0.03 is within the rule's 0.05.
    assert not drift_relevance(True, ["age"], False, IMPORTANCE, 0.72, (0.75, 0.74)).matters


def test_the_kappa_floor_holds_its_false_alarm_rate_and_widens_at_small_volume():
    rng = np.random.default_rng(1)
    reference = rng.beta(0.6, 4, 3_000)
    estimate = float(plug_in_kappa(reference.reshape(1, -1), 0.1)[0])
    small, large = kappa_floor(reference, 50, 0.1, 0.005), kappa_floor(reference, 1_200, 0.1, 0.005)
    assert small < large < estimate and estimate - small > 3 * (estimate - large)
    # Days drawn like the reference fall below the floor about as often as the rate says.
    days = reference[rng.integers(0, 3_000, size=(4_000, 50))]
    assert (plug_in_kappa(days, 0.1) < small).mean() < 0.015
    assert (floor_rows(47), floor_rows(1_187), floor_rows(12_345)) == (47, 1_200, 12_000)


def test_a_day_that_did_not_drift_never_matters_and_unknown_importance_keeps_the_old_rule():
    assert drift_relevance(False, [], True, IMPORTANCE, 0.5, (0.75, 0.7)).level == "none"
    # Too many rows rejected alone: a warning (ingestion alerts about the rows).
    assert drift_relevance(True, [], False, IMPORTANCE).level == "warning"
    # A model whose importance is unknown (registered before models shipped their code): drift retrains.
    unknown = drift_relevance(True, ["age"], False, {})
    assert unknown.matters and unknown.drifted_importance is None and "unknown" in unknown.reasons[0]


def test_gain_shares_add_up_to_one_over_the_features_and_follow_the_booster():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3))
    y = (x[:, 0] + 0.1 * x[:, 1] + rng.normal(scale=0.5, size=2_000) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=20)
    shares = gain_shares(booster, ["strong", "weak", "noise"])
    assert sum(shares.values()) == pytest.approx(1.0) and shares["strong"] > 0.8 > shares["weak"]
    with pytest.raises(ValueError, match="3 features"):
        gain_shares(booster, ["strong", "weak"])
    assert column_shares(shares, ["noise", "unused"]) == {"noise": shares["noise"], "unused": 0.0}
    assert touched_share({"income": 0.2}, ["income", "income level"]) == pytest.approx(0.2)
