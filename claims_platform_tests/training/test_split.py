from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from claims_platform.core import schema
from claims_platform.training.split import holdout_split, out_of_time_split, validation_split


def _dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[schema.APPLICATION_DATE])


def test_holdout_is_the_last_month_and_never_reaches_train_or_validation(window, parts):
    assert parts.holdout_month == "2025-04"
    assert (_dates(parts.holdout).dt.to_period("M") == pd.Period("2025-04")).all()
    for part in (parts.train, parts.validation, parts.development):
        assert (_dates(part) < pd.Timestamp("2025-04-01")).all()
    # Every input row lands in exactly one part.
    ids = pd.concat([parts.train, parts.validation, parts.holdout])[schema.APPLICATION_ID]
    assert ids.is_unique
    assert set(ids) == set(window[schema.APPLICATION_ID])


def test_validation_is_the_latest_slice_cut_on_a_day(parts):
    assert _dates(parts.train).max() < _dates(parts.validation).min()
    assert _dates(parts.validation).min().date() == parts.validation_start
    share = len(parts.validation) / len(parts.development)
    one_day = _dates(parts.development).value_counts().max() / len(parts.development)
    assert 0.15 <= share < 0.15 + one_day


def test_split_does_not_depend_on_row_order(window, parts):
    shuffled = out_of_time_split(window.sample(frac=1.0, random_state=1))
    assert set(shuffled.holdout[schema.APPLICATION_ID]) == set(parts.holdout[schema.APPLICATION_ID])
    assert set(shuffled.validation[schema.APPLICATION_ID]) == set(parts.validation[schema.APPLICATION_ID])


def test_a_single_month_cannot_be_split(window):
    january = window[_dates(window) < pd.Timestamp("2025-02-01")]
    with pytest.raises(ValueError, match="spans 1 labelled month"):
        holdout_split(january)


def test_too_few_holdout_rows_is_an_error(window):
    # Keep only three rows of the last month.
    last = _dates(window) >= pd.Timestamp("2025-04-01")
    thin = pd.concat([window[~last], window[last].head(3)])
    with pytest.raises(ValueError, match="holdout part has 3 labelled rows"):
        out_of_time_split(thin)


def test_validation_needs_two_days_and_both_classes(window):
    one_day = window[_dates(window) == pd.Timestamp("2025-01-05")]
    with pytest.raises(ValueError, match="at least two application days"):
        validation_split(one_day)
    no_claims = window[window[schema.CLAIM_STATUS] == 0]
    with pytest.raises(ValueError, match="both claim outcomes"):
        validation_split(no_claims)


def test_validation_never_takes_the_earliest_day(window):
    two_days = window[_dates(window).isin([pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02")])]
    train, validation, start = validation_split(two_days, fraction=0.9, min_rows=1)
    assert start == date(2025, 1, 2)
    assert (_dates(train) == pd.Timestamp("2025-01-01")).all()
