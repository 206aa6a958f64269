"""What the IO managers record per partition: each partition its own file, rows and described columns,
beside what the asset records for it; run totals only under ``run_...`` names."""

from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from claims_platform.storage.parquet_io_manager import ParquetUPathIOManager, PartitionedParquetIOManager
from claims_platform_tests.dagster_helpers import range_tags
from claims_platform_tests.storage.conftest import StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
DAYS = ["2025-01-01", "2025-01-02", "2025-01-03"]


def applications_of(day: str) -> pd.DataFrame:
    n = date.fromisoformat(day).day  # one row on the 1st, two on the 2nd, ...
    return pd.DataFrame(
        {"application_id": [f"{day}-{i}" for i in range(n)], "income": [1000 * i for i in range(n)]}
    )


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn("income", description="Declared here.")]
        )
    },
)
def applications(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
    frames = {day: applications_of(day) for day in context.partition_keys}
    for day, frame in frames.items():
        context.add_asset_metadata({"valid_rows": len(frame)}, partition_key=day)
    return frames


def test_the_io_managers_and_the_assets_per_partition_metadata_both_land_on_each_partition(
    backend: StorageBackend,
):
    result = dg.materialize(
        [applications],
        resources={"io_manager": backend.parquet_io_manager()},
        instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags(DAYS[0], DAYS[-1]),
    )

    by_day = {m.partition: m.metadata for m in result.asset_materializations_for_node("applications")}
    for day in DAYS:
        rows = len(applications_of(day))
        assert by_day[day]["valid_rows"].value == rows  # the asset's
        assert by_day[day]["dagster/row_count"].value == rows  # the IO manager's
        assert by_day[day]["path"].value == backend.full_path(f"applications/{day}.parquet")
        described = {c.name: c.description for c in by_day[day]["dagster/column_schema"].value.columns}
        # The asset's declared description first, the platform's for the columns it knows.
        assert described == {
            "application_id": "Stable id of the application in the policy-administration system.",
            "income": "Declared here.",
        }
        assert by_day[day]["run_row_count"].value == 6


class _ShadowingIOManager(ParquetUPathIOManager):
    """Puts a run total under a name a day's own figure could have."""

    def get_run_metadata(self, context, values_by_partition) -> dict[str, Any]:
        return {"row_count": sum(len(v) for v in values_by_partition.values())}


class _ShadowingFactory(PartitionedParquetIOManager):
    def create_io_manager(self, context) -> ParquetUPathIOManager:
        from claims_platform.storage.locations import storage_root

        return _ShadowingIOManager(storage_root(self.base_path, self.s3))


def test_a_run_total_not_named_as_the_runs_fails_before_anything_is_stored(tmp_path):
    result = dg.materialize(
        [applications],
        resources={"io_manager": _ShadowingFactory(base_path=str(tmp_path / "storage"))},
        instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags(DAYS[0], DAYS[-1]),
        raise_on_error=False,
    )

    assert not result.success
    failure = result.failure_data_for_node("applications")
    assert "must start with 'run_'" in str(failure.error)
    assert not (tmp_path / "storage").exists() or not list((tmp_path / "storage").rglob("*.parquet"))


@pytest.mark.parametrize("day", DAYS[:1])
def test_a_one_partition_run_has_no_run_totals(backend: StorageBackend, day: str):
    result = dg.materialize(
        [applications],
        resources={"io_manager": backend.parquet_io_manager()},
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=day,
    )

    (materialization,) = result.asset_materializations_for_node("applications")
    assert materialization.metadata["dagster/row_count"].value == 1
    assert not [key for key in materialization.metadata if key.startswith("run_")]
