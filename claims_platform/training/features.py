"""Which columns the model sees, built from :mod:`claims_platform.schema` (the one place for column facts).

Dropped, and why:

- ``application_id`` and ``application_date`` are identifiers. The date in particular must not be a
  feature: the model is used on days after its window, where a date split would only extrapolate.
- ``income level`` is ``income`` cut into equal-width bins. Any split on it is a split on ``income``,
  which the trees see at full resolution, so it adds nothing but a second column sharing one signal
  (and halving that signal's apparent importance).

Kept although derived: ``bmi`` = weight / height². A tree cannot form a ratio of two columns from
axis-aligned splits, so the derived column can carry information that ``height_cm`` and
``weight_kg`` alone expose only through many splits.
"""

from __future__ import annotations

from typing import Any

from claims_platform import schema

SPEC_VERSION = 1

DROPPED_COLUMNS: dict[str, str] = {
    schema.APPLICATION_ID: "identifier, no information about the applicant",
    schema.APPLICATION_DATE: "identifier; a date feature cannot generalise to days after the training window",
    "income level": "equal-width binning of income: every split on it is a split on income",
}


def model_features() -> tuple[str, ...]:
    """The model's features in schema order: every schema feature not in :data:`DROPPED_COLUMNS`."""
    return tuple(name for name in schema.FEATURES if name not in DROPPED_COLUMNS)


def feature_spec() -> dict[str, Any]:
    """The JSON-serialisable feature spec that ``models.runtime.prepare_features`` applies.

    Categorical levels are the schema's fixed levels, so category codes do not depend on the data.
    """
    features = model_features()
    categorical = {
        name: list(schema.COLUMNS_BY_NAME[name].levels or ())
        for name in schema.CATEGORICAL_FEATURES
        if name in features
    }
    return {
        "spec_version": SPEC_VERSION,
        "features": list(features),
        "categorical": categorical,
        "dropped": dict(DROPPED_COLUMNS),
        "target": schema.CLAIM_STATUS,
    }
