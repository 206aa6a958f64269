"""Each row's reasons: TreeSHAP contributions that add up to the margin, carried through the calibrator."""

import numpy as np
import pandas as pd
import pytest

from claims_platform.scoring.reasons import REASON_COLUMNS, decision_reasons
from claims_platform.training import runtime


@pytest.fixture(scope="module")
def scorer(trained) -> runtime.Scorer:
    return runtime.Scorer(trained.booster, trained.calibrator, trained.spec)


@pytest.fixture(scope="module")
def rows(parts) -> pd.DataFrame:
    return parts.holdout.head(300).reset_index(drop=True)


def test_contributions_and_base_add_up_to_the_margin_and_to_the_calibrated_probability(scorer, trained, rows):
    found = scorer.contributions(rows)
    margin = trained.booster.predict(runtime.prepare_features(rows, trained.spec), raw_score=True)
    np.testing.assert_allclose(found.margin_contributions.sum(axis=1) + found.base_margin, margin, atol=1e-9)
    np.testing.assert_allclose(
        found.contributions.sum(axis=1) + found.base_probability, scorer.predict(rows), atol=1e-9
    )
    # The calibrator is non-decreasing: carried through it, no contribution changes sign (on a flat step
    # of the calibrator, where the probability is the base's, all are 0).
    assert (found.contributions * found.margin_contributions >= 0).all()
    assert (np.abs(found.contributions) > 0).mean() > 0.5


def test_the_reasons_are_the_features_that_raised_the_probability_the_most(scorer, rows):
    found = scorer.contributions(rows)
    explained = scorer.explain(rows)
    np.testing.assert_array_equal(explained[runtime.PROBABILITY_COLUMN], scorer.predict(rows))
    row = int(np.argmax(found.probability))  # the riskiest row: several features raised it
    order = np.argsort(-found.contributions[row])[: runtime.REASON_COUNT]
    assert [explained.at[row, runtime.REASON_FEATURE.format(i + 1)] for i in range(3)] == [
        found.features[j] for j in order
    ]
    first = found.features[order[0]]
    value = rows.at[row, first]
    text = explained.at[row, runtime.REASON_TEXT]
    assert text.startswith(f"{first.replace('_', ' ')} ")
    assert f"(+{found.contributions[row, order[0]]:.2f})" in text.split(",")[0]
    assert runtime._value_text(value) in text.split(",")[0]
    # No feature that lowered a probability is ever given as its reason.
    for i in range(1, runtime.REASON_COUNT + 1):
        contribution = explained[runtime.REASON_CONTRIBUTION.format(i)]
        assert (contribution.dropna() > 0).all()
        assert (explained[runtime.REASON_FEATURE.format(i)].isna() == contribution.isna()).all()


def test_a_value_in_a_reason_is_shown_as_sent():
    assert runtime._value_text(5) == "5" and runtime._value_text(5.0) == "5"
    assert runtime._value_text(-1.23456) == runtime._value_text("-1.23456") == "-1.235"
    assert runtime._value_text("C") == "C" and runtime._value_text("40") == "40"
    assert runtime._value_text(None) == runtime._value_text(float("nan")) == "missing"


def test_only_the_decisions_asked_for_are_explained(scorer, rows):
    p = scorer.predict(rows)
    decisions = np.where(p >= 0.5, "decline", np.where(p >= 0.3, "refer", "accept"))
    out = decision_reasons(scorer, rows, decisions, "refer_and_decline")
    assert list(out.columns) == list(REASON_COLUMNS) and len(out) == len(rows)
    adverse = decisions != "accept"
    assert adverse.any() and (~adverse).any()
    assert out.loc[adverse, runtime.REASON_TEXT].notna().all()
    assert out.loc[~adverse, REASON_COLUMNS].isna().all().all()
    explained = scorer.explain(rows[adverse])
    assert out.loc[adverse, runtime.REASON_TEXT].tolist() == explained[runtime.REASON_TEXT].tolist()
    assert decision_reasons(scorer, rows, decisions, "none").isna().all().all()
    assert decision_reasons(scorer, rows, decisions, "all")[runtime.REASON_TEXT].notna().all()


def test_a_model_whose_runtime_cannot_explain_scores_without_reasons(scorer, rows):
    class Older:  # a version registered before reasons: its runtime has predict only
        predict = scorer.predict

    out = decision_reasons(Older(), rows, np.full(len(rows), "decline"), "refer_and_decline")
    assert out.isna().all().all()
