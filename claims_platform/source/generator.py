"""A deterministic, fixed-concept simulator of the policy administration system.

The seed's training table came from scikit-learn's ``make_classification``, which draws the concept
(cluster centroids, covariances, redundant combinations, …) and the samples from one random stream.
A daily source needs them apart: the concept is drawn ONCE from the world seed (:class:`World`) and
every day is an independent sample of that one concept, drawn from ``default_rng([seed, ordinal])``.
So the same seed and day give the same rows byte for byte, whatever other days are simulated.

The algorithm is ``make_classification``'s (hypercube centroids, ``n_clusters_per_class=2``, random
covariance per cluster, redundant = informative @ B, repeated columns, noise columns, ``flip_y``,
feature permutation; ``shift=0``, ``scale=1`` as in the seed), except that a row's class is drawn
i.i.d. with the class weights instead of splitting a fixed sample size by weight. The seed rescaled each
batch by its own min and max; here the maps are fixed per world (quantiles of a reference sample), so
every day is comparable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings

# make_classification's settings in the seed.
N_INFORMATIVE = 7
N_REDUNDANT = 4
N_REPEATED = 3
N_NOISE = 2
N_LATENT = N_INFORMATIVE + N_REDUNDANT + N_REPEATED + N_NOISE
CLUSTERS_PER_CLASS = 2
CLASS_SEP = 1.2
FLIP_Y = 0.035
CLAIM_RATE = 0.15  # the seed's 15% claimants, as observed in the labels
# make_classification redraws a FLIP_Y share of labels at 50/50, which alone would lift weights=[0.85,
# 0.15] to a 16.2% observed rate; the class weight is set so that the labels show the seed's 15%.
CLAIM_WEIGHT = (CLAIM_RATE - FLIP_Y / 2) / (1 - FLIP_Y)

# The fixed rescaling maps: the reference sample's 0.1% and 99.9% quantiles go to the column's range
# ends (values beyond are clipped), which keeps the seed's min–max look without depending on a batch.
REFERENCE_ROWS = 200_000
SCALE_QUANTILES = (0.001, 0.999)

assert len(schema.SCALED_NUMERIC) + len(schema.UNSCALED_NUMERIC) == N_LATENT


def _binary(p_one: float) -> tuple[tuple, tuple[float, ...]]:
    return (1, 0), (p_one, 1 - p_one)


def _uniform(name: str) -> tuple[tuple, None]:
    column = schema.COLUMNS_BY_NAME[name]
    values = (
        column.levels if column.levels is not None else tuple(range(int(column.low), int(column.high) + 1))
    )
    return values, None


# Generator-specific draw probabilities (DESIGN.md "Data"): name -> (values, p for non-claimants,
# p for claimants). ``None`` means uniform; one shared p means the column ignores the class.
_NAN = float("nan")
_DRAWS: dict[str, tuple[tuple, tuple[float, ...] | None, tuple[float, ...] | None]] = {
    "gender": ((1, 0), (0.46, 0.54), (0.52, 0.48)),
    "marital_status": (
        schema.COLUMNS_BY_NAME["marital_status"].levels,
        (0.2, 0.15, 0.1, 0.25, 0.15, 0.15),
        None,
    ),
    "occupation": (*_uniform("occupation"), None),
    "location": (*_uniform("location"), None),
    "prev_claim_rejected": ((1, 0), (0.08, 0.92), (0.16, 0.84)),
    "known_health_conditions": (*_binary(0.06), None),
    "uk_residence": (*_binary(0.76), None),
    "family_history_1": (*_binary(0.22), None),
    "family_history_2": (*_binary(0.25), None),
    "family_history_3": ((1.0, _NAN, 0.0), (0.12, 0.81, 0.07), None),
    "family_history_4": (*_binary(0.27), None),
    "family_history_5": (*_binary(0.31), None),
    "product_var_1": (*_binary(0.38), None),
    "product_var_2": (*_binary(0.55), None),
    "product_var_3": (schema.COLUMNS_BY_NAME["product_var_3"].levels, (0.23, 0.28, 0.31, 0.18), None),
    "product_var_4": (*_binary(0.76), None),
    "health_status": (*_uniform("health_status"), None),
    "driving_record": (*_uniform("driving_record"), None),
    "previous_claim_rate": ((1, 2, 3, 4, 5), (0.48, 0.29, 0.12, 0.08, 0.03), (0.12, 0.28, 0.34, 0.19, 0.07)),
    "education_level": (*_uniform("education_level"), None),
    "n_dependents": ((1, 2, 3, 4, 5), (0.23, 0.32, 0.27, 0.11, 0.07), None),
    "employment_type": ((1.0, _NAN, 0.0), (0.16, 0.70, 0.14), None),
}
_DERIVED = ("bmi", "income level")
assert set(_DRAWS) | set(_DERIVED) | set(schema.SCALED_NUMERIC) | set(schema.UNSCALED_NUMERIC) == set(
    schema.FEATURES
), "every feature must be drawn, derived or mapped exactly once"


def income_level(income: np.ndarray | pd.Series) -> np.ndarray:
    """``income level``: income in ``schema.INCOME_LEVEL_BINS`` equal-width bins of its range, numbered
    from 0 as the seed's ``pd.cut(income, bins=5, labels=False)`` numbers them (over the fixed range, not
    the batch's)."""
    low, high = schema.SCALED_NUMERIC["income"]
    width = (high - low) / schema.INCOME_LEVEL_BINS
    bins = np.floor((np.asarray(income, dtype=float) - low) / width)
    return np.clip(bins, 0, schema.INCOME_LEVEL_BINS - 1).astype(np.int64)


def bmi(weight_kg: np.ndarray | pd.Series, height_cm: np.ndarray | pd.Series) -> np.ndarray:
    """Body-mass index as the seed computed it: weight / (height/100)², truncated to int."""
    weight = np.asarray(weight_kg, dtype=float)
    height_m = np.asarray(height_cm, dtype=float) / 100
    return (weight / height_m**2).astype(np.int64)


# The largest mean volume a world draws: a day's ids number its rows in 5 digits.
MAX_DAILY_VOLUME = 90_000


def application_id(day: date, number: int) -> str:
    """The stable id of the ``number``-th (1-based) application of ``day``."""
    return f"A{day:%Y%m%d}-{number:05d}"


@dataclass(frozen=True)
class DayDraw:
    """One day's applications before they leave the source system.

    ``labels`` are the claim outcomes row by row; ``informative`` holds each row's latent informative
    features (before permutation and rescaling) so a scenario can define a different concept on them.
    """

    day: date
    applications: pd.DataFrame
    labels: np.ndarray
    informative: np.ndarray


class Scenario(Protocol):
    """What :func:`simulate_day` needs from a drift scenario (see ``claims_platform.source.scenarios``)."""

    def applies_to(self, day: date) -> bool:
        """True when the scenario is switched on for ``day``."""
        ...

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """The day's draw as the scenario changes it (a new object, deterministic)."""
        ...


@dataclass(frozen=True, eq=False)
class World:
    """The fixed concept: everything ``make_classification`` draws that is not a sample.

    Build it with :meth:`from_seed`; all arrays are derived from the seed alone.
    """

    seed: int
    centroids: np.ndarray  # (4, N_INFORMATIVE), cluster k belongs to class k % 2 as in sklearn
    covariances: np.ndarray  # (4, N_INFORMATIVE, N_INFORMATIVE)
    redundant: np.ndarray  # (N_INFORMATIVE, N_REDUNDANT)
    repeated: np.ndarray  # (N_REPEATED,) indices into informative + redundant
    permutation: np.ndarray  # (N_LATENT,) output column j = latent column permutation[j]
    scale_low: np.ndarray  # (len(SCALED_NUMERIC),) latent value mapped to the range's low end
    scale_high: np.ndarray
    daily_volume: int = settings.DAILY_VOLUME  # mean applications a day (each day's count is Poisson)

    @classmethod
    def from_seed(
        cls, seed: int = settings.DEFAULT_WORLD_SEED, daily_volume: int = settings.DAILY_VOLUME
    ) -> World:
        """Draw the concept and the fixed rescaling maps from ``seed``, in make_classification's order.

        ``daily_volume``: the mean applications a day. The concept does not depend on it: a world at 50
        a day and one at 12,000 a day hold the same applicants, in different numbers.
        """
        if not 1 <= daily_volume <= MAX_DAILY_VOLUME:
            raise ValueError(
                f"daily_volume must be 1 to {MAX_DAILY_VOLUME:,} (an id numbers a day's rows in 5 digits), got {daily_volume}"
            )
        rng = np.random.default_rng(seed)
        n_clusters = 2 * CLUSTERS_PER_CLASS
        vertices = rng.choice(2**N_INFORMATIVE, size=n_clusters, replace=False)
        bits = (vertices[:, None] >> np.arange(N_INFORMATIVE)[::-1]) & 1
        centroids = bits.astype(float) * 2 * CLASS_SEP - CLASS_SEP
        covariances = 2 * rng.uniform(size=(n_clusters, N_INFORMATIVE, N_INFORMATIVE)) - 1
        redundant = 2 * rng.uniform(size=(N_INFORMATIVE, N_REDUNDANT)) - 1
        n = N_INFORMATIVE + N_REDUNDANT
        repeated = ((n - 1) * rng.uniform(size=N_REPEATED) + 0.5).astype(np.intp)
        permutation = rng.permutation(N_LATENT)
        world = cls(
            seed=seed,
            centroids=centroids,
            covariances=covariances,
            redundant=redundant,
            repeated=repeated,
            permutation=permutation,
            # Placeholders: the maps come from a reference sample of this very concept, drawn next.
            scale_low=np.zeros(len(schema.SCALED_NUMERIC)),
            scale_high=np.ones(len(schema.SCALED_NUMERIC)),
            daily_volume=daily_volume,
        )
        features, _, _ = world.draw_latent(rng, REFERENCE_ROWS)
        scaled = features[:, : len(schema.SCALED_NUMERIC)]
        low, high = np.quantile(scaled, SCALE_QUANTILES, axis=0)
        return replace(world, scale_low=low, scale_high=high)

    def draw_latent(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` i.i.d. rows of the concept: (permuted features (n, 16), labels (n,), informative (n, 7)).

        Labels include ``flip_y``: a flipped row's label is redrawn uniformly, so ~1.75% are wrong.
        """
        true_class = (rng.random(n) < CLAIM_WEIGHT).astype(np.int64)
        cluster = true_class + 2 * rng.integers(0, CLUSTERS_PER_CLASS, size=n)
        informative = rng.standard_normal((n, N_INFORMATIVE))
        for k in range(len(self.centroids)):
            rows = cluster == k
            informative[rows] = informative[rows] @ self.covariances[k] + self.centroids[k]
        redundant = informative @ self.redundant
        both = np.hstack([informative, redundant])
        noise = rng.standard_normal((n, N_NOISE))
        latent = np.hstack([both, both[:, self.repeated], noise])
        flipped = rng.random(n) < FLIP_Y
        redrawn = rng.integers(0, 2, size=n)
        labels = np.where(flipped, redrawn, true_class)
        return latent[:, self.permutation], labels, informative

    def rescale(self, latent_scaled: np.ndarray) -> dict[str, np.ndarray]:
        """Map the first latent columns to ``schema.SCALED_NUMERIC`` with the fixed maps, as ints."""
        out = {}
        for j, (name, (low, high)) in enumerate(schema.SCALED_NUMERIC.items()):
            unit = (latent_scaled[:, j] - self.scale_low[j]) / (self.scale_high[j] - self.scale_low[j])
            out[name] = np.rint(np.clip(low + unit * (high - low), low, high)).astype(np.int64)
        return out

    def draw_day(self, day: date) -> DayDraw:
        """The day's applications and labels, drawn from ``default_rng([seed, day.toordinal()])``."""
        rng = np.random.default_rng([self.seed, day.toordinal()])
        return self.draw_applicants(rng, day, int(rng.poisson(self.daily_volume)))

    def draw_applicants(self, rng: np.random.Generator, day: date, n: int) -> DayDraw:
        """``n`` applicants of ``day`` drawn from ``rng`` (ids numbered from 1), with their labels."""
        latent, labels, informative = self.draw_latent(rng, n)
        n_scaled = len(schema.SCALED_NUMERIC)
        columns: dict[str, np.ndarray] = self.rescale(latent[:, :n_scaled])
        for j, name in enumerate(schema.UNSCALED_NUMERIC):
            columns[name] = latent[:, n_scaled + j]
        columns["bmi"] = bmi(columns["weight_kg"], columns["height_cm"])
        columns["income level"] = income_level(columns["income"])
        # Draw in schema order so adding a column to _DRAWS cannot reshuffle the others' streams.
        for name in schema.FEATURES:
            if name in _DRAWS:
                columns[name] = _draw_column(rng, name, labels)
        prefix = application_id(day, 0)[:-5]  # formatting the date once per day, not once per row
        frame = pd.DataFrame(
            {
                schema.APPLICATION_ID: np.array([f"{prefix}{i:05d}" for i in range(1, n + 1)], dtype=object),
                schema.APPLICATION_DATE: np.full(n, day, dtype=object),
                **{
                    name: np.asarray(columns[name], dtype=schema.FEATURE_DTYPES[name])
                    for name in schema.FEATURES
                },
            }
        )
        return DayDraw(day=day, applications=frame, labels=labels, informative=informative)


def _draw_column(rng: np.random.Generator, name: str, labels: np.ndarray) -> np.ndarray:
    values, p_negative, p_positive = _DRAWS[name]
    u = rng.random(len(labels))
    k = len(values)
    cdf = np.cumsum(p_negative if p_negative is not None else np.full(k, 1 / k))
    if p_positive is None:
        index = np.searchsorted(cdf, u, side="right")
    else:
        cdf_by_row = np.where(labels[:, None] == 1, np.cumsum(p_positive), cdf)
        index = (u[:, None] >= cdf_by_row).sum(axis=1)
    # Rounding can leave the last cdf entry a hair under 1.
    index = np.minimum(index, k - 1)
    if isinstance(values[0], str):
        return np.array(values, dtype=object)[index]
    return np.asarray(values)[index]


def outcomes_for(draw: DayDraw, label_lag_days: int = settings.LABEL_LAG_DAYS) -> pd.DataFrame:
    """``claim_outcomes`` rows for a draw: one per application id, known ``label_lag_days`` later."""
    outcomes = pd.DataFrame(
        {
            schema.APPLICATION_ID: draw.applications[schema.APPLICATION_ID].to_numpy(),
            schema.CLAIM_STATUS: np.asarray(draw.labels, dtype=np.int64),
            schema.KNOWN_DATE: draw.day + timedelta(days=label_lag_days),
        }
    )
    # A duplicated application (a bad source row) still has one outcome.
    return outcomes.drop_duplicates(schema.APPLICATION_ID, ignore_index=True)


def simulate_day(
    world: World,
    day: date,
    scenario: Scenario | None = None,
    *,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day of the source system: ``(applications, outcomes)``.

    ``applications`` has ``schema.APPLICATION_COLUMNS`` sorted by application id with
    ``schema.FEATURE_DTYPES``; ``outcomes`` has ``schema.OUTCOME_COLUMNS``. The scenario, if given,
    changes the day only when it is switched on for it.
    """
    draw = world.draw_day(day)
    if scenario is not None and scenario.applies_to(day):
        draw = scenario.apply(world, draw)
    return draw.applications, outcomes_for(draw, label_lag_days)


def iter_days(start: date, end: date) -> Iterator[date]:
    """Every day from ``start`` to ``end``, both included."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def simulate_days(
    world: World,
    start: date,
    end: date,
    scenario: Scenario | None = None,
    *,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`simulate_day` for every day from ``start`` to ``end`` (inclusive), concatenated."""
    days = [
        simulate_day(world, day, scenario, label_lag_days=label_lag_days) for day in iter_days(start, end)
    ]
    if not days:
        raise ValueError(f"empty range: start {start} is after end {end}")
    applications = pd.concat([a for a, _ in days], ignore_index=True)
    outcomes = pd.concat([o for _, o in days], ignore_index=True)
    return applications, outcomes
