from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from claims_platform.models import runtime
from claims_platform.training.calibration import choose_calibrator, fit_isotonic, fit_sigmoid


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Margins three times too large: true log-odds m/3, so the raw sigmoid is overconfident."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-1.8, 1.5, size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return 3 * true_logit, y


def test_json_calibrators_predict_what_sklearn_predicts():
    margin, y = _overconfident(4000, 0)
    fresh = np.linspace(-20, 20, 301)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(margin, y)
    np.testing.assert_allclose(
        runtime.apply_calibrator(fit_isotonic(margin, y), fresh), iso.predict(fresh), atol=1e-12
    )
    logistic = LogisticRegression(penalty=None).fit(margin.reshape(-1, 1), y)
    np.testing.assert_allclose(
        runtime.apply_calibrator(fit_sigmoid(margin, y), fresh),
        logistic.predict_proba(fresh.reshape(-1, 1))[:, 1],
        atol=1e-6,
    )


def test_chosen_calibrator_improves_brier_on_fresh_rows():
    margin, y = _overconfident(6000, 1)
    choice = choose_calibrator(margin, y, folds=5, seed=0)
    assert choice.method in {"isotonic", "sigmoid"}
    assert choice.report[choice.method]["brier"] == min(
        choice.report[m]["brier"] for m in ("isotonic", "sigmoid")
    )
    fresh_margin, fresh_y = _overconfident(20_000, 2)
    raw = runtime.apply_calibrator({"method": "sigmoid", "a": 1.0, "b": 0.0}, fresh_margin)
    calibrated = runtime.apply_calibrator(choice.calibrator, fresh_margin)
    assert np.mean((calibrated - fresh_y) ** 2) < np.mean((raw - fresh_y) ** 2) - 0.002
    # Out-of-fold probabilities cover every row and are proper probabilities.
    assert choice.out_of_fold.shape == y.shape
    assert choice.out_of_fold.min() >= 0 and choice.out_of_fold.max() <= 1


def test_unknown_calibration_method_is_an_error():
    with pytest.raises(ValueError, match="unknown calibration method"):
        runtime.apply_calibrator({"method": "magic"}, np.zeros(3))
