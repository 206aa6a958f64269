"""Which columns the model sees, built from :mod:`claims_platform.core.schema` (the one place for column facts).

Dropped, and why:

- ``application_id`` and ``application_date`` are identifiers. The date in particular must not be a
  feature: the model is used on days after its window, where a date split would only extrapolate.
- ``income level`` is ``income`` cut into equal-width bins. Any split on it is a split on ``income``,
  which the trees see at full resolution, so it adds nothing but a second column sharing one signal
  (and halving that signal's apparent importance).

Excluded by declaration: the protected characteristics declared ``excluded``
(:mod:`claims_platform.core.protected`; ``gender`` by default) are never features; the spec records the
declaration, so the model says what it was kept from.

Kept although derived: ``bmi`` = weight / height². A tree cannot form a ratio of two columns from
axis-aligned splits, so the derived column can carry information that ``height_cm`` and
``weight_kg`` alone expose only through many splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from claims_platform.core import schema
from claims_platform.core.protected import DEFAULT_PROTECTED, excluded

# 2: a per-feature ``contract`` (kind, bounds, levels, nullable) that the registered model enforces.
# 3: ``protected``, the protected characteristics declared when it was trained (excluded ones dropped).
SPEC_VERSION = 3
EXCLUDED_REASON = (
    "protected characteristic, excluded from the model (CLAIMS_PROTECTED_COLUMNS); kept for monitoring"
)

DROPPED_COLUMNS: dict[str, str] = {
    schema.APPLICATION_ID: "identifier, no information about the applicant",
    schema.APPLICATION_DATE: "identifier; a date feature cannot generalise to days after the training window",
    "income level": "equal-width binning of income: every split on it is a split on income",
}


def dropped_columns(protected: Mapping[str, str] = DEFAULT_PROTECTED) -> dict[str, str]:
    """Every column the model does not see, with why: :data:`DROPPED_COLUMNS` and the excluded protected ones."""
    return {**DROPPED_COLUMNS, **dict.fromkeys(excluded(protected), EXCLUDED_REASON)}


def model_features(protected: Mapping[str, str] = DEFAULT_PROTECTED) -> tuple[str, ...]:
    """The model's features in schema order: every schema feature not dropped (:func:`dropped_columns`)."""
    dropped = dropped_columns(protected)
    return tuple(name for name in schema.FEATURES if name not in dropped)


def feature_contract(name: str) -> dict[str, Any]:
    """One feature's contract as JSON: its kind, inclusive bounds, allowed levels and nullability.

    The registered model carries this (inside its feature spec) so that it can refuse a row that
    breaks the contract wherever it is served, without :mod:`claims_platform.core.schema` at hand.
    """
    column = schema.COLUMNS_BY_NAME[name]
    return {
        "kind": column.kind,
        "low": column.low,
        "high": column.high,
        "levels": list(column.levels) if column.levels is not None else None,
        "nullable": column.nullable,
    }


def feature_spec(protected: Mapping[str, str] = DEFAULT_PROTECTED) -> dict[str, Any]:
    """The JSON-serialisable feature spec that ``training.runtime`` applies and enforces.

    Categorical levels are the schema's fixed levels, so category codes do not depend on the data;
    ``contract`` holds every feature's rules (see :func:`feature_contract`); ``protected`` the declaration
    the model was trained under.
    """
    features = model_features(protected)
    categorical = {
        name: list(schema.COLUMNS_BY_NAME[name].levels or ())
        for name in schema.CATEGORICAL_FEATURES
        if name in features
    }
    return {
        "spec_version": SPEC_VERSION,
        "features": list(features),
        "categorical": categorical,
        "contract": {name: feature_contract(name) for name in features},
        "dropped": dropped_columns(protected),
        "protected": dict(protected),
        "target": schema.CLAIM_STATUS,
    }
