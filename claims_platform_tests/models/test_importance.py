"""The model's importance: mean |TreeSHAP| per feature on the holdout, and how a ranking moved."""

from __future__ import annotations

import numpy as np
import pytest

from claims_platform.models.importance import SHAP_METHOD, ranking_moves, shap_importance
from claims_platform.training.runtime import prepare_features


def test_the_importance_is_each_features_mean_absolute_contribution_as_a_share(trained, parts):
    rows = parts.holdout.head(500)
    found = shap_importance(trained.booster, trained.spec, rows)
    contributions = trained.booster.predict(prepare_features(rows, trained.spec), pred_contrib=True)[:, :-1]
    expected = np.abs(contributions).mean(axis=0)
    assert found["method"] == SHAP_METHOD and found["rows"] == 500
    assert list(found["shares"]) == trained.spec["features"]
    assert [found["mean_abs"][f] for f in trained.spec["features"]] == pytest.approx(expected)
    assert sum(found["shares"].values()) == pytest.approx(1.0)
    assert "gender" not in found["shares"]  # excluded by default: not a feature


def test_a_large_holdout_is_sampled_to_the_documented_rows_reproducibly(trained, parts):
    first = shap_importance(trained.booster, trained.spec, parts.holdout, rows=300, seed=7)
    again = shap_importance(trained.booster, trained.spec, parts.holdout, rows=300, seed=7)
    assert first == again and first["rows"] == 300


def test_the_ranking_says_where_each_top_feature_stood_for_the_incumbent():
    candidate = {"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}
    incumbent = {"b": 0.6, "a": 0.3, "d": 0.1}
    moves = ranking_moves(candidate, incumbent, top=3)
    assert [(m["feature"], m["rank"], m["incumbent_rank"], m["moved"]) for m in moves] == [
        ("a", 1, 2, 1),
        ("b", 2, 1, -1),
        ("c", 3, None, None),  # the incumbent did not use it
    ]
    assert moves[0]["share"] == 0.5 and moves[0]["incumbent_share"] == 0.3
