"""Expected claims and the reserve they imply, with a 95% interval (pure).

The number of claims among n applicants with calibrated claim probabilities p_i is Poisson-binomial
(a sum of independent Bernoulli(p_i)). Its mean is Σp and its variance Σp(1-p).

**Which distribution.** For a day (about 1,200 applicants) the interval comes from the EXACT
Poisson-binomial distribution, built by one convolution per applicant: O(n²), about 3 ms for 1,200
rows on this machine — cheap enough that no approximation is needed where it matters most.
Above ``EXACT_MAX_APPLICANTS`` (a month or a year pooled), O(n²) stops being cheap and the
*refined normal approximation* (Volkova 1996; Hong 2013) is used: the normal CDF with a continuity
correction plus a skewness term, ``F(k) ≈ Φ(x) + γ(1 - x²)φ(x)/6`` with ``x = (k + 0.5 - μ)/σ`` and
``γ = Σp(1-p)(1-2p)/σ³``. The plain normal would ignore that accepted applicants have small p,
which skews the count to the right. On random cases of 50–1,000 applicants it lands on the exact
quantiles or one claim off (tested), and its error shrinks as n grows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

EXACT_MAX_APPLICANTS = 20_000  # exact below this many applicants (~1 s); refined normal above


@dataclass(frozen=True)
class ClaimsForecast:
    """Expected claims among a group of applicants, its 95% interval, and the implied reserve."""

    applicants: int
    expected_claims: float
    claims_low: int
    claims_high: int
    reserve: float
    reserve_low: float
    reserve_high: float

    def as_dict(self, prefix: str = "") -> dict[str, float | int]:
        """Fields with an optional prefix, for a row of the forecast table."""
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def exact_distribution(p: np.ndarray) -> np.ndarray:
    """P(claims = k) for k = 0..n, by convolution (O(n²)): the reference the approximation is tested against."""
    dist = np.zeros(len(p) + 1)
    dist[0] = 1.0
    for i, pi in enumerate(np.asarray(p, dtype="float64"), start=1):
        dist[1 : i + 1] = dist[1 : i + 1] * (1 - pi) + dist[0:i] * pi
        dist[0] *= 1 - pi
    return dist


def _refined_cdf(k: np.ndarray, mu: float, sigma: float, gamma: float) -> np.ndarray:
    from scipy.stats import norm  # ~1 s to import: only for the large pools that need it

    x = (k + 0.5 - mu) / sigma
    return np.clip(norm.cdf(x) + gamma * (1 - x**2) * norm.pdf(x) / 6, 0.0, 1.0)


def exact_interval(p: np.ndarray, level: float = 0.95) -> tuple[int, int]:
    """Central ``level`` interval from the exact distribution: the (1-level)/2 and (1+level)/2 quantiles."""
    cdf = np.cumsum(exact_distribution(p))
    tail = (1 - level) / 2
    # A tiny tolerance so that a CDF landing on the tail probability up to rounding counts as reaching it.
    low = int(np.searchsorted(cdf, tail - 1e-12, side="left"))
    high = int(np.searchsorted(cdf, 1 - tail - 1e-12, side="left"))
    return low, min(high, len(p))


def approximate_interval(p: np.ndarray, level: float = 0.95) -> tuple[int, int]:
    """Central ``level`` interval from the refined normal approximation (see the module docstring)."""
    p = np.asarray(p, dtype="float64")
    n = len(p)
    variance = float(np.sum(p * (1 - p)))
    if n == 0 or variance == 0.0:
        certain = int(round(float(p.sum())))
        return certain, certain
    mu, sigma = float(p.sum()), math.sqrt(variance)
    gamma = float(np.sum(p * (1 - p) * (1 - 2 * p))) / sigma**3
    tail = (1 - level) / 2
    span = int(math.ceil(6 * sigma)) + 2
    k = np.arange(max(0, int(mu) - span), min(n, int(mu) + span) + 1)
    cdf = np.maximum.accumulate(_refined_cdf(k, mu, sigma, gamma))  # the skew term can dent monotonicity
    low = k[np.searchsorted(cdf, tail, side="left").clip(max=len(k) - 1)]
    high = k[np.searchsorted(cdf, 1 - tail, side="left").clip(max=len(k) - 1)]
    return int(low), int(high)


def claims_interval(p: np.ndarray, level: float = 0.95) -> tuple[int, int]:
    """The central ``level`` interval of the number of claims: exact for a day, approximate for large pools."""
    p = np.asarray(p, dtype="float64")
    return exact_interval(p, level) if len(p) <= EXACT_MAX_APPLICANTS else approximate_interval(p, level)


def forecast_claims(p: np.ndarray, average_claim_cost: float) -> ClaimsForecast:
    """Expected claims (Σp), their 95% interval and the reserve at ``average_claim_cost`` per claim."""
    p = np.asarray(p, dtype="float64")
    expected = float(p.sum())
    low, high = claims_interval(p)
    return ClaimsForecast(
        applicants=len(p),
        expected_claims=expected,
        claims_low=low,
        claims_high=high,
        reserve=expected * average_claim_cost,
        reserve_low=low * average_claim_cost,
        reserve_high=high * average_claim_cost,
    )
