"""Importing an export in the seed's CSV format."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from claims_platform import schema
from claims_platform.source.csv_import import (
    EXPORT_COLUMNS,
    ExportFormatError,
    import_csv,
    read_export,
    split_into_days,
    write_export,
)
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.warehouse import Warehouse

START = date(2024, 6, 1)


def make_export(path: Path, days: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small seed-format CSV made from simulated days; returns what was written."""
    applications, outcomes = simulate_days(World.from_seed(7), date(2025, 1, 1), date(2025, 1, days))
    write_export(applications, outcomes, path)
    return applications, outcomes


def test_export_format_matches_the_seed(tmp_path: Path) -> None:
    make_export(tmp_path / "export.csv", days=1)
    lines = (tmp_path / "export.csv").read_text().splitlines()
    assert lines[0] == "," + ",".join(EXPORT_COLUMNS)  # unnamed index column first
    assert lines[1].startswith("0,")
    assert ",," in lines[1] or ",," in lines[2]  # blanks for missing family_history_3 / employment_type


def test_read_export_types_like_the_generator(tmp_path: Path) -> None:
    applications, outcomes = make_export(tmp_path / "export.csv", days=1)
    export = read_export(tmp_path / "export.csv")
    assert tuple(export.columns) == EXPORT_COLUMNS
    pd.testing.assert_frame_equal(
        export[list(schema.FEATURES)], applications[list(schema.FEATURES)], check_exact=True
    )
    assert (export[schema.CLAIM_STATUS].to_numpy() == outcomes[schema.CLAIM_STATUS].to_numpy()).all()


def test_import_round_trip(tmp_path: Path) -> None:
    applications, outcomes = make_export(tmp_path / "export.csv", days=3)
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    seen = []
    summary = import_csv(tmp_path / "export.csv", START, warehouse, label_lag_days=10, progress=seen.append)
    n_days = -(-len(applications) // 1200)
    assert (summary.rows, summary.days) == (len(applications), n_days)
    assert summary.last_day == START + timedelta(days=n_days - 1) == seen[-1].day
    stored = warehouse.read_applications_between(START, summary.last_day)
    assert stored[schema.APPLICATION_DATE].value_counts().max() <= 1200
    assert (
        stored[schema.APPLICATION_ID].iloc[0] == "I20240601-00001" and stored[schema.APPLICATION_ID].is_unique
    )
    # File order is kept: the features come back row for row.
    pd.testing.assert_frame_equal(
        stored[list(schema.FEATURES)], applications[list(schema.FEATURES)], check_exact=True
    )
    known = warehouse.read_outcomes(date(2030, 1, 1))
    labels = known.set_index(schema.APPLICATION_ID).loc[stored[schema.APPLICATION_ID], schema.CLAIM_STATUS]
    assert (labels.to_numpy() == outcomes[schema.CLAIM_STATUS].to_numpy()).all()
    lag = pd.Series(
        [
            k - a
            for k, a in zip(
                known[schema.KNOWN_DATE],
                stored.set_index(schema.APPLICATION_ID).loc[
                    known[schema.APPLICATION_ID], schema.APPLICATION_DATE
                ],
                strict=True,
            )
        ]
    )
    assert (lag == timedelta(days=10)).all()
    # Importing again is idempotent.
    import_csv(tmp_path / "export.csv", START, warehouse, label_lag_days=10)
    assert len(warehouse.read_applications_between(START, summary.last_day)) == len(applications)
    warehouse.dispose()


def test_days_are_spread_evenly() -> None:
    export = pd.DataFrame({schema.CLAIM_STATUS: np.zeros(2_500, dtype=np.int64)})
    for name in schema.FEATURES:
        export[name] = 1
    sizes = [len(d.applications) for d in split_into_days(export, START)]
    assert sizes == [833, 834, 833]


def _csv(text_columns: list[str], row: list[str]) -> io.StringIO:
    return io.StringIO(",".join(["", *text_columns]) + "\n" + ",".join(["0", *row]) + "\n")


def test_header_errors_name_the_columns() -> None:
    columns = [c for c in EXPORT_COLUMNS if c != "age"] + ["shoe_size"]
    with pytest.raises(
        ExportFormatError, match=r"missing columns \['age'\]; unknown columns \['shoe_size'\]"
    ):
        read_export(_csv(columns, ["1"] * len(columns)))


def test_value_errors_name_the_column(tmp_path: Path) -> None:
    make_export(tmp_path / "export.csv", days=1)
    frame = pd.read_csv(tmp_path / "export.csv", index_col=0, dtype=str, keep_default_na=False)
    bad = frame.copy()
    bad.loc[bad.index[3], "income"] = "lots"
    with pytest.raises(
        ExportFormatError, match=r"column 'income': non-numeric values \['lots'\] at rows \[3\]"
    ):
        read_export(io.StringIO(bad.to_csv()))
    bad = frame.copy()
    bad.loc[bad.index[0], schema.CLAIM_STATUS] = "2"
    with pytest.raises(ExportFormatError, match="claim_status must be 0 or 1"):
        read_export(io.StringIO(bad.to_csv()))


def test_blank_required_values_are_kept_for_the_contract(tmp_path: Path) -> None:
    make_export(tmp_path / "export.csv", days=1)
    frame = pd.read_csv(tmp_path / "export.csv", index_col=0, dtype=str, keep_default_na=False)
    frame.loc[frame.index[0], "age"] = ""
    frame.loc[frame.index[1], "occupation"] = ""
    export = read_export(io.StringIO(frame.to_csv()))
    assert np.isnan(export.loc[0, "age"]) and export["age"].dtype == np.float64
    assert export.loc[1, "occupation"] is None
