"""Values read back from the warehouse, typed once per column (pure: no database)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from claims_platform.core import schema
from claims_platform.source.warehouse_values import parse_dates, typed_applications


def _columns(rows: int, **overrides) -> dict[str, tuple]:
    columns: dict[str, tuple] = {
        schema.APPLICATION_ID: tuple(f"A{i}" for i in range(rows)),
        schema.APPLICATION_DATE: ("2025-01-02",) * rows,
    }
    for column in schema.COLUMNS:
        columns[column.name] = ("A",) * rows if column.kind == "category" else (1,) * rows
    return {**columns, **overrides}


def test_columns_come_back_in_the_generators_dtypes():
    frame = typed_applications(_columns(3))
    assert list(frame.columns) == list(schema.APPLICATION_COLUMNS)
    for column in schema.COLUMNS:
        expected = {"category": object, "int": np.int64, "float": np.float64}[column.kind]
        assert frame[column.name].dtype == expected, column.name
    assert frame[schema.APPLICATION_DATE].tolist() == [date(2025, 1, 2)] * 3


def test_a_missing_or_fractional_whole_number_stays_a_float_for_the_contract_to_name():
    whole = next(c.name for c in schema.COLUMNS if c.kind == "int")
    level = next(c.name for c in schema.COLUMNS if c.kind == "category")
    frame = typed_applications(_columns(3, **{whole: (1, None, 2.5), level: ("B", None, "C")}))
    assert frame[whole].dtype == np.float64
    assert frame[whole].tolist()[0] == 1 and np.isnan(frame[whole][1]) and frame[whole][2] == 2.5
    assert frame[level].tolist() == ["B", None, "C"]  # a missing level stays None, not NaN


def test_each_distinct_date_is_parsed_once_and_every_kind_a_driver_returns_is_read():
    values = ["2025-01-02", date(2025, 1, 3), pd.Timestamp("2025-01-04").to_pydatetime(), "2025-01-02"]
    assert parse_dates(values).tolist() == [
        date(2025, 1, 2),
        date(2025, 1, 3),
        date(2025, 1, 4),
        date(2025, 1, 2),
    ]
    assert parse_dates(()).tolist() == []
