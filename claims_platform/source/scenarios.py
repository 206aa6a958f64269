"""Named drift scenarios: ways the world outside the platform changes from a given date.

A scenario is switched on from ``from_date`` (inclusive) and changes each later day's draw
deterministically: its random stream is ``default_rng([world seed, day ordinal, scenario key])``, so
a scenario day is as reproducible as a normal one and days before ``from_date`` are untouched.

Build one by name with :func:`get_scenario` (``SCENARIOS`` maps names to classes).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from datetime import date
from typing import ClassVar

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings
from claims_platform.source import SCENARIO_NAMES
from claims_platform.source.generator import CLAIM_WEIGHT, FLIP_Y, N_INFORMATIVE, DayDraw, World, income_level


@dataclass(frozen=True)
class DriftScenario:
    """Base of the named scenarios: on from ``from_date``, inclusive."""

    from_date: date = settings.FIRST_DAY
    name: ClassVar[str] = ""

    def applies_to(self, day: date) -> bool:
        """True when ``day`` is on or after ``from_date``."""
        return day >= self.from_date

    def rng(self, world: World, day: date) -> np.random.Generator:
        """The scenario's own stream for the day; independent of the day's base draw."""
        return np.random.default_rng([world.seed, day.toordinal(), zlib.crc32(self.name.encode())])

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """The day's draw as the scenario changes it (a new object)."""
        raise NotImplementedError


@dataclass(frozen=True)
class IncomeShift(DriftScenario):
    """Covariate shift: every applicant's income is ``factor`` times higher (default +35%).

    Income is clipped to its schema range and ``income level`` is recomputed from it, so the row stays
    consistent; labels are unchanged. Drift monitoring should flag ``income`` and ``income level``.
    Because income is one of the informative columns, a model also loses a little accuracy.
    """

    factor: float = 1.35
    name: ClassVar[str] = "income_shift"

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """Scale income, clip it into range and recompute ``income level``."""
        low, high = schema.SCALED_NUMERIC["income"]
        frame = draw.applications.copy()
        shifted = np.clip(np.rint(frame["income"].to_numpy() * self.factor), low, high).astype(np.int64)
        frame["income"] = shifted
        frame["income level"] = income_level(shifted)
        return replace(draw, applications=frame)


@dataclass(frozen=True)
class MixShift(DriftScenario):
    """Mix shift: the ``occupation`` mix moves from uniform to ``probabilities`` (A-heavy by default).

    Occupation is independent of the claim in this world, so P(claim | features) is unchanged: only the
    input distribution moves (drift reports should flag ``occupation``; model quality should not drop).
    """

    column: str = "occupation"
    probabilities: tuple[float, ...] = (0.40, 0.25, 0.15, 0.08, 0.06, 0.04, 0.02)
    name: ClassVar[str] = "mix_shift"

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """Redraw ``column`` from the new mix."""
        levels = schema.COLUMNS_BY_NAME[self.column].levels
        if levels is None or len(levels) != len(self.probabilities):
            raise ValueError(f"{self.column}: needs one probability per level {levels}")
        frame = draw.applications.copy()
        index = self.rng(world, draw.day).choice(len(levels), size=len(frame), p=self.probabilities)
        frame[self.column] = np.array(levels, dtype=object)[index]
        return replace(draw, applications=frame)


# A new concept needs a fixed threshold per world; worlds are pure functions of their seed.
_NEW_CONCEPT_CACHE: dict[int, tuple[np.ndarray, float]] = {}


@dataclass(frozen=True)
class ConceptShift(DriftScenario):
    """Concept shift: in ``locations`` (A–M, about half the applicants) claims follow a NEW pattern.

    For those rows the label becomes 1 when the row's latent informative features lie beyond a fixed
    random direction's 85th percentile (with the world's ``flip_y`` noise), so the subgroup's claim rate
    stays about the same while WHO claims changes. Features are untouched: input drift monitoring sees
    nothing, a model trained on the old concept ranks the subgroup at random (its AUC drops clearly), and
    a model retrained on post-shift data can learn the new pattern from the same columns.
    """

    locations: tuple[str, ...] = tuple("ABCDEFGHIJKLM")
    name: ClassVar[str] = "concept_shift"

    def new_concept(self, world: World) -> tuple[np.ndarray, float]:
        """The direction and threshold of the new concept, fixed per world."""
        if world.seed not in _NEW_CONCEPT_CACHE:
            rng = np.random.default_rng([world.seed, zlib.crc32(self.name.encode())])
            direction = rng.standard_normal(N_INFORMATIVE)
            direction /= np.linalg.norm(direction)
            _, _, informative = world.draw_latent(rng, 100_000)
            threshold = float(np.quantile(informative @ direction, 1 - CLAIM_WEIGHT))
            _NEW_CONCEPT_CACHE[world.seed] = (direction, threshold)
        return _NEW_CONCEPT_CACHE[world.seed]

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """Relabel the subgroup by the new concept."""
        direction, threshold = self.new_concept(world)
        rng = self.rng(world, draw.day)
        n = len(draw.labels)
        flipped = rng.random(n) < FLIP_Y
        redrawn = rng.integers(0, 2, size=n)
        new_labels = np.where(flipped, redrawn, (draw.informative @ direction > threshold).astype(np.int64))
        in_group = draw.applications["location"].isin(self.locations).to_numpy()
        return replace(draw, labels=np.where(in_group, new_labels, draw.labels))


@dataclass(frozen=True)
class RiskShift(DriftScenario):
    """Prior shift: riskier applicants arrive (a new broker, a competitor's price rise). Each day ``share``
    of the applicants (default 10%) who would not have claimed are replaced by applicants of the same world
    who go on to claim.

    The concept is unchanged (who claims, given the columns), but the claim rate rises by about ``share``
    and every informative column moves towards the claimants' values: the predicted probabilities drift,
    the decisions and the reserve move with them, and a model calibrated to the old mix under-predicts.
    This is the drift that matters: it asks for a retrain.
    """

    share: float = 0.10
    name: ClassVar[str] = "risk_shift"

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """Replace ``share`` of the day's non-claimants by claimants drawn from the scenario's own stream."""
        rng = self.rng(world, draw.day)
        non_claimants = np.flatnonzero(draw.labels == 0)
        k = min(len(non_claimants), round(self.share * len(draw.labels)))
        if k == 0:
            return draw
        replaced = np.sort(rng.choice(non_claimants, size=k, replace=False))
        claimants = np.empty(0, dtype=np.intp)
        while (
            len(claimants) < k
        ):  # about k / CLAIM_WEIGHT draws hold k claimants; twice that nearly always does
            pool = world.draw_applicants(rng, draw.day, 2 * int(k / CLAIM_WEIGHT) + 20)
            claimants = np.flatnonzero(pool.labels == 1)
        taken = claimants[:k]
        frame = draw.applications.copy()
        for column in schema.FEATURES:
            values = frame[column].to_numpy().copy()
            values[replaced] = pool.applications[column].to_numpy()[taken]
            frame[column] = values
        labels, informative = draw.labels.copy(), draw.informative.copy()
        labels[replaced], informative[replaced] = 1, pool.informative[taken]
        return replace(draw, applications=frame, labels=labels, informative=informative)


# How bad rows are tagged: their application id gets this suffix plus the defect's name, e.g.
# "A20250301-00017-dq-null_required". Ids survive the warehouse, so tests can count bad rows anywhere.
DEFECT_TAG = "-dq-"
DEFECTS = ("out_of_range", "null_required", "unknown_level", "non_finite", "duplicate_id")


def defect_of(application_id: str) -> str | None:
    """The defect a data_quality row was injected with, or None for a clean row."""
    _, tag, defect = application_id.partition(DEFECT_TAG)
    return defect if tag else None


def count_defects(applications: pd.DataFrame) -> dict[str, int]:
    """Rows per injected defect (both copies of a duplicated id count)."""
    defects = applications[schema.APPLICATION_ID].map(defect_of).dropna()
    return {d: int(n) for d, n in defects.value_counts().sort_index().items()}


@dataclass(frozen=True)
class DataQuality(DriftScenario):
    """Data quality incident: about ``rate`` of the rows (default 3%) are broken, spread over ``DEFECTS``.

    - ``out_of_range``: ``age`` 150, ``income`` -5,000, ``credit_score_1`` 1,500 or ``health_status`` 9;
    - ``null_required``: a null in ``age``, ``marital_status`` or ``financial_hist_2`` (a null in an
      integer column makes that column float64 for the day, as pandas does);
    - ``unknown_level``: ``occupation`` "Z" or ``product_var_3`` "X";
    - ``non_finite``: ``insurance_hist_1`` +inf, -inf or NaN;
    - ``duplicate_id``: a row is delivered twice (an exact copy right after it).

    Every bad row is tagged: its id ends in ``DEFECT_TAG + defect`` (both copies of a duplicate carry
    the tag), see :func:`defect_of` and :func:`count_defects`. Each duplicate has one outcome.
    """

    rate: float = 0.03
    name: ClassVar[str] = "data_quality"

    _OUT_OF_RANGE: ClassVar[tuple[tuple[str, int], ...]] = (
        ("age", 150),
        ("income", -5_000),
        ("credit_score_1", 1_500),
        ("health_status", 9),
    )
    _NULL_REQUIRED: ClassVar[tuple[str, ...]] = ("age", "marital_status", "financial_hist_2")
    _UNKNOWN_LEVEL: ClassVar[tuple[tuple[str, str], ...]] = (("occupation", "Z"), ("product_var_3", "X"))
    _NON_FINITE: ClassVar[tuple[float, ...]] = (np.inf, -np.inf, np.nan)

    def apply(self, world: World, draw: DayDraw) -> DayDraw:
        """Break ``rate`` of the rows, tag them, and insert the duplicates."""
        frame = draw.applications.copy()
        n = len(frame)
        n_bad = max(len(DEFECTS), round(self.rate * n))
        rows = np.sort(self.rng(world, draw.day).choice(n, size=min(n_bad, n), replace=False))
        kinds = [DEFECTS[i % len(DEFECTS)] for i in range(len(rows))]
        ids = frame[schema.APPLICATION_ID].to_numpy().copy()
        # Columns that receive a null must be able to hold one before values are set.
        frame = frame.astype({c: "float64" for c in self._NULL_REQUIRED if frame[c].dtype.kind == "i"})
        counters = dict.fromkeys(DEFECTS, 0)
        for row, kind in zip(rows, kinds, strict=True):
            i = counters[kind]
            counters[kind] += 1
            ids[row] = f"{ids[row]}{DEFECT_TAG}{kind}"
            position = frame.columns.get_loc
            if kind == "out_of_range":
                column, value = self._OUT_OF_RANGE[i % len(self._OUT_OF_RANGE)]
                frame.iat[row, position(column)] = value
            elif kind == "null_required":
                column = self._NULL_REQUIRED[i % len(self._NULL_REQUIRED)]
                frame.iat[row, position(column)] = None if frame[column].dtype == object else np.nan
            elif kind == "unknown_level":
                column, value = self._UNKNOWN_LEVEL[i % len(self._UNKNOWN_LEVEL)]
                frame.iat[row, position(column)] = value
            elif kind == "non_finite":
                frame.iat[row, position("insurance_hist_1")] = self._NON_FINITE[i % len(self._NON_FINITE)]
        frame[schema.APPLICATION_ID] = ids
        duplicated = rows[[k == "duplicate_id" for k in kinds]]
        # Each duplicated row appears twice, the copy right after the original: ids stay sorted.
        order = np.sort(np.concatenate([np.arange(n), duplicated]), kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        informative = draw.informative[order]
        return replace(draw, applications=frame, labels=draw.labels[order], informative=informative)


SCENARIOS: dict[str, type[DriftScenario]] = {
    cls.name: cls for cls in (IncomeShift, MixShift, ConceptShift, DataQuality, RiskShift)
}


def get_scenario(name: str, from_date: date = settings.FIRST_DAY) -> DriftScenario:
    """The scenario called ``name``, switched on from ``from_date``."""
    try:
        return SCENARIOS[name](from_date=from_date)
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None


assert tuple(SCENARIOS) == SCENARIO_NAMES, "keep claims_platform.source.SCENARIO_NAMES in step"
