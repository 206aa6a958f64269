"""The data contract, one kind of bad input at a time (pure: no Dagster)."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from claims_platform.core.contract import REJECTION_REASON, ROW_NUMBER, validate_applications
from claims_platform.core.schema import APPLICATION_COLUMNS, APPLICATION_DATE, APPLICATION_ID, FEATURE_DTYPES
from claims_platform.source.generator import World, simulate_day

DAY = date(2025, 3, 3)


@pytest.fixture(scope="module")
def good_day() -> pd.DataFrame:
    applications, _ = simulate_day(World.from_seed(7), DAY)
    return applications


def _reasons(result) -> dict[str, str]:
    return dict(zip(result.rejected[APPLICATION_ID], result.rejected[REJECTION_REASON], strict=True))


def _accounted(result) -> None:
    assert result.rows_read == len(result.valid) + len(result.rejected)


def test_a_simulated_day_passes_whole_and_typed(good_day):
    result = validate_applications(good_day, DAY)
    assert len(result.valid) == len(good_day) and result.rejected.empty
    assert list(result.valid.columns) == list(APPLICATION_COLUMNS)
    assert {c: str(result.valid[c].dtype) for c in FEATURE_DTYPES} == FEATURE_DTYPES
    pd.testing.assert_frame_equal(result.valid, good_day.reset_index(drop=True), check_dtype=False)


def test_missing_column_rejects_every_row_and_is_reported(good_day):
    result = validate_applications(good_day.drop(columns=["credit_score_2"]), DAY)
    assert result.missing_columns == ("credit_score_2",)
    assert result.valid.empty and len(result.rejected) == len(good_day)
    assert set(result.rejected[REJECTION_REASON]) == {"column 'credit_score_2': missing from the batch"}
    _accounted(result)


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("age", "forty", "readable as number"),  # wrong type
        (
            "age",
            140,
            "in range 17..95",
        ),  # out of range (17: the seed's rescaling truncates its minimum to one below 18)
        ("income", -5, "in range 0..250000"),
        ("age", 33.5, "whole number"),
        ("income", None, "required (not null)"),  # null where required
        ("marital_status", None, "required (not null)"),
        ("location", "AA", "one of A..Z"),  # unknown category level
        ("gender", 2, "one of 0, 1"),
        ("financial_hist_1", np.nan, "required (not null)"),  # NaN
        ("insurance_hist_2", np.inf, "finite"),  # inf
        ("insurance_hist_3", -np.inf, "finite"),
    ],
)
def test_a_bad_value_rejects_its_row_naming_row_column_and_rule(good_day, column, value, rule):
    bad = good_day.astype({column: "object"})
    bad.loc[5, column] = value
    result = validate_applications(bad, DAY)
    _accounted(result)
    assert len(result.rejected) == 1
    row = result.rejected.iloc[0]
    assert row[ROW_NUMBER] == 5 and row[APPLICATION_ID] == good_day.loc[5, APPLICATION_ID]
    assert f"column '{column}': {rule}" in row[REJECTION_REASON]
    # Nothing is lost: the rejected row keeps the value as read.
    assert row[column] == (None if value is None else str(value))
    assert good_day.loc[5, APPLICATION_ID] not in set(result.valid[APPLICATION_ID])


def test_nullable_columns_accept_missing_values(good_day):
    assert good_day["family_history_3"].isna().any() and good_day["employment_type"].isna().any()
    assert validate_applications(good_day, DAY).rejected.empty


def test_duplicate_application_ids_on_one_day_reject_every_copy(good_day):
    bad = good_day.copy()
    bad.loc[9, APPLICATION_ID] = bad.loc[3, APPLICATION_ID]
    result = validate_applications(bad, DAY)
    _accounted(result)
    assert result.duplicate_ids == 2
    assert sorted(result.rejected[ROW_NUMBER]) == [3, 9]
    assert all("application_id': unique within the day" in r for r in result.rejected[REJECTION_REASON])


def test_an_id_seen_on_an_earlier_day_is_rejected_naming_that_day(good_day):
    """Within a multi-day batch the first day keeps the id; before the batch, the warehouse's day counts."""
    later = good_day.copy()
    later[APPLICATION_DATE] = date(2025, 3, 5)
    later[APPLICATION_ID] = later[APPLICATION_ID].str.replace("A20250303", "A20250305")
    later.loc[4, APPLICATION_ID] = good_day.loc[7, APPLICATION_ID]  # a resubmission two days later
    batch = pd.concat([good_day, later], ignore_index=True)
    result = validate_applications(batch, DAY, date(2025, 3, 5))
    _accounted(result)
    assert list(result.rejected[ROW_NUMBER]) == [len(good_day) + 4]
    assert result.rejected[REJECTION_REASON].iloc[0] == (
        f"column 'application_id': seen on an earlier day (value {good_day.loc[7, APPLICATION_ID]}; first on 2025-03-03)"
    )

    earlier = {later.loc[0, APPLICATION_ID]: date(2025, 1, 20)}
    result = validate_applications(later, date(2025, 3, 5), earlier_days=earlier)
    assert (
        list(result.rejected[ROW_NUMBER]) == [0]
        and "first on 2025-01-20" in result.rejected[REJECTION_REASON].iloc[0]
    )
    assert result.duplicate_ids == 1


def test_rows_dated_outside_the_batch_are_rejected(good_day):
    bad = good_day.copy()
    bad.loc[0, APPLICATION_DATE] = date(2025, 3, 4)
    bad.loc[1, APPLICATION_DATE] = date(2024, 12, 31)
    result = validate_applications(bad, DAY)
    assert sorted(result.rejected[ROW_NUMBER]) == [0, 1]
    assert all(
        "inside the batch's days 2025-03-03..2025-03-03" in r for r in result.rejected[REJECTION_REASON]
    )


def test_an_empty_day_is_valid_and_empty(good_day):
    result = validate_applications(good_day.iloc[0:0], DAY)
    assert result.rows_read == 0 and result.valid.empty and result.rejected.empty
    assert list(result.valid.columns) == list(APPLICATION_COLUMNS)


def test_several_broken_rules_on_one_row_are_all_named(good_day):
    bad = good_day.astype({"age": "object"})
    bad.loc[2, "age"] = 10
    bad.loc[2, "location"] = "?"
    result = validate_applications(bad, DAY)
    reason = result.rejected.iloc[0][REJECTION_REASON]
    assert (
        "column 'age': in range 17..95 (value 10" in reason
        and "column 'location': one of A..Z (value ?)" in reason
    )


def test_rejected_rows_survive_parquet(good_day, tmp_path):
    bad = good_day.astype({"age": "object"})
    bad.loc[1, "age"] = "x"
    bad.loc[2, "age"] = 300
    result = validate_applications(bad, DAY)
    result.rejected.to_parquet(tmp_path / "rejected.parquet")
    back = pd.read_parquet(tmp_path / "rejected.parquet")
    assert list(back["age"]) == ["x", "300"]


def test_the_record_has_the_seeds_forty_features_once_each():
    from claims_platform.core.schema import FEATURES

    assert len(FEATURES) == 40 and len(set(FEATURES)) == 40
    assert "income level" in FEATURES  # the seed's name, space included
