"""The code location loads, and its assets, checks, jobs, schedules and sensors are exactly these."""

import dagster as dg

from claims_platform.definitions import defs


def test_definitions_load_and_pin_the_asset_graph():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()) == [
        "application_scores",
        "applications",
        "champion_model",
        "claims_model",
        "model_in_force",
        "rejected_applications",
        "reserve_forecast",
        "training_set",
    ]
    assert sorted(
        f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys
    ) == [
        "applications:contract_columns_present",
        "applications:plausible_daily_volume",
        "applications:rejected_share_within_limit",
        "applications:unique_application_ids",
        "claims_model:candidate_quality",
    ]
    assert sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")) == [
        "daily_ingestion",
        "monthly_training",
        "nightly_scoring",
        "refresh_model_in_force",
        "rollback_champion",
    ]
    assert sorted(s.name for s in repo.schedule_defs) == ["monthly_training_schedule", "nightly_scoring_schedule"]
    assert sorted(s.name for s in repo.sensor_defs) == [
        "late_applications_sensor",
        "model_in_force_automation",
        "rollback_refresh_sensor",
    ]


def test_daily_assets_backfill_in_one_run():
    repo = defs.get_repository_def()
    for key in ("applications", "rejected_applications", "application_scores", "reserve_forecast", "model_in_force"):
        node = repo.asset_graph.get(dg.AssetKey(key))
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.partitions_def.get_first_partition_key() == "2025-01-01"


def test_a_day_depends_on_the_model_in_force_of_its_month_decided_the_month_before():
    graph = defs.get_repository_def().asset_graph
    scores = dg.AssetKey("application_scores")
    in_force = dg.AssetKey("model_in_force")
    assert in_force in graph.get(scores).parent_keys
    assert dg.AssetKey("champion_model") in graph.get(in_force).parent_keys
