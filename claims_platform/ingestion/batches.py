"""Pure helpers that split a multi-day batch into per-day results (no Dagster import)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from claims_platform.core.contract import ValidationResult, validate_applications
from claims_platform.core.schema import APPLICATION_DATE


def days_between(first_day: date, last_day: date) -> list[date]:
    """Every day from ``first_day`` to ``last_day`` inclusive."""
    return [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]


@dataclass(frozen=True)
class DayBatch:
    """One day's share of a validated batch."""

    day: date
    valid: pd.DataFrame
    rejected: pd.DataFrame
    rows_read: int
    valid_row_numbers: tuple[int, ...] = ()  # each valid row's position in the read, as ``row_number``


def _day_of(values: pd.Series) -> pd.Series:
    # Dates arrive as date objects, datetimes or ISO text depending on the engine; text that is not
    # a date at all stays NaT and is attributed to no day (its row is rejected by the contract).
    return pd.to_datetime(values.astype("object"), errors="coerce").dt.date


def split_by_day(result: ValidationResult, raw: pd.DataFrame, days: Iterable[date]) -> dict[date, DayBatch]:
    """Attribute valid and rejected rows to the day each was read for.

    Rows are read per day, so a row's day is the day it was read under — ``raw`` must carry the
    read day in ``APPLICATION_DATE`` as stored. A rejected row whose date could not be read is
    attributed to the first day, so ``rows_read == valid + rejected`` holds for every day summed.
    """
    days = list(days)
    read_day = (
        _day_of(raw[APPLICATION_DATE])
        if APPLICATION_DATE in raw.columns
        else pd.Series(days[0], index=raw.index)
    )
    read_day = read_day.where(read_day.isin(days), days[0])
    rejected_day = (
        read_day.reindex(result.rejected["row_number"].to_numpy()).to_numpy() if len(result.rejected) else []
    )
    out = {}
    valid_by_day = (
        dict(tuple(result.valid.groupby(APPLICATION_DATE, sort=False))) if len(result.valid) else {}
    )
    rejected_by_day = (
        dict(tuple(result.rejected.groupby(pd.Series(rejected_day, index=result.rejected.index))))
        if len(result.rejected)
        else {}
    )
    counts = read_day.value_counts().to_dict()
    # Valid rows keep the read's order, so their positions are the read's minus the rejected ones.
    valid_positions = (
        read_day.drop(index=result.rejected["row_number"].to_numpy()) if len(result.rejected) else read_day
    )
    positions_by_day = valid_positions.groupby(valid_positions, sort=False).groups
    for day in days:
        valid = valid_by_day.get(day, result.valid.iloc[0:0]).reset_index(drop=True)
        rejected = rejected_by_day.get(day, result.rejected.iloc[0:0]).reset_index(drop=True)
        positions = tuple(int(i) for i in positions_by_day.get(day, ()))
        out[day] = DayBatch(
            day=day,
            valid=valid,
            rejected=rejected,
            rows_read=int(counts.get(day, 0)),
            valid_row_numbers=positions,
        )
    return out


def validate_days(
    raw: pd.DataFrame, first_day: date, last_day: date, earlier_days: Mapping[str, date] | None = None
) -> tuple[ValidationResult, dict[date, DayBatch]]:
    """Validate a multi-day read once (fast) and split the outcome per day.

    ``earlier_days``: ids already stored before ``first_day`` and the first day each occurred on.
    """
    raw = raw.reset_index(drop=True)  # rejected rows are found again by their position (row_number)
    result = validate_applications(raw, first_day, last_day, earlier_days)
    return result, split_by_day(result, raw, days_between(first_day, last_day))
