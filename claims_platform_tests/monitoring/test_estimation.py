"""Confidence-based performance estimation against simulated outcomes, and its limitation (pure)."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from claims_platform.monitoring import estimation
from claims_platform.monitoring.estimation import estimate_performance
from claims_platform.training.metrics import kappa_from_counts

THRESHOLD = 0.30  # DecisionPolicy().refer_at


def _portfolio(n: int, seed: int) -> np.ndarray:
    """Calibrated probabilities like the platform's: ~15% claim rate, a risky fifth well above the screen."""
    rng = np.random.default_rng(seed)
    risky = rng.random(n) < 0.18
    return np.where(risky, rng.beta(6, 5, n), rng.beta(1.5, 22, n))


def _realised(p: np.ndarray, truth: np.ndarray, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Realised kappa at the screen on ``p`` and claim rate, for ``draws`` outcome sets drawn from ``truth``."""
    rng = np.random.default_rng(seed)
    flagged = p >= THRESHOLD
    kappas, rates = np.empty(draws), np.empty(draws)
    for i in range(draws):
        y = rng.random(len(p)) < truth
        tp, fn = np.count_nonzero(y & flagged), np.count_nonzero(y & ~flagged)
        fp, tn = np.count_nonzero(flagged) - tp, np.count_nonzero(~flagged) - fn
        kappas[i], rates[i] = kappa_from_counts(tp, fp, fn, tn), (tp + fn) / len(p)
    return kappas, rates


# ------------------------------------------------------------------------------ kappa of a table


@pytest.mark.parametrize("seed", range(20))
def test_kappa_from_counts_is_cohens_kappa(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 500))
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    flagged = np.where(rng.random(n) < 0.7, y, rng.random(n) < 0.3)  # some agreement, some noise
    if len(set(y)) < 2 and len(set(flagged)) < 2:
        pytest.skip("degenerate draw")
    tp, fp = np.sum(flagged & y), np.sum(flagged & ~y)
    fn, tn = np.sum(~flagged & y), np.sum(~flagged & ~y)
    assert kappa_from_counts(tp, fp, fn, tn) == pytest.approx(cohen_kappa_score(y, flagged), abs=1e-12)


def test_kappa_from_counts_is_vectorised_and_zero_when_degenerate():
    tables = np.array([[40, 10, 5, 45], [3, 7, 11, 79], [0, 0, 0, 10], [10, 0, 0, 0], [0, 0, 0, 0]])
    kappas = kappa_from_counts(*tables.T)
    assert isinstance(kappas, np.ndarray) and kappas.shape == (5,)
    for (tp, fp, fn, tn), kappa in zip(tables[:2], kappas[:2], strict=True):
        y = np.repeat([1, 0, 1, 0], [tp, fp, fn, tn])
        flagged = np.repeat([1, 1, 0, 0], [tp, fp, fn, tn])
        assert kappa == pytest.approx(cohen_kappa_score(y, flagged))
    assert list(kappas[2:]) == [0.0, 0.0, 0.0]  # expected agreement 1 (or no rows)
    assert isinstance(kappa_from_counts(40, 10, 5, 45), float)
    assert kappa_from_counts(12.5, 3.25, 4.0, 80.25) == pytest.approx(  # expected counts are fine
        kappa_from_counts(50, 13, 16, 321)
    )


# ----------------------------------------------------------------------------- the estimate


@pytest.mark.parametrize(("n", "tolerance"), [(1_200, 0.01), (36_000, 0.005)])
def test_the_estimate_matches_kappa_realised_from_outcomes_drawn_from_p(n, tolerance):
    p = _portfolio(n, seed=n)
    estimate = estimate_performance(p, THRESHOLD)
    kappas, rates = _realised(p, p, draws=200, seed=1)

    assert estimate.rows == n and estimate.draws == 400
    assert 0.12 < estimate.expected_claim_rate < 0.18 and 0.3 < estimate.kappa < 0.8
    assert abs(kappas.mean() - estimate.kappa) < tolerance
    inside = np.mean((estimate.kappa_low <= kappas) & (kappas <= estimate.kappa_high))
    assert 0.90 <= inside <= 0.99
    assert estimate.expected_claim_rate == pytest.approx(p.mean())
    assert estimate.expected_claims == pytest.approx(p.sum())
    assert rates.mean() == pytest.approx(p.mean(), abs=3 * np.sqrt(p.mean() / n / 200) + 1e-4)
    assert 0.90 <= np.mean((estimate.claim_rate_low <= rates) & (rates <= estimate.claim_rate_high)) <= 0.99


def test_the_expected_confusion_matrix_and_flagged_rate():
    p = np.array([0.9, 0.4, 0.3, 0.29, 0.1, 0.0])
    estimate = estimate_performance(p, THRESHOLD)
    assert estimate.flagged_rate == pytest.approx(3 / 6)  # p >= 0.30, as the policy screens
    assert (estimate.expected_tp, estimate.expected_fp) == pytest.approx((1.6, 1.4))
    assert (estimate.expected_fn, estimate.expected_tn) == pytest.approx((0.39, 2.61))
    assert estimate.kappa == pytest.approx(kappa_from_counts(1.6, 1.4, 0.39, 2.61))
    assert estimate.kappa_low <= estimate.kappa_high and estimate.claim_rate_low <= estimate.claim_rate_high


def test_the_interval_narrows_with_more_rows():
    small = estimate_performance(_portfolio(1_200, seed=3), THRESHOLD)
    large = estimate_performance(_portfolio(36_000, seed=3), THRESHOLD)
    assert large.kappa_high - large.kappa_low < (small.kappa_high - small.kappa_low) / 3  # ~1/sqrt(30)
    assert large.claim_rate_high - large.claim_rate_low < (small.claim_rate_high - small.claim_rate_low) / 3


def test_a_concept_shift_is_invisible_to_the_estimate():
    """The documented limitation: the same p, different truth; the estimate cannot know."""
    p = _portfolio(1_200, seed=7)
    estimate = estimate_performance(p, THRESHOLD)
    # The applicants' claims no longer follow their features: the true probabilities are shuffled.
    truth = np.random.default_rng(8).permutation(p)
    kappas, rates = _realised(p, truth, draws=200, seed=9)
    assert np.all(kappas < estimate.kappa_low)  # every realised kappa below the whole interval
    assert kappas.mean() < estimate.kappa_low - 0.2
    # ... while the claim rate, all the estimate has to go on, looks as expected.
    assert np.mean((estimate.claim_rate_low <= rates) & (rates <= estimate.claim_rate_high)) > 0.9


def test_seeded_and_chunking_does_not_change_the_answer(monkeypatch):
    p = _portfolio(1_200, seed=11)
    first = estimate_performance(p, THRESHOLD, seed=5)
    assert estimate_performance(p, THRESHOLD, seed=5) == first
    monkeypatch.setattr(estimation, "CHUNK_ELEMENTS", 7 * 1_200 + 3)  # 7 draws a chunk: 58 chunks
    assert estimate_performance(p, THRESHOLD, seed=5) == first
    assert estimate_performance(p, THRESHOLD, seed=6) != first


def test_as_dict_gives_plain_rounded_values():
    values = estimate_performance(_portfolio(500, seed=2), THRESHOLD, draws=50).as_dict()
    assert values["estimated_rows"] == 500 and isinstance(values["estimated_rows"], int)
    assert set(values) >= {
        "estimated_kappa",
        "estimated_kappa_low",
        "estimated_kappa_high",
        "estimated_flagged_rate",
    }
    for key, value in values.items():
        assert type(value) in (int, float), key
        assert value == round(value, 4)
    assert "kappa" in estimate_performance([0.2, 0.4], THRESHOLD, draws=10).as_dict(prefix="")


@pytest.mark.parametrize(
    ("p", "threshold", "draws", "message"),
    [
        ([], THRESHOLD, 400, "zero rows"),
        ([0.1, np.nan], THRESHOLD, 400, "not finite"),
        ([0.1, np.inf], THRESHOLD, 400, "not finite"),
        ([0.1, 1.2], THRESHOLD, 400, r"in \[0, 1\]"),
        ([-0.1, 0.2], THRESHOLD, 400, r"in \[0, 1\]"),
        ([0.1, 0.2], 1.5, 400, "threshold"),
        ([0.1, 0.2], THRESHOLD, 0, "draw"),
    ],
)
def test_bad_inputs_raise(p, threshold, draws, message):
    with pytest.raises(ValueError, match=message):
        estimate_performance(np.asarray(p, dtype="float64"), threshold, draws=draws)
