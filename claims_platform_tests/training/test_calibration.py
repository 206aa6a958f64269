"""Calibration: JSON calibrators the runtime evaluates, never a probability of exactly 0 or 1, the choice by
out-of-fold log loss, and the calibrator deployed with the holdout."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from claims_platform.training import runtime
from claims_platform.training.calibration import (
    SMOOTHING_ROWS,
    choose_calibrator,
    deployed_calibration,
    fit_beta,
    fit_isotonic,
    fit_sigmoid,
    level_sd,
    log_loss,
)


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Margins three times too large: true log-odds m/3, so the raw sigmoid is overconfident."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-1.8, 1.5, size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return 3 * true_logit, y


def test_json_calibrators_predict_what_their_fits_predict():
    margin, y = _overconfident(4000, 0)
    fresh = np.linspace(-20, 20, 301)
    logistic = LogisticRegression(penalty=None).fit(margin.reshape(-1, 1), y)
    np.testing.assert_allclose(
        runtime.apply_calibrator(fit_sigmoid(margin, y), fresh),
        logistic.predict_proba(fresh.reshape(-1, 1))[:, 1],
        atol=1e-5,
    )
    # Beta calibration: a logistic regression on ln q and -ln(1 - q), q the booster's own probability.
    q = 1 / (1 + np.exp(-margin))
    beta = LogisticRegression(penalty=None).fit(np.column_stack([np.log(q), -np.log(1 - q)]), y)
    fresh_q = 1 / (1 + np.exp(-fresh[np.abs(fresh) < 15]))
    expected = beta.predict_proba(np.column_stack([np.log(fresh_q), -np.log(1 - fresh_q)]))[:, 1]
    np.testing.assert_allclose(
        runtime.apply_calibrator(fit_beta(margin, y), fresh[np.abs(fresh) < 15]), expected, atol=1e-5
    )
    # Smoothed isotonic: on steps of many rows it is the isotonic fit, within its smoothing.
    iso = IsotonicRegression(out_of_bounds="clip").fit(margin, y)
    steps, rows = np.unique(iso.predict(margin), return_counts=True)
    smoothed = runtime.apply_calibrator(fit_isotonic(margin, y), fresh)
    plain = iso.predict(fresh)
    big = np.isin(plain, steps[rows >= 400])
    assert big.sum() > 20
    np.testing.assert_allclose(smoothed[big], plain[big], atol=SMOOTHING_ROWS / 400)


def test_no_probability_is_exactly_0_or_1_even_fitted_on_a_small_holdout():
    # 400 rows, 20 claims: plain isotonic regression puts whole steps at exactly 0 (and a top step at 1).
    rng = np.random.default_rng(3)
    margin = np.sort(rng.normal(-3, 1.5, 400))
    y = np.zeros(400, dtype=int)
    y[-20:] = 1
    y[[50, 200]] = 1
    plain = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(margin, y).predict(margin)
    assert (plain == 0).mean() > 0.1 and (plain == 1).any()
    everywhere = np.linspace(-30, 30, 2001)
    for fitted in (
        fit_isotonic(margin, y),
        fit_sigmoid(margin, y),
        fit_beta(margin, y) or fit_sigmoid(margin, y),
    ):
        p = runtime.apply_calibrator(fitted, everywhere)
        assert (p > 0).all() and (p < 1).all(), fitted["method"]
    choice = choose_calibrator(margin, y, folds=5, seed=0)
    assert (choice.out_of_fold > 0).all() and (choice.out_of_fold < 1).all()


def test_the_choice_is_the_lowest_out_of_fold_log_loss_and_beats_the_raw_margins():
    margin, y = _overconfident(6000, 1)
    choice = choose_calibrator(margin, y, folds=5, seed=0)
    assert choice.report[choice.method]["log_loss"] == min(r["log_loss"] for r in choice.report.values())
    assert choice.method != "uncalibrated"
    fresh_margin, fresh_y = _overconfident(20_000, 2)
    raw = runtime.apply_calibrator({"method": "sigmoid", "a": 1.0, "b": 0.0}, fresh_margin)
    calibrated = runtime.apply_calibrator(choice.calibrator, fresh_margin)
    assert log_loss(fresh_y, calibrated) < log_loss(fresh_y, raw) - 0.01
    assert choice.out_of_fold.shape == y.shape


def test_the_deployed_calibrator_is_refitted_on_validation_and_holdout_and_records_how_well_it_is_known():
    validation, holdout = _overconfident(3000, 4), _overconfident(6000, 5)
    evaluated = fit_isotonic(*validation)
    deployed = deployed_calibration("isotonic", evaluated, validation, holdout, "2026-05", screen=0.3)
    both = (np.concatenate([validation[0], holdout[0]]), np.concatenate([validation[1], holdout[1]]))
    assert {k: deployed[k] for k in ("method", "x", "y")} == fit_isotonic(*both)
    assert deployed["evaluated_with"] == evaluated
    assert deployed["fitted_on"] == {
        "validation_rows": 3000,
        "holdout_rows": 6000,
        "holdout_month": "2026-05",
    }
    p = runtime.apply_calibrator(deployed, both[0])
    claims = both[1][p < 0.3].sum()
    assert deployed["level_sd"] == pytest.approx(1 / np.sqrt(claims)) and 0 < deployed["level_sd"] < 0.1
    assert level_sd(np.zeros(10), np.zeros(10), 0.3) == 1.0  # no claim: nothing is known


def test_unknown_calibration_method_is_an_error():
    with pytest.raises(ValueError, match="unknown calibration method"):
        runtime.apply_calibrator({"method": "magic"}, np.zeros(3))
