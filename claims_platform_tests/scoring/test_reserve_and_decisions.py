"""Reserve maths against direct computation, and the decision policy (pure)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from claims_platform.core.policy import DecisionPolicy, decision_counts, risk_band
from claims_platform.scoring.reserve import (
    approximate_interval,
    claims_interval,
    exact_distribution,
    exact_interval,
    forecast_claims,
)


def _brute_force(p):
    """P(claims = k) by enumerating every outcome: the definition of the Poisson-binomial."""
    dist = np.zeros(len(p) + 1)
    for outcome in itertools.product((0, 1), repeat=len(p)):
        dist[sum(outcome)] += np.prod([pi if o else 1 - pi for pi, o in zip(p, outcome, strict=True)])
    return dist


@pytest.mark.parametrize("seed", range(5))
def test_exact_distribution_matches_enumeration(seed):
    p = np.random.default_rng(seed).uniform(0, 1, 10)
    np.testing.assert_allclose(exact_distribution(p), _brute_force(p), atol=1e-12)


def test_exact_interval_is_the_central_95_percent():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.05, 0.5, 0.6, 0.02])
    cdf = np.cumsum(_brute_force(p))
    low, high = exact_interval(p)
    assert cdf[low] >= 0.025 and (low == 0 or cdf[low - 1] < 0.025)
    assert cdf[high] >= 0.975 and cdf[high - 1] < 0.975


@pytest.mark.parametrize("n", [50, 200, 1000])
def test_the_approximation_for_large_pools_is_within_one_claim_of_exact(n):
    rng = np.random.default_rng(n)
    for _ in range(10):
        p = rng.beta(0.5, 4, n)
        exact, approx = exact_interval(p), approximate_interval(p)
        assert abs(exact[0] - approx[0]) <= 1 and abs(exact[1] - approx[1]) <= 1


def test_a_day_uses_the_exact_interval_and_the_forecast_scales_with_cost():
    p = np.random.default_rng(0).beta(0.5, 4, 1200)
    assert claims_interval(p) == exact_interval(p)
    forecast = forecast_claims(p, 10_000)
    assert forecast.expected_claims == pytest.approx(p.sum())
    assert forecast.claims_low < forecast.expected_claims < forecast.claims_high
    assert forecast.reserve == pytest.approx(p.sum() * 10_000)
    assert forecast.reserve_high == forecast.claims_high * 10_000


def test_no_applicants_forecast_zero():
    forecast = forecast_claims(np.array([]), 10_000)
    assert (forecast.expected_claims, forecast.claims_low, forecast.claims_high, forecast.reserve) == (
        0,
        0,
        0,
        0,
    )


def test_decisions_and_bands_follow_the_thresholds():
    policy = DecisionPolicy(refer_at=0.3, decline_at=0.5)
    p = np.array([0.0, 0.29, 0.3, 0.49, 0.5, 1.0])
    assert list(policy.decide(p)) == ["accept", "accept", "refer", "refer", "decline", "decline"]
    assert list(risk_band(np.array([0.01, 0.05, 0.2, 0.9]))) == ["low", "moderate", "high", "very high"]
    assert decision_counts(pd.Series(["accept", "accept"])) == {"accept": 2, "refer": 0, "decline": 0}
    with pytest.raises(ValueError, match="missing probabilities"):
        policy.decide(np.array([0.1, np.nan]))
    with pytest.raises(ValueError):
        DecisionPolicy(refer_at=0.6, decline_at=0.5)
