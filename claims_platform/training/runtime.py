"""The claim-likelihood model's computation: contract check, feature preparation, calibration, prediction.

This file ships inside every registered model as an ARTIFACT (``packaging`` copies it in; ``pyfunc``
and ``loading`` import that copy by path under a name unique to its content), so a model runs the
code it was registered with wherever it is loaded. It must therefore stay SELF-CONTAINED — stdlib,
numpy, pandas and lightgbm only, never ``claims_platform`` or mlflow — and everything else it needs
comes from the model's other artifacts:

- ``booster``: the LightGBM booster as text (``Booster.save_model``), not a pickle;
- ``calibrator``: JSON, ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear
  interpolation through the (smoothed) isotonic fit's thresholds, clipped at the ends, as scikit-learn's
  ``IsotonicRegression(out_of_bounds="clip")`` predicts), ``{"method": "sigmoid", "a": ., "b": .}``
  (Platt: ``1 / (1 + exp(-(a·m + b)))``) or ``{"method": "beta", "a": ., "b": ., "c": .}`` (beta
  calibration of ``q = sigmoid(m)``: ``logit p = a·ln q − b·ln(1 − q) + c``). All act on the booster's
  raw margin ``m`` (log-odds); other keys (the fit's provenance, its uncertainty) are the platform's;
- ``feature_spec``: JSON, the ordered feature list, the categorical columns with their FIXED levels,
  every feature's contract (kind, bounds, levels, nullable) and the dropped columns with the reason
  (built by ``claims_platform.training.features``).

What a loader may rely on, in this and every later version of the file: :func:`scorer_from_artifacts`
and the :class:`Scorer` it returns (``predict(frame, check=...)``; from the versions that explain,
``explain(frame, check=...)`` and ``contributions(frame)``), and :class:`ContractViolation`.

**Reasons** (:meth:`Scorer.explain`): each row's features that pushed its probability up the most, with
their signed contributions. LightGBM's own TreeSHAP (``pred_contrib``) splits each row's raw margin
exactly into one contribution per feature plus the model's base margin (the training rows' mean). The
calibrator is a monotone map ``g`` of the margin, so the contributions are carried through it by one
factor per row: ``φ·(g(m) − g(b))/(m − b)``, with ``m`` the row's margin and ``b`` the base. They then
add up, with the base probability ``g(b)``, to the calibrated probability itself, keep their signs
(``g`` is increasing) and their ranking, and are in the units the decision is taken in.

Training imports this module from the platform too (:func:`prepare_features`,
:func:`apply_calibrator`, :func:`predict_claim_probability`), so training, nightly scoring and the
registered model share one code path.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # LightGBM (and the scikit-learn it imports: 0.7 s) only where a model is loaded
    import lightgbm as lgb

ARTIFACT_BOOSTER = "booster"
ARTIFACT_CALIBRATOR = "calibrator"
ARTIFACT_SPEC = "feature_spec"
PROBABILITY_COLUMN = "claim_probability"
# No applicant has no risk, nor a certain claim: a probability is at least one in a million from 0 and 1.
PROBABILITY_FLOOR = 1e-6

# The rules of the contract, in the order a value is judged: a value breaks at most one, the first.
RULE_PRESENT = "column present"
RULE_REQUIRED = "required (not null)"
RULE_NUMBER = "a number"
RULE_WHOLE = "a whole number"
RULE_LEVELS = "one of the levels"
RULE_RANGE = "in range"

MAX_LISTED_VIOLATIONS = 20  # in an error message; the rest are counted

REASON_COUNT = 3  # features named per row: those that pushed its probability up the most
REASON_FEATURE = "reason_{}_feature"  # the i-th feature's name (None when fewer pushed it up)
REASON_CONTRIBUTION = "reason_{}_contribution"  # its contribution to the calibrated probability
REASON_TEXT = "reason"  # "previous claim rate 5 (+0.21), credit score 1 312 (+0.08)"


@dataclass(frozen=True)
class Violation:
    """One value (or a whole column) that breaks the model's data contract."""

    row: int | None  # 0-based position of the row in the input; None for a missing column
    column: str
    rule: str  # one of the RULE_* constants
    value: Any = None
    terms: str = ""  # the rule's parameters as text: "A..Z", "17..95"

    def __str__(self) -> str:
        if self.row is None:
            return f"column {self.column!r}: missing from the input"
        where = f"row {self.row}, column {self.column!r}"
        if self.rule == RULE_REQUIRED:
            return f"{where}: value is null, but the column is required (not nullable)"
        if self.rule in (RULE_NUMBER, RULE_WHOLE):
            return f"{where}: value {self.value!r} is not {self.rule}"
        if self.rule == RULE_LEVELS:
            return f"{where}: value {self.value!r} is not one of the levels {self.terms}"
        return f"{where}: value {self.value!r} is out of range {self.terms}"


class ContractViolation(ValueError):
    """Rows that break the model's data contract; the message lists them (the first few, then a count)."""

    def __init__(self, violations: Sequence[Violation]):
        self.violations = list(violations)
        listed = [f"  {v}" for v in self.violations[:MAX_LISTED_VIOLATIONS]]
        more = len(self.violations) - len(listed)
        if more:
            listed.append(f"  ... and {more} more")
        super().__init__(
            f"The input breaks the model's data contract ({len(self.violations)} violation(s); rows are "
            "numbered from 0 in input order):\n" + "\n".join(listed)
        )


def _levels_text(levels: Sequence[Any]) -> str:
    if len(levels) > 8:
        return f"{levels[0]}..{levels[-1]}"
    return ", ".join(str(v) for v in levels)


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _as_numbers(values: pd.Series) -> np.ndarray:
    """Each value as float64; NaN where it is null or not a real number (words, booleans, objects).

    A numeral written as text ("40", "-1.25e-3") is its number: over HTTP every CSV value arrives as
    text (the registered signature declares every feature as text so that MLflow passes each value to
    this contract unchanged), and Python's ``float`` reads a number's shortest repr back exactly.
    """
    if values.dtype.kind in "iuf":
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.full(len(values), np.nan)
    if values.dtype.kind == "b":
        return out
    for i, value in enumerate(values.to_numpy(dtype=object)):
        if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
            out[i] = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):  # a word stays NaN: not a number
                out[i] = float(value)
    return out


def _column_violations(name: str, values: pd.Series, rules: Mapping[str, Any]) -> list[Violation]:
    """The violations of one column, judged vectorised (a valid column costs a few array operations)."""
    null = values.isna().to_numpy()
    broken: list[tuple[str, np.ndarray, str]] = []  # (rule, mask, terms), in judging order
    if not rules["nullable"]:
        broken.append((RULE_REQUIRED, null, ""))
    present = ~null
    levels = rules.get("levels")
    if rules["kind"] == "category":
        broken.append((RULE_LEVELS, present & ~values.isin(list(levels)).to_numpy(), _levels_text(levels)))
    else:
        number = _as_numbers(values)
        numeric = present & ~np.isnan(number)
        broken.append((RULE_NUMBER, present & ~numeric, ""))
        if rules["kind"] == "int":
            with np.errstate(invalid="ignore"):  # floor(inf) is fine; inf is caught by the range
                broken.append((RULE_WHOLE, numeric & (np.floor(number) != number), ""))
        if levels is not None:
            broken.append(
                (RULE_LEVELS, numeric & ~np.isin(number, np.asarray(levels, float)), _levels_text(levels))
            )
        elif rules.get("low") is not None or rules.get("high") is not None:
            low, high = rules.get("low"), rules.get("high")
            outside = np.zeros(len(values), dtype=bool)
            if low is not None:
                outside |= number < low
            if high is not None:
                outside |= number > high
            broken.append((RULE_RANGE, numeric & outside, _range_text(low, high)))
    judged = np.zeros(len(values), dtype=bool)
    found: list[Violation] = []
    for rule, mask, terms in broken:
        fresh = mask & ~judged
        judged |= mask
        for position in np.flatnonzero(fresh):
            value = values.iloc[position]
            value = value.item() if isinstance(value, np.generic) else value
            found.append(Violation(int(position), name, rule, value, terms))
    return found


def check_contract(frame: pd.DataFrame, spec: Mapping[str, Any]) -> list[Violation]:
    """Every value of ``frame``'s feature columns that breaks the spec's contract; empty when valid.

    Per feature (``spec["contract"]``): not null unless nullable; categories one of their levels;
    numbers real numbers (not text, not booleans), whole in int columns, one of the levels (0/1
    columns) or inside the inclusive bounds. A value breaks at most one rule, the first it fails in
    that order; a missing feature column is one violation with ``row`` None. Sorted by row, then by
    the spec's feature order. Extra columns are ignored. Pure: reads ``frame``, changes nothing.
    """
    contract: Mapping[str, Mapping[str, Any]] = spec["contract"]
    found: list[tuple[int, int, Violation]] = []
    for order, name in enumerate(spec["features"]):
        if name not in frame.columns:
            found.append((-1, order, Violation(None, name, RULE_PRESENT)))
            continue
        found.extend((v.row, order, v) for v in _column_violations(name, frame[name], contract[name]))
    found.sort(key=lambda item: (item[0], item[1]))
    return [v for _, _, v in found]


def prepare_features(frame: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """The model's input matrix from rows in the warehouse's column format.

    Columns come out in ``spec["features"]`` order; extra columns (ids, dates, labels) are ignored.
    Categoricals become pandas ``Categorical`` with the spec's FIXED levels, so a level keeps the same
    integer code on every day whatever levels that day happens to contain (LightGBM splits on codes).
    A value outside the levels becomes missing — :func:`check_contract` (or the platform's data
    contract) refuses such rows before scoring. Everything else becomes float64 (nullable 0/1 columns
    arrive as floats with NaN anyway).

    Raises ``KeyError`` naming every missing feature column.
    """
    features: list[str] = list(spec["features"])
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise KeyError(f"input lacks feature columns: {missing}")
    categorical: Mapping[str, list] = spec["categorical"]
    columns: dict[str, Any] = {}
    for name in features:
        values = frame[name]
        if name in categorical:
            columns[name] = pd.Categorical(values.astype(object), categories=list(categorical[name]))
        else:
            columns[name] = pd.to_numeric(values, errors="raise").astype(np.float64).to_numpy()
    return pd.DataFrame(columns, index=frame.index)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a large positive margin overflows to inf, which is fine (gives 0), but warns.
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def apply_calibrator(calibrator: Mapping[str, Any], margin: np.ndarray) -> np.ndarray:
    """Calibrated probabilities from the booster's raw margins (log-odds), strictly inside (0, 1): at least
    ``PROBABILITY_FLOOR`` from either end (a logistic of a large margin rounds to exactly 1.0 in floating point)."""
    margin = np.asarray(margin, dtype=np.float64)
    method = calibrator["method"]
    if method == "isotonic":
        p = np.interp(margin, np.asarray(calibrator["x"], float), np.asarray(calibrator["y"], float))
    elif method == "sigmoid":
        p = _sigmoid(float(calibrator["a"]) * margin + float(calibrator["b"]))
    elif method == "beta":
        # Beta calibration (Kull et al. 2017) of the booster's probability q = sigmoid(margin):
        # logit p = a·ln q − b·ln(1 − q) + c, with ln q and ln(1 − q) computed from the margin stably.
        log_q, log_not_q = -np.logaddexp(0.0, -margin), -np.logaddexp(0.0, margin)
        p = _sigmoid(
            float(calibrator["a"]) * log_q - float(calibrator["b"]) * log_not_q + float(calibrator["c"])
        )
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    return np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


def predict_claim_probability(
    booster: lgb.Booster, calibrator: Mapping[str, Any], spec: Mapping[str, Any], frame: pd.DataFrame
) -> np.ndarray:
    """Calibrated claim probabilities for warehouse-format rows: features → booster margin → calibrator."""
    if len(frame) == 0:
        return np.empty(0, dtype=np.float64)
    margin = booster.predict(prepare_features(frame, spec), raw_score=True)
    return apply_calibrator(calibrator, margin)


@dataclass(frozen=True)
class Contributions:
    """Each row's margin and probability split into one contribution per feature plus a base.

    ``margin_contributions.sum(axis=1) + base_margin`` is the booster's raw margin of each row, and
    ``contributions.sum(axis=1) + base_probability`` its calibrated probability (see the module's
    docstring for how the calibration is carried through).
    """

    features: list[str]
    margin_contributions: np.ndarray  # rows × features, log-odds
    base_margin: float
    contributions: np.ndarray  # rows × features, probability
    base_probability: float
    probability: np.ndarray


def claim_contributions(
    booster: lgb.Booster, calibrator: Mapping[str, Any], spec: Mapping[str, Any], frame: pd.DataFrame
) -> Contributions:
    """TreeSHAP contributions of each feature to each row's margin and calibrated probability."""
    features = list(spec["features"])
    if len(frame) == 0:
        empty = np.empty((0, len(features)))
        base = 0.0
        return Contributions(
            features,
            empty,
            base,
            empty,
            float(apply_calibrator(calibrator, np.array([base]))[0]),
            np.empty(0),
        )
    features_frame = prepare_features(frame, spec)
    raw = np.asarray(booster.predict(features_frame, pred_contrib=True), dtype=np.float64)
    margin_contributions, base_margin = raw[:, :-1], float(raw[0, -1])
    # The margin as the prediction computes it (the contributions add up to it to ~1e-14), so that a row's
    # probability is the same asked for reasons or not.
    margin = booster.predict(features_frame, raw_score=True)
    probability = apply_calibrator(calibrator, margin)
    base_probability = float(apply_calibrator(calibrator, np.array([base_margin]))[0])
    gap = margin - base_margin
    near = np.abs(gap) < 1e-9
    # The calibrator's secant from the base to the row's margin (its local slope where they meet).
    step = 1e-4
    slope_at = (apply_calibrator(calibrator, margin + step) - apply_calibrator(calibrator, margin - step)) / (
        2 * step
    )
    factor = np.where(near, slope_at, (probability - base_probability) / np.where(near, 1.0, gap))
    return Contributions(
        features=features,
        margin_contributions=margin_contributions,
        base_margin=base_margin,
        contributions=margin_contributions * factor[:, None],
        base_probability=base_probability,
        probability=probability,
    )


def _value_text(value: Any) -> str:
    """A feature's value as a reason shows it: levels and whole numbers as they are, others to 4 digits."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    try:
        number = float(value)  # a number, or a number sent as text (the served model takes text)
    except (TypeError, ValueError):
        return str(value)  # a level
    if np.isnan(number):
        return "missing"
    return str(int(number)) if number.is_integer() else f"{number:.4g}"


def _contribution_text(contribution: float) -> str:
    return f"{contribution:+.2f}" if abs(contribution) >= 0.005 else f"{contribution:+.3f}"


def reasons(frame: pd.DataFrame, found: Contributions, count: int = REASON_COUNT) -> pd.DataFrame:
    """Per row (same index): the ``count`` features that raised its probability the most (positive
    contributions only, largest first), their contributions, and the reason as one line of text."""
    n = len(frame)
    order = (
        np.argsort(-found.contributions, axis=1, kind="stable")[:, :count] if n else np.empty((0, count), int)
    )
    top = np.take_along_axis(found.contributions, order, axis=1) if n else np.empty((0, count))
    raised = top > 0
    names = np.asarray(found.features, dtype=object)
    columns: dict[str, Any] = {}
    for i in range(count):
        columns[REASON_FEATURE.format(i + 1)] = np.where(raised[:, i], names[order[:, i]], None) if n else []
        columns[REASON_CONTRIBUTION.format(i + 1)] = np.where(raised[:, i], top[:, i], np.nan) if n else []
    # Each reason's value, picked from the rows as one array per rank (reading cell by cell through pandas
    # was a seventh of a year-long scoring run's time).
    values = frame.reindex(columns=found.features).to_numpy(dtype=object)
    ranks = order.shape[1]
    picked = [values[np.arange(n), order[:, i]].tolist() for i in range(ranks)]
    labels = [name.replace("_", " ") for name in found.features]
    order_rows, top_rows, raised_rows = order.tolist(), top.tolist(), raised.tolist()
    texts = []
    for row in range(n):
        parts = [
            f"{labels[order_rows[row][i]]} {_value_text(picked[i][row])} ({_contribution_text(top_rows[row][i])})"
            for i in range(ranks)
            if raised_rows[row][i]
        ]
        texts.append(", ".join(parts) if parts else "no feature raised the probability above the base rate")
    columns[REASON_TEXT] = texts
    return pd.DataFrame(columns, index=frame.index)


@dataclass(frozen=True)
class Scorer:
    """A registered model's booster, calibrator and feature spec, ready to score."""

    booster: lgb.Booster
    calibrator: Mapping[str, Any]
    spec: Mapping[str, Any]

    def check(self, frame: pd.DataFrame) -> list[Violation]:
        """The rows and values of ``frame`` that break this model's contract (see :func:`check_contract`)."""
        return check_contract(frame, self.spec)

    def predict(self, frame: pd.DataFrame, check: bool = False) -> np.ndarray:
        """Calibrated claim probabilities for warehouse-format rows.

        ``check=True`` first holds the rows to the model's contract and raises
        :class:`ContractViolation` listing what breaks it. Off by default: the platform scores rows
        that already passed its own data contract, and a refused value would otherwise be scored as
        missing (an unknown level) or fail deep inside pandas.
        """
        if check:
            violations = check_contract(frame, self.spec)
            if violations:
                raise ContractViolation(violations)
        return predict_claim_probability(self.booster, self.calibrator, self.spec, frame)

    def contributions(self, frame: pd.DataFrame) -> Contributions:
        """Each feature's contribution to each row's margin and calibrated probability (TreeSHAP)."""
        return claim_contributions(self.booster, self.calibrator, self.spec, frame)

    def explain(self, frame: pd.DataFrame, check: bool = False) -> pd.DataFrame:
        """``claim_probability`` and the reasons of each row (same index): see :func:`reasons`."""
        if check:
            violations = check_contract(frame, self.spec)
            if violations:
                raise ContractViolation(violations)
        found = self.contributions(frame)
        explained = reasons(frame, found)
        explained.insert(0, PROBABILITY_COLUMN, found.probability)
        return explained


def scorer_from_artifacts(read: Callable[[str], str]) -> Scorer:
    """This runtime's scorer for a model whose artifacts ``read(key)`` returns as text.

    The one entry point loaders call on a shipped runtime: which artifacts a model needs, and how
    they are parsed, is this file's business, so it travels with the model.
    """
    import lightgbm as lgb

    return Scorer(
        booster=lgb.Booster(model_str=read(ARTIFACT_BOOSTER)),
        calibrator=json.loads(read(ARTIFACT_CALIBRATOR)),
        spec=json.loads(read(ARTIFACT_SPEC)),
    )
