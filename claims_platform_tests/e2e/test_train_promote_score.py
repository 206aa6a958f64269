"""End to end on embedded defaults: simulate months, ingest, train, promote, score, forecast, roll back."""

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from claims_platform.models.policy import DECISIONS
from claims_platform.models.registry import CHAMPION, PREVIOUS_CHAMPION
from claims_platform_tests.platform_world import PlatformWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> PlatformWorld:
    """Jan–May 2025 simulated and ingested; March's model (decides April) and April's (decides May) trained."""
    world = PlatformWorld(tmp_path_factory.mktemp("platform"))
    world.simulate(date(2025, 1, 1), date(2025, 5, 31))
    assert world.run_range("daily_ingestion", "2025-01-01", "2025-05-31").success
    world.march = world.train("2025-03-01")
    world.april = world.train("2025-04-01")
    assert world.march.success and world.april.success
    assert world.materialize_in_force("2025-04-01", "2025-05-01").success
    return world


def _decision(result) -> dict:
    return result.output_for_node("champion_model")["decision"]


def test_the_first_model_ever_is_promoted_and_tracked(world):
    decision = _decision(world.march)
    assert decision["promote"] and decision["champion_version"] is None
    assert decision["reason"] == "first model: no champion yet"
    model = world.march.output_for_node("claims_model")
    assert model["version"] == 1 and model["holdout_month"] == "2025-02"
    assert model["holdout_metrics"]["roc_auc"] > 0.9
    run = world.registry.client().get_run(model["mlflow_run_id"])
    assert run.data.tags["dagster_partition"] == "2025-03-01"
    assert run.data.tags["dagster_run_id"] == world.march.run_id
    assert run.data.tags["training_set_label_cutoff"] == "2025-04-01T00:00:00"
    assert {"holdout_kappa", "holdout_roc_auc", "holdout_brier", "holdout_log_loss", "holdout_ece"} <= set(run.data.metrics)
    assert run.info.status == "FINISHED"
    tags = world.registry.version_tags(1)
    assert tags["dagster_partition"] == "2025-03-01" and float(tags["decision_threshold"]) > 0


def test_the_second_decision_compares_on_the_same_holdout_and_moves_aliases_only_when_better(world):
    decision = _decision(world.april)
    assert decision["candidate_version"] == 2 and decision["champion_version"] == 1
    assert decision["holdout_month"] == "2025-03"
    assert decision["promote"] == (decision["candidate_kappa"] > decision["champion_kappa"])
    expected_champion = 2 if decision["promote"] else 1
    assert world.registry.alias_version(CHAMPION) == expected_champion
    audit = world.registry.version_tags(2)["decision.2025-04"]
    assert '"champion_kappa"' in audit and '"candidate_kappa"' in audit


def test_a_record_only_run_audits_without_moving_aliases(world):
    champion_before = world.registry.alias_version(CHAMPION)
    result = world.train("2025-04-01", promote=False)
    decision = _decision(result)
    assert decision["aliases_moved"] is False and decision["promote_switch"] is False
    assert world.registry.alias_version(CHAMPION) == champion_before
    assert "decision.2025-04" in world.registry.version_tags(decision["candidate_version"])


def test_a_day_is_scored_by_the_model_in_force_in_its_month_across_a_month_boundary(world):
    in_force_may = world.april.output_for_node("champion_model")["version"]
    result = world.run_range("nightly_scoring", "2025-04-29", "2025-05-02")
    assert result.success
    scores = result.output_for_node("application_scores")
    # April's days: the model chosen in March's partition, even though April's decision came later.
    assert set(scores["2025-04-30"]["model_version"]) == {1}
    assert set(scores["2025-05-01"]["model_version"]) == {in_force_may}
    valid = result.output_for_node("ingest_applications", "applications")
    for day, frame in scores.items():
        assert len(frame) == len(valid[day])
        assert frame["claim_probability"].between(0, 1).all()
        assert set(frame["decision"]) <= set(DECISIONS)
        assert (frame["model_name"] == "claims_classifier").all()
    # Scoring again gives identical scores.
    again = world.run_range("nightly_scoring", "2025-04-30", "2025-04-30").output_for_node("application_scores")
    pd.testing.assert_frame_equal(again["2025-04-30"], scores["2025-04-30"])

    forecast = result.output_for_node("reserve_forecast")["2025-04-30"].iloc[0]
    day = scores["2025-04-30"]
    accepted = day.loc[day["decision"] == "accept", "claim_probability"]
    assert forecast["accepted_expected_claims"] == pytest.approx(accepted.sum())
    assert forecast["accepted_claims_low"] <= forecast["accepted_expected_claims"] <= forecast["accepted_claims_high"]
    assert forecast["all_expected_claims"] == pytest.approx(day["claim_probability"].sum())
    assert forecast["accept_count"] + forecast["refer_count"] + forecast["decline_count"] == len(day)
    assert forecast["accepted_reserve"] == pytest.approx(forecast["accepted_expected_claims"] * 12_000)


def test_an_empty_day_gives_empty_scores_and_a_zero_forecast(world):
    world.warehouse.write_day(
        date(2025, 5, 10), world.warehouse.read_applications(date(2025, 5, 10)).iloc[0:0], pd.DataFrame(
            columns=["application_id", "claim_status", "known_date"]
        )
    )
    result = world.run_range("nightly_scoring", "2025-05-10", "2025-05-10")
    assert result.success
    assert result.output_for_node("application_scores")["2025-05-10"].empty
    forecast = result.output_for_node("reserve_forecast")["2025-05-10"].iloc[0]
    assert forecast["accepted_expected_claims"] == 0 and forecast["accepted_claims_high"] == 0
    assert forecast["all_reserve"] == 0


def test_a_month_without_a_champion_fails_naming_the_partition_to_materialize(world):
    result = world.materialize_in_force("2025-03-01", "2025-03-01", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    # The IO manager's error, raised while loading the input, names the partition to materialize.
    assert "Materialize 'champion_model' for partition 2025-02-01 first" in failure.event_specific_data.error.to_string()


def test_the_first_month_has_no_month_before_it_and_says_so(world):
    result = world.materialize_in_force("2025-01-01", "2025-01-01", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "2025-01 is the platform's first month" in str(failure.event_specific_data.error.message)


def test_rollback_restores_the_previous_champion_audits_and_rescoring_follows(world):
    registry = world.registry
    current = registry.alias_version(CHAMPION)
    other = 2 if current == 1 else 1
    registry.promote(other, {"reason": "test setup"})  # champion=other, previous_champion=current
    result = world.defs.resolve_job_def("rollback_champion").execute_in_process(
        instance=world.instance,
        run_config={"ops": {"restore_previous_champion": {"config": {"reason": "bad calibration seen in May"}}}},
    )
    assert result.success
    assert registry.alias_version(CHAMPION) == current
    assert registry.alias_version(PREVIOUS_CHAMPION) == other
    assert registry.version_tags(other)["withdrawn"] == "true"
    audit = registry.client().get_registered_model(registry.model_name).tags
    assert any(k.startswith("audit.") and k.endswith(f"rollback_v{other}_to_v{current}") for k in audit)
    assert any("bad calibration seen in May" in v for v in audit.values())
    # The rollback refreshes the month's model in force (the sensor asks for it); a day whose
    # model was withdrawn is then re-scored by its replacement.
    in_force_may = world.april.output_for_node("champion_model")["version"]
    refreshed = world.materialize_in_force("2025-05-01", "2025-05-01").output_for_node("model_in_force")
    if in_force_may == other:
        assert refreshed["version"] == current and refreshed["decided_version"] == other
        assert "withdrawn by rollback" in refreshed["note"]
    rescored = world.run_range("nightly_scoring", "2025-05-03", "2025-05-03").output_for_node("application_scores")
    expected = current if in_force_may == other else in_force_may
    assert set(rescored["2025-05-03"]["model_version"]) == {expected}
    assert np.isfinite(rescored["2025-05-03"]["claim_probability"]).all()
