"""No leakage into a month's training set (pure)."""

from datetime import date, datetime

import pandas as pd
import pytest

from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID, CLAIM_STATUS, KNOWN_DATE
from claims_platform.source.generator import World, simulate_days
from claims_platform.training.dataset import (
    fingerprint,
    label_applications,
    rejected_outcomes,
    training_window,
)


@pytest.fixture(scope="module")
def quarter():
    return simulate_days(World.from_seed(3), date(2025, 1, 1), date(2025, 4, 10))


def test_window_and_cutoff_of_a_month():
    window = training_window(date(2025, 12, 1), 12)
    assert (window.first_day, window.last_day) == (date(2025, 1, 1), date(2025, 12, 31))
    assert window.cutoff == datetime(2026, 1, 1)
    assert training_window(date(2025, 3, 1), 12, earliest=date(2025, 1, 1)).first_day == date(2025, 1, 1)
    later = training_window(date(2025, 3, 1), 3, label_cutoff=datetime(2025, 4, 20))
    assert later.cutoff == datetime(2025, 4, 20)
    with pytest.raises(ValueError, match="may only be later"):
        training_window(date(2025, 3, 1), 3, label_cutoff=datetime(2025, 3, 31))


def test_no_outcome_known_after_the_cutoff_and_no_application_after_the_month(quarter):
    applications, outcomes = quarter
    window = training_window(date(2025, 3, 1), 3)
    # Outcomes the source should not have handed over: known on or after the cutoff...
    late = outcomes.copy()
    late_ids = applications.loc[
        pd.to_datetime(applications[APPLICATION_DATE]) < "2025-02-01", APPLICATION_ID
    ][:50]
    late.loc[late[APPLICATION_ID].isin(late_ids), KNOWN_DATE] = date(2025, 4, 1)
    labelled = label_applications(applications, late, window, min_month_coverage=0.0).rows
    assert not set(late_ids) & set(labelled[APPLICATION_ID])
    # ... and applications after March, even with an outcome known in time.
    early = outcomes.assign(**{KNOWN_DATE: date(2025, 1, 1)})
    rows = label_applications(applications, early, window, min_month_coverage=0.0).rows
    assert pd.to_datetime(rows[APPLICATION_DATE]).max() <= pd.Timestamp("2025-03-31")
    assert len(rows) == (pd.to_datetime(applications[APPLICATION_DATE]) <= "2025-03-31").sum()


def test_every_training_row_has_an_outcome_known_before_the_cutoff(quarter):
    applications, outcomes = quarter
    window = training_window(date(2025, 3, 1), 3)
    labelled = label_applications(applications, outcomes, window)
    known = outcomes.set_index(APPLICATION_ID)[KNOWN_DATE]
    assert (pd.to_datetime(known[labelled.rows[APPLICATION_ID]]) < pd.Timestamp(window.cutoff)).all()
    # With a 30-day lag, March is barely labelled at April 1st: it is left out; Jan and Feb are whole.
    assert labelled.coverage["2025-01"] == 1.0 and labelled.coverage["2025-02"] == 1.0
    assert labelled.coverage["2025-03"] < 0.1
    assert pd.to_datetime(labelled.rows[APPLICATION_DATE]).max() < pd.Timestamp("2025-03-01")
    assert labelled.excluded_rows > 0 and labelled.rows[CLAIM_STATUS].isin([0, 1]).all()


def test_a_later_label_cutoff_labels_more(quarter):
    applications, outcomes = quarter
    normal = label_applications(applications, outcomes, training_window(date(2025, 3, 1), 3))
    later = label_applications(
        applications, outcomes, training_window(date(2025, 3, 1), 3, label_cutoff=datetime(2025, 5, 1))
    )
    assert later.coverage["2025-03"] > 0.9 > normal.coverage["2025-03"]
    assert len(later.rows) > len(normal.rows)


def test_fingerprint_changes_with_the_data(quarter):
    applications, _ = quarter
    assert fingerprint(applications) == fingerprint(applications.copy())
    changed = applications.copy()
    changed.loc[0, "age"] += 1
    assert fingerprint(changed) != fingerprint(applications)


def test_a_reused_id_never_breaks_the_training_set_the_first_day_keeps_it(quarter):
    """Days stored before ids were unique across history may repeat one: the set still builds."""
    applications, outcomes = quarter
    window = training_window(date(2025, 3, 1), 3)
    reused = applications.copy()
    jan = reused.index[pd.to_datetime(reused[APPLICATION_DATE]) == "2025-01-10"]
    feb = reused.index[pd.to_datetime(reused[APPLICATION_DATE]) == "2025-02-10"]
    reused.loc[feb[:3], APPLICATION_ID] = reused.loc[
        jan[:3], APPLICATION_ID
    ].to_numpy()  # resubmitted a month later
    reused.loc[jan[5], APPLICATION_ID] = reused.loc[jan[6], APPLICATION_ID]  # twice on one day
    labelled = label_applications(reused, outcomes, window)
    assert labelled.duplicate_rows == 5
    assert labelled.rows[APPLICATION_ID].is_unique
    kept = labelled.rows.set_index(APPLICATION_ID)
    first = reused.loc[jan[0], APPLICATION_ID]
    assert str(kept.loc[first, APPLICATION_DATE]) == "2025-01-10"
    assert reused.loc[jan[6], APPLICATION_ID] not in kept.index


def test_rejected_rows_that_are_mostly_claims_are_flagged(quarter):
    """The first contract rejected 42 rows of an export, 39 of them claimants: that must not pass quietly."""
    applications, outcomes = quarter
    window = training_window(date(2025, 3, 1), 3)
    rows = label_applications(applications, outcomes, window).rows
    labels = outcomes.set_index(APPLICATION_ID)[CLAIM_STATUS]
    claimants = labels[labels == 1].index[:39].tolist() + labels[labels == 0].index[:3].tolist()
    biased = rejected_outcomes(pd.Series(claimants), outcomes, rows, window.cutoff)
    assert (biased.rejected_with_outcome, biased.rejected_claims) == (42, 39) and biased.biased()
    assert "39 of 42 rejected rows with a known outcome are claims (92.9%)" in biased.describe()

    typical = labels.sample(200, random_state=1).index.to_series()
    assert not rejected_outcomes(typical, outcomes, rows, window.cutoff).biased()
    # An outcome not yet known by the cutoff does not count.
    unknown = outcomes.assign(**{KNOWN_DATE: date(2025, 6, 1)})
    assert rejected_outcomes(pd.Series(claimants), unknown, rows, window.cutoff).rejected_with_outcome == 0
