"""Values between pandas and the warehouse's database, both ways (pure: no connection).

Written as the DBAPI wants them (:func:`column_values`), compared whoever wrote or read them
(:func:`row_set`), and read back in the generator's dtypes (:func:`typed_applications`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from claims_platform.core import schema


def utc_naive(moment: datetime) -> datetime:
    """Timestamps are stored as naive UTC (SQLite has no time zones)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def as_date(value: date | datetime | str) -> date:
    """A date from what a driver returns: a ``date`` (PostgreSQL), a ``datetime`` or ISO text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def parse_dates(values: Sequence[date | datetime | str]) -> np.ndarray:
    """Dates as ``date`` objects, each distinct value parsed once (a year of rows holds 365 of them)."""
    codes, distinct = pd.factorize(np.array(values, dtype=object))
    return np.array([as_date(d) for d in distinct] + [None], dtype=object)[codes]


def column_values(series: pd.Series) -> list:
    """A column as DBAPI-ready Python values: NaN/NA -> None, numpy scalars -> Python scalars.

    An integer column that pandas holds as float64 (it has nulls) goes back to ints; a fractional value
    there cannot be stored in an INTEGER column and is an error, not a silent rounding.
    """
    values = series.tolist()
    column = schema.COLUMNS_BY_NAME.get(str(series.name))
    if series.dtype.kind == "f" and column is not None and column.kind == "int":
        finite = series[np.isfinite(series)]
        if not (finite == np.round(finite)).all() or np.isinf(series).any():
            bad = (
                series[np.isinf(series) | (np.isfinite(series) & (series != np.round(series)))]
                .head(3)
                .tolist()
            )
            raise ValueError(f"integer column {series.name!r} holds non-integer values, e.g. {bad}")
        return [None if math.isnan(v) else int(v) for v in values]
    if series.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in values]
    if series.dtype == object:
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
    return values


def row_set(columns: list[list]) -> list[tuple]:
    """Rows (given column by column) in a form equal for equal content, whoever wrote or read them: dates as
    ISO text (SQLite returns text, PostgreSQL dates), integral floats as ints, sorted."""

    def plain(value):
        if isinstance(value, datetime | date):
            return as_date(value).isoformat()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return sorted(zip(*([plain(v) for v in column] for column in columns), strict=True), key=repr)


def typed_applications(columns: Mapping[str, tuple]) -> pd.DataFrame:
    """The applications' columns in the generator's dtypes: levels as text (None stays None), numbers
    as float64, whole-number columns as int64 when every value is there and whole (else float64, so
    the data contract sees a missing or fractional value and names it)."""
    typed: dict[str, Any] = {
        schema.APPLICATION_ID: np.array(columns[schema.APPLICATION_ID], dtype=object),
        schema.APPLICATION_DATE: parse_dates(columns[schema.APPLICATION_DATE]),
    }
    for column in schema.COLUMNS:
        values = columns[column.name]
        if column.kind == "category":
            typed[column.name] = np.array(values, dtype=object)
            continue
        numbers = np.array(values, dtype=np.float64)  # None -> NaN
        whole = column.kind == "int" and not np.isnan(numbers).any() and (numbers == np.round(numbers)).all()
        typed[column.name] = numbers.astype(np.int64) if whole else numbers
    return pd.DataFrame(typed, columns=list(schema.APPLICATION_COLUMNS))
