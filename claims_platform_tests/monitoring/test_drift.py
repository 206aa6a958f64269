"""The drift decision: pinned tests per column type, quiet on normal days, loud on the named scenarios,
and the Evidently report counting the same columns the decision does."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema
from claims_platform.models.reference import reference_drawn_from
from claims_platform.monitoring.drift import (
    MISSING_LEVEL,
    DriftSettings,
    Reference,
    _day_sample,
    _sample,
    column_kinds,
    for_drift,
    measure_drift,
)
from claims_platform.source.generator import World
from claims_platform.source.scenarios import get_scenario

WORLD = World.from_seed(20250101)
ONSET = date(2025, 6, 1)


@pytest.fixture(scope="module")
def reference() -> Reference:
    days = [WORLD.draw_day(date(2025, 3, 1) + timedelta(days=i)).applications for i in range(10)]
    rows = pd.concat(days, ignore_index=True)
    p = np.random.default_rng(0).beta(1, 6, len(rows))
    return Reference(reference_drawn_from(rows, p, 5_000, seed=1))


def _day(day: date, scenario: str | None = None) -> pd.DataFrame:
    draw = WORLD.draw_day(day)
    if scenario:
        draw = get_scenario(scenario, ONSET).apply(WORLD, draw)
    frame = draw.applications
    return frame.assign(claim_probability=np.random.default_rng(day.toordinal()).beta(1, 6, len(frame)))


def test_columns_are_typed_from_the_schema_not_guessed():
    kinds = column_kinds()
    assert kinds["income"] == kinds["insurance_hist_1"] == "numerical"
    assert (
        kinds["occupation"]
        == kinds["gender"]
        == kinds["health_status"]
        == kinds["income level"]
        == "categorical"
    )
    assert set(kinds) == set(schema.FEATURES)


def test_a_missing_value_is_a_level_of_its_own():
    values = for_drift(pd.Series([1.0, np.nan, 0.0]), "categorical")
    assert list(values) == ["1", MISSING_LEVEL, "0"]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1, 2, None, 2], dtype="Int64"),
        pd.Series([True, False, None], dtype="boolean"),
        pd.Series([1.5, np.nan, 2.7, -2.7, 2.2]),
        pd.Series([3, 1, 3]),
        pd.Series(["a", None, "b", np.nan, "a"]),
        pd.Series(["x", pd.NA, "x"], dtype="string"),
    ],
)
@pytest.mark.parametrize("kind", ["numerical", "categorical"])
def test_a_day_is_counted_as_the_prepared_column_would_be(values, kind):
    # The day's side of a test skips building the prepared column; it must see the same levels and numbers.
    fast, prepared = _day_sample(values, kind), _sample(for_drift(values, kind), kind)
    assert fast.size == prepared.size and fast.counts == prepared.counts and fast.std == prepared.std
    assert (fast.sorted_values is None) == (prepared.sorted_values is None)
    if fast.sorted_values is not None:
        assert np.array_equal(fast.sorted_values, prepared.sorted_values)


def test_the_reference_carries_features_and_predictions_only(reference):
    assert reference.rows == 5_000 and reference.prediction is not None
    assert schema.APPLICATION_ID not in reference.columns and schema.CLAIM_STATUS not in reference.columns


def test_thirty_normal_days_raise_no_alert(reference):
    from claims_platform.monitoring.episodes import DriftDay, drift_episodes

    results = {
        (ONSET + timedelta(days=i)).isoformat(): measure_drift(_day(ONSET + timedelta(days=i)), reference)
        for i in range(30)
    }
    # A day drifts by chance with probability false_alarm_rate (1%); no episode starts.
    assert sum(r.drifted for r in results.values()) <= 1
    assert drift_episodes({d: DriftDay(r.drifted, r.severity) for d, r in results.items()}) == []
    assert np.median([r.severity for r in results.values()]) < 0.8


def test_a_days_thresholds_grow_as_its_rows_shrink_and_hold_the_false_alarm_rate(reference):
    rate = DriftSettings().false_alarm_rate
    at_50, at_1200 = (
        reference.calibration(50, rate).thresholds(50),
        reference.calibration(1200, rate).thresholds(1200),
    )
    at_2400 = reference.calibration(2400, rate).thresholds(2400)
    assert set(at_50) == {*reference.kinds, "claim_probability"}
    # Above the calibrated sizes, thresholds shrink as the distances' sampling noise does ...
    expected = ((1 / 2400 + 1 / reference.rows) / (1 / 1200 + 1 / reference.rows)) ** 0.5
    assert all(at_2400[c] == pytest.approx(expected * at_1200[c]) for c in at_1200)
    # ... and a day of 50 rows needs a distance several times larger than one of 1,200 to drift.
    assert all(at_50[c] > 2.5 * at_1200[c] for c in at_50)
    # The former fixed thresholds (0.20 by distance on numbers, 0.15 on levels) sat between: too loose at
    # 1,200 rows, far too tight at 50.
    assert max(at_1200.values()) < 0.15 and min(at_50.values()) > 0.15
    # 300 i.i.d. days of 50 rows: the calibrated thresholds flag about 1% of them (≤ 2% here), where the
    # fixed thresholds set for ~1,200 rows flag most of them.
    small = [_day(ONSET + timedelta(days=i)).sample(50, random_state=i) for i in range(300)]
    assert sum(measure_drift(day, reference).drifted for day in small) <= 6
    fixed = DriftSettings(numerical_threshold=0.20, categorical_threshold=0.15, prediction_threshold=0.20)
    assert sum(measure_drift(day, reference, fixed).drifted for day in small) > 200


def test_a_threshold_set_by_hand_is_used_as_it_is(reference):
    result = measure_drift(
        _day(ONSET), reference, DriftSettings(numerical_threshold=0.5, categorical_threshold=0.4)
    )
    thresholds = result.summary()["column_thresholds"]
    assert thresholds["income"] == 0.5 and thresholds["occupation"] == 0.4
    assert thresholds["claim_probability"] != 0.5  # still calibrated


@pytest.mark.parametrize(
    ("scenario", "columns"), [("income_shift", {"income", "income level"}), ("mix_shift", {"occupation"})]
)
def test_each_input_scenario_is_flagged_on_its_first_day_on_its_own_columns(reference, scenario, columns):
    result = measure_drift(_day(ONSET, scenario), reference)
    assert result.drifted and set(result.drifted_columns) == columns


def test_a_concept_shift_leaves_the_inputs_unchanged(reference):
    assert not measure_drift(_day(ONSET, "concept_shift"), reference).drifted


def test_the_thresholds_are_validated():
    with pytest.raises(ValueError, match="numerical_threshold"):
        DriftSettings(numerical_threshold=0)
    with pytest.raises(ValueError, match="false_alarm_rate"):
        DriftSettings(false_alarm_rate=0)
    with pytest.raises(ValueError, match="min_drifted_columns"):
        DriftSettings(min_drifted_columns=0)
    with pytest.raises(ValueError, match="max_rejected_share"):
        DriftSettings(max_rejected_share=0)


def test_missing_columns_and_empty_days_are_refused(reference):
    with pytest.raises(ValueError, match="lack the reference's column"):
        measure_drift(_day(ONSET).drop(columns=["income"]), reference)
    with pytest.raises(ValueError, match="no applications"):
        measure_drift(_day(ONSET).iloc[:0], reference)


def test_the_evidently_report_counts_the_columns_the_decision_flags(reference):
    import json

    from claims_platform.monitoring.reports import DriftReportInput, drift_report

    current = _day(ONSET, "income_shift")
    result = measure_drift(current, reference)
    frame = pd.DataFrame(reference.columns).assign(claim_probability=reference.prediction)
    spec = DriftReportInput(
        "2025-06-01",
        current,
        frame,
        reference.kinds,
        DriftSettings(),
        list(result.drifted_columns),
        result.summary(),
    )
    report = drift_report(spec)
    snapshot = json.loads(report.snapshot)
    counts = [
        m for m in snapshot["metric_results"].values() if m["display_name"] == "Count of Drifted Columns"
    ]
    assert counts and counts[0]["count"]["value"] == len(result.drifted_columns) == 2
    assert report.html.lstrip().lower().startswith("<html") or "<html" in report.html[:500].lower()
    assert snapshot["metadata"]["drifted"] == "True"


@pytest.mark.parametrize("seed", range(5))
def test_the_scores_are_evidentlys_own_stat_tests(seed):
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    from claims_platform.monitoring.drift import jensen_shannon, wasserstein_normed

    rng = np.random.default_rng(seed)
    ref, cur = pd.Series(rng.normal(0, 1, 3000)), pd.Series(rng.normal(0.2 * seed, 1 + 0.1 * seed, 800))
    evidently = get_registered_stattest("wasserstein", ColumnType.Numerical)(
        ref, cur, ColumnType.Numerical, 0.2
    )
    assert wasserstein_normed(ref, cur) == pytest.approx(evidently.drift_score, abs=1e-12)
    levels = np.array(list("ABCDEFG"))
    ref_levels = pd.Series(levels[rng.integers(0, 7, 3000)], dtype=object)
    cur_levels = pd.Series(levels[rng.integers(0, 7 - seed, 800)], dtype=object)  # some levels vanish
    evidently = get_registered_stattest("jensenshannon", ColumnType.Categorical)(
        ref_levels, cur_levels, ColumnType.Categorical, 0.15
    )
    assert jensen_shannon(ref_levels, cur_levels) == pytest.approx(evidently.drift_score, abs=1e-12)


def test_a_day_whose_rows_break_the_contract_counts_as_drifted_even_when_its_valid_rows_do_not(reference):
    from claims_platform.monitoring.drift_assets import ModelInForce, _day_summary

    record = {"version": 3, "model_uri": "file:///m", "policy": {"refer_at": 0.3, "decline_at": 0.5}}
    current = _day(ONSET)
    model = ModelInForce(reference, {"income": 0.02, "insurance_hist_5": 0.3})
    clean = _day_summary("2025-06-01", current, 0, model, record, DriftSettings())
    assert not clean["drifted"] and clean["rejected_share"] == 0
    assert not _day_summary("2025-06-01", current, 5, model, record, DriftSettings())["drifted"]  # 0.4% < 1%
    broken = _day_summary("2025-06-01", current, 40, model, record, DriftSettings())
    assert broken["drifted"] and broken["drifted_columns"] == {} and broken["rejected_share_exceeded"]
    assert broken["rejected_share"] == round(40 / (len(current) + 40), 4)
    assert broken["estimated"]["estimated_rows"] == len(current)  # the valid rows are still estimated
    # Rejected rows alone: a warning (ingestion alerts about them), no retrain.
    assert clean["relevance"]["level"] == "none" and broken["relevance"]["level"] == "warning"


@pytest.mark.parametrize("scenario", ["income_shift", "mix_shift", "data_quality"])
def test_each_visible_scenario_alerts_within_three_days_and_normal_days_never_do(reference, scenario):
    from claims_platform.core.contract import validate_applications
    from claims_platform.monitoring.episodes import DriftDay, EpisodeRules, drift_episodes

    flags = {}
    for i in range(-10, 5):  # ten normal days, then the scenario from ONSET
        day = ONSET + timedelta(days=i)
        draw = WORLD.draw_day(day)
        if i >= 0:
            draw = get_scenario(scenario, ONSET).apply(WORLD, draw)
        checked = validate_applications(
            draw.applications, day, day
        )  # only valid rows are measured, as ingestion does
        valid = checked.valid.assign(
            claim_probability=np.random.default_rng(day.toordinal()).beta(1, 6, len(checked.valid))
        )
        result = measure_drift(valid, reference, rejected_rows=len(checked.rejected))
        flags[day.isoformat()] = DriftDay(result.drifted, result.severity)
    [episode] = drift_episodes(flags, EpisodeRules(alert_days=3))
    assert episode.start == ONSET.isoformat() and episode.alert_day == (ONSET + timedelta(days=2)).isoformat()
