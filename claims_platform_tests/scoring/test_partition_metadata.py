"""A single-run backfill of 20 days: each day's page shows that day's own figures, never the run's.

Dagster copies an output's metadata onto every partition of a run, so figures written once for a
year-long backfill would show on every day's page. The world is small: 20 simulated days, ingested,
scored and forecast as ONE run, by a model trained in seconds (claims_platform_tests.trained_model)
and registered in a throw-away MLflow; `model_in_force` is seeded with it.
"""

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import mlflow
import pandas as pd
import pytest

from claims_platform.core.figures import money
from claims_platform.core.partitions import scoring_months
from claims_platform.core.policy import DECISIONS, DecisionPolicy
from claims_platform.core.schema import APPLICATION_COLUMNS
from claims_platform.core.table_schemas import table_schema
from claims_platform.models.packaging import log_trained_model
from claims_platform_tests.dagster_helpers import materialize_range, range_tags
from claims_platform_tests.models.mlflow_sandbox import temporary_mlflow
from claims_platform_tests.platform_world import QUIET, PlatformWorld
from claims_platform_tests.trained_model import parts, trained, window  # noqa: F401

FIRST, LAST = "2025-06-01", "2025-06-20"
DAYS = [d.strftime("%Y-%m-%d") for d in pd.date_range(FIRST, LAST)]
BACKFILLED = ["applications", "rejected_applications", "application_scores", "reserve_forecast"]
COST = 12_000.0  # ReserveConfig's default average claim cost (the run sets no config)


def _seed_model_in_force(world: PlatformWorld, record: dict) -> None:
    @dg.asset(name="model_in_force", partitions_def=scoring_months, io_manager_key="object_io_manager")
    def seeded(context: dg.AssetExecutionContext) -> dict:
        return record

    materialize_range(
        [seeded], "2025-06-01", "2025-06-01", resources=world.resources, instance=world.instance
    )


@pytest.fixture(scope="module")
def backfill(tmp_path_factory, trained):  # noqa: F811
    home = tmp_path_factory.mktemp("partition_metadata")
    world = PlatformWorld(home)
    world.simulate(date.fromisoformat(FIRST), date.fromisoformat(LAST))
    name = world.registry.model_name
    with temporary_mlflow(home / "registry") as (_, experiment):
        with mlflow.start_run(experiment_id=experiment):
            version = log_trained_model(trained, registered_model_name=name)
        model_uri = mlflow.MlflowClient().get_model_version_download_uri(name, str(version))
    _seed_model_in_force(
        world,
        {
            "model_name": name,
            "version": version,
            "model_uri": model_uri,
            "policy": DecisionPolicy().as_dict(),
            "decided_in": "2025-05",
            "outcome": "promoted",
            "reason": "seeded by the test",
        },
    )
    result = world.defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=world.instance,
        asset_selection=[dg.AssetKey(a) for a in BACKFILLED],
        tags=range_tags(FIRST, LAST),
        run_config=QUIET,
    )
    assert result.success
    # ingest_applications materializes two assets: each event is sorted by its own asset key.
    metadata: dict[str, dict] = {asset: {} for asset in BACKFILLED}
    for node in ("ingest_applications", "application_scores", "reserve_forecast"):
        for event in result.asset_materializations_for_node(node):
            metadata[event.asset_key.to_user_string()][event.partition] = event.metadata
    return SimpleNamespace(storage=home / "storage", metadata=metadata)


def _stored(backfill, asset: str, day: str) -> pd.DataFrame:
    return pd.read_parquet(Path(backfill.storage) / asset / f"{day}.parquet")


def _value(entry):
    return entry.value if hasattr(entry, "value") else entry


def test_every_day_of_the_run_is_materialized_once_per_asset(backfill):
    for asset in BACKFILLED:
        assert sorted(backfill.metadata[asset]) == DAYS, asset


def test_each_days_applications_show_that_days_rows_and_file(backfill):
    for day in DAYS:
        valid, rejected = (
            _stored(backfill, "applications", day),
            _stored(backfill, "rejected_applications", day),
        )
        own = backfill.metadata["applications"][day]
        assert own["dagster/row_count"].value == len(valid) == own["valid_rows"].value
        assert own["path"].value == str(Path(backfill.storage) / "applications" / f"{day}.parquet")
        rejected_own = backfill.metadata["rejected_applications"][day]
        assert rejected_own["dagster/row_count"].value == len(rejected)
        assert rejected_own["path"].value.endswith(f"rejected_applications/{day}.parquet")
    # The days differ, so a figure copied from one day (or summed over the run) would show.
    assert len({backfill.metadata["applications"][d]["dagster/row_count"].value for d in DAYS}) > 1


def test_each_days_scores_show_that_days_rows_and_decisions(backfill):
    for day in DAYS:
        scores = _stored(backfill, "application_scores", day)
        own = backfill.metadata["application_scores"][day]
        counts = scores["decision"].value_counts()
        assert own["rows_scored"].value == own["dagster/row_count"].value == len(scores)
        for decision in DECISIONS:
            assert own[f"decision_{decision}"].value == int(counts.get(decision, 0)), (day, decision)
        assert own["accepted_share"].value == f"{100 * counts.get('accept', 0) / len(scores):.1f}%"


def test_each_days_forecast_shows_that_days_expected_claims_interval_and_reserve(backfill):
    for day in DAYS:
        scores = _stored(backfill, "application_scores", day)
        forecast = _stored(backfill, "reserve_forecast", day).iloc[0]
        own = backfill.metadata["reserve_forecast"][day]
        expected = float(scores.loc[scores["decision"] == "accept", "claim_probability"].sum())
        counts = scores["decision"].value_counts()
        assert own["applications"].value == len(scores)
        for decision in DECISIONS:
            assert own[f"decision_{decision}"].value == int(counts.get(decision, 0)), (day, decision)
        assert own["expected_claims"].value == round(expected, 1)
        assert (
            own["expected_claims_95"].value
            == f"{forecast['accepted_claims_low']}–{forecast['accepted_claims_high']} claims"
        )
        assert own["reserve"].value == money(expected * COST, "GBP")
        assert own["average_claim_cost"].value == "£12,000"
        everyone = float(scores["claim_probability"].sum())
        assert own["expected_claims_before_filtering"].value == round(everyone, 1)
        assert own["reserve_saved_by_filtering"].value == money((everyone - expected) * COST, "GBP")


def test_no_day_carries_another_days_figures(backfill):
    """Outside the keys named as the run's (``run_...``), nothing on a day's page names another day."""
    for asset in BACKFILLED:
        for day, metadata in backfill.metadata[asset].items():
            others = [d for d in DAYS if d != day]
            for key, entry in metadata.items():
                if key.startswith("run_"):
                    continue
                text = str(_value(entry))
                assert not [d for d in others if d in text], (asset, day, key, text[:200])
    # Two days' forecasts differ: the same figure on every page would be the run's, not the day's.
    assert len({backfill.metadata["reserve_forecast"][d]["reserve"].value for d in DAYS}) > 1


def test_the_applications_column_schema_describes_every_column(backfill):
    for day in DAYS[:3]:
        schema = backfill.metadata["applications"][day]["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == list(APPLICATION_COLUMNS)
        missing = [c.name for c in schema.columns if not c.description]
        assert not missing, missing
        assert {c.name: c.description for c in schema.columns}[
            "income level"
        ] == "Income in 5 equal-width bins, 0–4."


def test_scores_and_rejected_rows_are_described_too(backfill):
    for asset in ("application_scores", "rejected_applications", "reserve_forecast"):
        schema = backfill.metadata[asset][DAYS[0]]["dagster/column_schema"].value
        missing = [c.name for c in schema.columns if not c.description]
        assert not missing, (asset, missing)


def test_table_schema_takes_declared_descriptions_first_and_types_from_the_frame():
    frame = pd.DataFrame({"application_id": ["a"], "income": [1], "score": [0.5]})
    schema = table_schema(frame, {"score": "The score.", "income": "Overridden."})
    described = {c.name: (c.type, c.description) for c in schema.columns}
    assert described["score"] == ("float64", "The score.")
    assert described["income"] == ("int64", "Overridden.")
    assert described["application_id"][1].startswith("Stable id")
