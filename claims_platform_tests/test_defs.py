"""The code location loads, and its assets, checks, jobs, schedules and sensors are exactly these."""

import dagster as dg

from claims_platform.definitions import defs


def test_definitions_load_and_pin_the_asset_graph():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()) == [
        "applications",
        "rejected_applications",
    ]
    assert sorted(
        f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys
    ) == [
        "applications:contract_columns_present",
        "applications:plausible_daily_volume",
        "applications:rejected_share_within_limit",
        "applications:unique_application_ids",
    ]
    assert sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")) == ["daily_ingestion"]
    assert [s.name for s in repo.schedule_defs] == []
    assert [s.name for s in repo.sensor_defs] == []


def test_daily_assets_backfill_in_one_run():
    repo = defs.get_repository_def()
    for key in ("applications", "rejected_applications"):
        node = repo.asset_graph.get(dg.AssetKey(key))
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.partitions_def.get_first_partition_key() == "2025-01-01"
