"""DataFrame <-> Parquet bytes: which dtypes and indexes survive (pure functions)."""

import io
from datetime import date

import pandas as pd
import pytest

from claims_platform.storage import dataframe_to_parquet_bytes, parquet_bytes_to_dataframe


def round_trip(df: pd.DataFrame) -> pd.DataFrame:
    return parquet_bytes_to_dataframe(dataframe_to_parquet_bytes(df))


def typed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "application_id": ["a-1", "a-2", "a-3"],
            "application_date": [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)],
            "age": pd.Series([18, 40, 95], dtype="int64"),
            "income": [0.0, 12_500.5, 250_000.0],
            "gender": pd.Series([1, None, 0], dtype="Int64"),
            "uk_residence": [True, False, True],
            "product_var_3": pd.Categorical(["B", "A", "B"], categories=["A", "B", "C", "D"]),
            "risk_band": pd.Categorical(
                ["low", "high", "low"], categories=["low", "medium", "high"], ordered=True
            ),
            "scored_at": pd.to_datetime(
                ["2025-01-02 01:00", "2025-01-02 01:00", "2025-01-02 01:01"], utc=True
            ),
            "income level": pd.Series(["1", "2", None], dtype="string"),
        }
    )


def test_dtypes_survive():
    df = typed_frame()
    pd.testing.assert_frame_equal(round_trip(df), df)


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_tiny_frames_keep_columns_dtypes_and_categories(rows: int):
    df = typed_frame().iloc[:rows].reset_index(drop=True)
    back = round_trip(df)
    pd.testing.assert_frame_equal(back, df)
    assert back["risk_band"].cat.categories.tolist() == ["low", "medium", "high"]
    assert back["risk_band"].cat.ordered


def test_unnamed_index_is_dropped_named_index_is_kept():
    filtered = typed_frame().iloc[[2, 0]]  # leftover positions 2, 0 mean nothing downstream
    back = round_trip(filtered)
    assert back.index.tolist() == [0, 1]
    assert "__index_level_0__" not in back.columns

    keyed = typed_frame().set_index("application_id")
    pd.testing.assert_frame_equal(round_trip(keyed), keyed)


def test_other_tools_see_plain_columns():
    # pandas' own reader (as DuckDB or Athena would) sees exactly the frame's columns.
    df = typed_frame().iloc[[1, 2]]
    stored = pd.read_parquet(io.BytesIO(dataframe_to_parquet_bytes(df)))
    assert list(stored.columns) == list(df.columns)
