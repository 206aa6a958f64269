"""One concept across days: a model of 60 days holds on the next 30, and fails under concept_shift."""

from __future__ import annotations

from datetime import date, timedelta

import lightgbm as lgb
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from claims_platform.core import schema
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.scenarios import get_scenario

TRAIN = (date(2025, 1, 1), date(2025, 3, 1))  # 60 days
TEST = (date(2025, 3, 2), date(2025, 3, 31))  # the next 30


def _features(applications: pd.DataFrame) -> pd.DataFrame:
    features = applications[list(schema.FEATURES)].copy()
    for name in schema.CATEGORICAL_FEATURES:
        features[name] = pd.Categorical(features[name], categories=schema.COLUMNS_BY_NAME[name].levels)
    return features


def _model() -> lgb.LGBMClassifier:
    # One thread: OpenMP threads spin badly when the test workers already share the two cores.
    return lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1, n_jobs=1)


def _auc(model: lgb.LGBMClassifier, applications: pd.DataFrame, outcomes: pd.DataFrame) -> float:
    labels = outcomes.set_index(schema.APPLICATION_ID)[schema.CLAIM_STATUS]
    y = labels.loc[applications[schema.APPLICATION_ID]].to_numpy()
    return float(roc_auc_score(y, model.predict_proba(_features(applications))[:, 1]))


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_seed()


@pytest.fixture(scope="module")
def model(world: World) -> lgb.LGBMClassifier:
    applications, outcomes = simulate_days(world, *TRAIN)
    assert len(applications) > 60 * 1_100
    return _model().fit(_features(applications), outcomes[schema.CLAIM_STATUS])


def test_a_model_of_60_days_holds_on_the_next_30(world: World, model: lgb.LGBMClassifier) -> None:
    assert _auc(model, *simulate_days(world, *TEST)) >= 0.93


def test_concept_shift_breaks_the_model(world: World, model: lgb.LGBMClassifier) -> None:
    same = _auc(model, *simulate_days(world, *TEST))
    shifted = _auc(model, *simulate_days(world, *TEST, get_scenario("concept_shift", TEST[0])))
    assert shifted <= same - 0.05


def test_concept_shift_is_learnable(world: World) -> None:
    """The new concept lives in the same columns: a model retrained after the shift recovers."""
    scenario = get_scenario("concept_shift", TEST[0])
    train = simulate_days(world, TEST[0], TEST[0] + timedelta(days=44), scenario)
    test = simulate_days(world, TEST[0] + timedelta(days=45), TEST[0] + timedelta(days=59), scenario)
    retrained = _model().fit(_features(train[0]), train[1][schema.CLAIM_STATUS])
    assert _auc(retrained, *test) >= 0.85
