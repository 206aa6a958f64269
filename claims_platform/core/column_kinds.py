"""How each feature is compared between two samples: as numbers or as levels (from the schema, never guessed).

One rule for everything that compares samples of applications: the daily drift tests
(:mod:`claims_platform.monitoring.drift`) and the choice of a model's drift reference
(:mod:`claims_platform.models.reference`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from claims_platform.core import schema

ColumnKind = Literal["numerical", "categorical"]
# Integer columns with at most this many allowed values are compared as levels, not as numbers.
MAX_ORDINAL_LEVELS = 10


def column_kind(column: schema.Column) -> ColumnKind:
    """How a feature is compared: levels for categories, flags and small ordinal integers; else numbers."""
    if column.kind == "category" or column.levels is not None:
        return "categorical"
    if column.kind == "int" and column.high - column.low + 1 <= MAX_ORDINAL_LEVELS:
        return "categorical"
    return "numerical"


def column_kinds(features: Iterable[str] = schema.FEATURES) -> dict[str, ColumnKind]:
    """The kind of every feature, from the schema."""
    return {name: column_kind(schema.COLUMNS_BY_NAME[name]) for name in features}
