"""Bring your own data: import an export in the seed's CSV format into the warehouse.

The seed's format is an unnamed index column, ``claim_status``, then the 40 feature columns (blank
fields for missing values). Rows are spread over consecutive days from a start date, about
``settings.DAILY_VOLUME`` a day, in file order; each gets a stable id (``I<yyyymmdd>-<nnnnn>``), its
application date, and an outcome known ``label_lag_days`` later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from os import PathLike
from typing import IO

import numpy as np
import pandas as pd

from claims_platform import schema, settings
from claims_platform.source.warehouse import Warehouse

EXPORT_COLUMNS: tuple[str, ...] = (schema.CLAIM_STATUS, *schema.FEATURES)
ID_PREFIX = "I"  # imported ids cannot collide with the simulator's "A..." ids


class ExportFormatError(ValueError):
    """The file is not in the seed's export format; the message says what is wrong."""


def read_export(source: str | PathLike | IO[str]) -> pd.DataFrame:
    """Read and type a seed-format export: ``claim_status`` then ``schema.FEATURES``, file order kept.

    Raises :class:`ExportFormatError` naming missing or unknown columns, non-numeric values in
    numeric columns, and labels other than 0/1. Values outside the schema's ranges are kept: judging
    them is the data contract's job, after the warehouse.
    """
    # Categoricals are read as text so a level such as "1" is not turned into a number.
    frame = pd.read_csv(
        source,
        index_col=0,
        dtype={c: str for c in schema.CATEGORICAL_FEATURES},
        keep_default_na=False,
        na_values=[""],
        # The default C parser can be off in the last bit; exports written with repr must read back exactly.
        float_precision="round_trip",
    )
    missing = [c for c in EXPORT_COLUMNS if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in EXPORT_COLUMNS]
    if missing or unknown:
        raise ExportFormatError(
            f"not a claims export: missing columns {missing or 'none'}; unknown columns {unknown or 'none'} "
            f"(expected an unnamed index column, then {', '.join(EXPORT_COLUMNS)})"
        )
    frame = frame[list(EXPORT_COLUMNS)].reset_index(drop=True)
    for name in schema.NUMERIC_FEATURES + (schema.CLAIM_STATUS,):
        numeric = pd.to_numeric(frame[name], errors="coerce")
        bad = frame[name][numeric.isna() & frame[name].notna()]
        if len(bad):
            raise ExportFormatError(
                f"column {name!r}: non-numeric values {bad.head(3).tolist()} at rows {bad.index[:3].tolist()}"
            )
        frame[name] = numeric.astype(np.float64)
    labels = frame[schema.CLAIM_STATUS]
    if not labels.isin([0, 1]).all():
        bad = labels[~labels.isin([0, 1])]
        raise ExportFormatError(
            f"claim_status must be 0 or 1; found {bad.head(3).tolist()} at rows {bad.index[:3].tolist()}"
        )
    frame[schema.CLAIM_STATUS] = labels.astype(np.int64)
    # The generator's dtypes where the data allow them: an int column with blanks stays float64.
    dtypes = {
        name: dtype
        for name, dtype in schema.FEATURE_DTYPES.items()
        if not (
            dtype == "int64" and (frame[name].isna().any() or (frame[name] != np.round(frame[name])).any())
        )
    }
    frame = frame.astype(dtypes)
    for name in schema.CATEGORICAL_FEATURES:
        frame[name] = frame[name].where(frame[name].notna(), None)
    return frame


@dataclass(frozen=True)
class ImportedDay:
    """One day of an import, ready for :meth:`Warehouse.write_day`."""

    day: date
    applications: pd.DataFrame
    outcomes: pd.DataFrame


def split_into_days(
    export: pd.DataFrame,
    start: date,
    *,
    daily_volume: int = settings.DAILY_VOLUME,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
) -> Iterator[ImportedDay]:
    """Spread an export's rows over consecutive days from ``start``, in file order.

    The rows are split into ``ceil(n / daily_volume)`` days of nearly equal size (no day above
    ``daily_volume``). Ids are ``I<yyyymmdd>-<nnnnn>`` so the same file and start give the same ids.
    """
    if daily_volume < 1:
        raise ValueError(f"daily_volume must be positive, got {daily_volume}")
    n_days = max(1, math.ceil(len(export) / daily_volume))
    bounds = np.linspace(0, len(export), n_days + 1).round().astype(int)
    for offset in range(n_days):
        day = start + timedelta(days=offset)
        part = export.iloc[bounds[offset] : bounds[offset + 1]].reset_index(drop=True)
        ids = [f"{ID_PREFIX}{day:%Y%m%d}-{i + 1:05d}" for i in range(len(part))]
        applications = pd.DataFrame({schema.APPLICATION_ID: ids, schema.APPLICATION_DATE: [day] * len(part)})
        applications = pd.concat([applications, part[list(schema.FEATURES)]], axis=1)
        outcomes = pd.DataFrame(
            {
                schema.APPLICATION_ID: ids,
                schema.CLAIM_STATUS: part[schema.CLAIM_STATUS].to_numpy(),
                schema.KNOWN_DATE: [day + timedelta(days=label_lag_days)] * len(part),
            }
        )
        yield ImportedDay(day, applications, outcomes)


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    rows: int
    days: int
    first_day: date
    last_day: date


def import_csv(
    source: str | PathLike | IO[str],
    start: date,
    warehouse: Warehouse,
    *,
    daily_volume: int = settings.DAILY_VOLUME,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
    progress: Callable[[ImportedDay], None] | None = None,
) -> ImportSummary:
    """Read an export and write it into ``warehouse`` day by day (each day idempotently replaced).

    ``progress`` is called after each day is written.
    """
    export = read_export(source)
    warehouse.create_tables()
    rows = days = 0
    last_day = start
    for imported in split_into_days(export, start, daily_volume=daily_volume, label_lag_days=label_lag_days):
        rows += warehouse.write_day(imported.day, imported.applications, imported.outcomes)
        days += 1
        last_day = imported.day
        if progress is not None:
            progress(imported)
    return ImportSummary(rows=rows, days=days, first_day=start, last_day=last_day)


def write_export(
    applications: pd.DataFrame, outcomes: pd.DataFrame, target: str | PathLike | IO[str]
) -> None:
    """Write applications and their outcomes in the seed's export format (the inverse of :func:`read_export`)."""
    labels = outcomes.drop_duplicates(schema.APPLICATION_ID).set_index(schema.APPLICATION_ID)[
        schema.CLAIM_STATUS
    ]
    frame = applications[list(schema.FEATURES)].copy()
    frame.insert(0, schema.CLAIM_STATUS, labels.reindex(applications[schema.APPLICATION_ID]).to_numpy())
    if frame[schema.CLAIM_STATUS].isna().any():
        raise ValueError("every application needs an outcome to be exported")
    frame[schema.CLAIM_STATUS] = frame[schema.CLAIM_STATUS].astype(np.int64)
    frame.to_csv(target, index=True)
