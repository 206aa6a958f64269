from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, cohen_kappa_score, log_loss, roc_auc_score

from claims_platform.training.metrics import (
    calibration_bins,
    evaluate,
    expected_calibration_error,
)


def test_kappa_at_the_threshold_matches_a_hand_computation():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    # At 0.5: flagged = [1, 0, 1, 0, ...]; agreement 0.8, chance 0.2·0.2 + 0.8·0.8 = 0.68.
    metrics = evaluate(y, p, threshold=0.5)
    assert metrics["kappa"] == pytest.approx((0.8 - 0.68) / (1 - 0.68))
    assert metrics["predicted_rate"] == pytest.approx(0.2)
    assert metrics["claim_rate"] == pytest.approx(0.2)
    assert metrics["mean_probability"] == pytest.approx(p.mean())


def test_scores_agree_with_sklearn():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    metrics = evaluate(y, p, threshold=0.3)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert metrics["kappa"] == pytest.approx(cohen_kappa_score(y, (p >= 0.3).astype(int)))


def test_ece_is_zero_when_every_bin_is_exactly_calibrated():
    # Ten groups of ten rows: probability k/10 and exactly k claims, one equal-mass bin each.
    p = np.repeat(np.arange(10) / 10, 10)
    y = np.concatenate([[1] * k + [0] * (10 - k) for k in range(10)])
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    bins = calibration_bins(y, p)
    assert list(bins["rows"]) == [10] * 10


def test_ece_measures_a_known_gap():
    y = np.array([1] + [0] * 9)
    p = np.full(10, 0.3)
    assert expected_calibration_error(y, p) == pytest.approx(0.2)


def test_ece_is_small_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(1)
    p = rng.beta(1, 5, size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.sqrt(p)) > 0.1


def test_bad_probabilities_are_rejected():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        evaluate([0, 1], [0.5, 1.5], threshold=0.5)
    with pytest.raises(ValueError, match="both claim outcomes"):
        evaluate([0, 0], [0.1, 0.2], threshold=0.5)
    with pytest.raises(ValueError, match="labels but"):
        evaluate([0, 1, 1], [0.1, 0.2], threshold=0.5)


def test_the_one_kappa_is_cohens_as_scikit_learn_computes_it():

    from claims_platform.training.metrics import realised_kappa

    rng = np.random.default_rng(3)
    for _ in range(20):
        y, flagged = rng.random(500) < 0.15, rng.random(500) < rng.uniform(0.05, 0.5)
        assert realised_kappa(y, flagged) == pytest.approx(cohen_kappa_score(y, flagged), abs=1e-12)
    assert realised_kappa([0, 0, 0], [0, 0, 0]) == 0.0  # no agreement possible beyond chance: 0 by convention
