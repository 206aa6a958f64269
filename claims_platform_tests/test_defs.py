"""The code location loads, and its assets, checks, jobs, schedules and sensors are exactly these."""

import dagster as dg

from claims_platform.definitions import defs


def test_definitions_load_and_pin_the_asset_graph():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()) == [
        "application_scores",
        "applications",
        "applications_drift",
        "applications_drift_report",
        "candidate_model",
        "champion_decision",
        "model_in_force",
        "model_performance",
        "rejected_applications",
        "reserve_forecast",
        "training_set",
    ]
    assert sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys) == [
        "applications:contract_columns_present",
        "applications:plausible_daily_volume",
        "applications:rejected_share_vs_history",
        "applications:rejected_share_within_limit",
        "applications:unique_application_ids",
        "applications_drift:applications_drift_within_threshold",
        "candidate_model:candidate_quality",
        "candidate_model:fairness_within_tolerance",
        "model_performance:fairness_within_tolerance",
        "model_performance:performance_within_bounds",
        "training_set:rejected_rows_unbiased",
    ]
    assert sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")) == [
        "daily_ingestion",
        "drift_reports",
        "measure_model_performance",
        "monthly_training",
        "nightly_scoring",
        "rollback_champion",
    ]
    assert sorted(s.name for s in repo.schedule_defs) == [
        "monthly_training_schedule",
        "nightly_scoring_schedule",
    ]
    assert sorted(s.name for s in repo.sensor_defs) == [
        "drift_report_sensor",
        "late_applications_sensor",
        "model_in_force_automation",
        "model_performance_sensor",
        "monitoring_alert_sensor",
        "run_failure_alert_sensor",
    ]
    # The nightly and monthly cycle runs as soon as the daemon does.
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs)
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs)
    # Every resource a sensor or asset asks for is there (a missing one fails only at tick time).
    assert {
        "alerts",
        "registry",
        "source",
        "mlflow",
        "io_manager",
        "object_io_manager",
        "report_io_manager",
        "evidently",
    } <= set(defs.resources)


def test_daily_assets_backfill_in_one_run():
    repo = defs.get_repository_def()
    for key in (
        "applications",
        "rejected_applications",
        "application_scores",
        "reserve_forecast",
        "applications_drift",
        "applications_drift_report",
        "model_in_force",
    ):
        node = repo.asset_graph.get(dg.AssetKey(key))
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.partitions_def.get_first_partition_key() == "2025-01-01"


def test_a_day_depends_on_the_model_in_force_of_its_month_decided_the_month_before():
    graph = defs.get_repository_def().asset_graph
    scores = dg.AssetKey("application_scores")
    in_force = dg.AssetKey("model_in_force")
    decision = dg.AssetKey("champion_decision")
    assert in_force in graph.get(scores).parent_keys
    assert decision in graph.get(in_force).parent_keys
    # The champion chain is partitioned state: each month's decision depends on the month before.
    assert decision in graph.get(decision).parent_keys
    assert graph.get(decision).pools == {"champion_chain"}
