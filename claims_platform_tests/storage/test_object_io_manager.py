"""ObjectIOManager (pickles) on a local folder and on S3: exact locations and round trips."""

import dagster as dg
import pytest

from claims_platform.storage import MissingPartitionError, PartitionKeysMismatchError
from claims_platform_tests.storage.conftest import StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
OBJECTS = "object_io_manager"


def drift_summary(partition_key: str) -> dict:
    return {"day": partition_key, "drift_share": 0.25, "drifted_columns": ["income", "age"]}


@dg.asset(io_manager_key=OBJECTS)
def model_card() -> dict:
    return {"model": "claims_model", "version": 3, "features": ("age", "income")}


@dg.asset(io_manager_key=OBJECTS)
def model_card_title(model_card: dict) -> str:
    return f"{model_card['model']} v{model_card['version']}"


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
def drift_report(context: dg.AssetExecutionContext) -> dict[str, dict]:
    return {key: drift_summary(key) for key in context.partition_keys}


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
def drift_alert(context: dg.AssetExecutionContext, drift_report: dict[str, dict]) -> dict[str, bool]:
    assert list(drift_report) == list(context.partition_keys)
    return {key: report["drift_share"] > 0.2 for key, report in drift_report.items()}


def materialize(backend: StorageBackend, assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={OBJECTS: backend.object_io_manager()},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def test_unpartitioned_object_round_trip_at_exact_path(backend: StorageBackend):
    result = materialize(backend, [model_card, model_card_title])

    assert result.success
    assert backend.stored_files() == ["model_card", "model_card_title"]
    assert backend.unpickle("model_card") == {
        "model": "claims_model",
        "version": 3,
        "features": ("age", "income"),
    }
    assert backend.unpickle("model_card_title") == "claims_model v3"


def test_single_partition_dict_value_is_stored_as_is(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, io_manager_key=OBJECTS, name="drift_report")
    def one_day_drift_report(context: dg.AssetExecutionContext) -> dict:
        # A dict that is the VALUE (not keyed by partition) must not be mistaken for a mapping.
        return drift_summary(context.partition_key)

    @dg.asset(partitions_def=DAILY, io_manager_key=OBJECTS)
    def drift_share(drift_report: dict) -> float:
        return drift_report["drift_share"]

    assert materialize(backend, [one_day_drift_report, drift_share], partition_key="2025-01-02").success
    assert backend.stored_files() == ["drift_report/2025-01-02", "drift_share/2025-01-02"]
    assert backend.unpickle("drift_report/2025-01-02") == drift_summary("2025-01-02")
    assert backend.unpickle("drift_share/2025-01-02") == 0.25


def test_single_run_backfill_of_objects(backend: StorageBackend):
    days = ["2025-01-01", "2025-01-02", "2025-01-03"]
    result = materialize(
        backend,
        [drift_report, drift_alert],
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
    )

    assert result.success
    assert backend.stored_files() == sorted(
        [f"drift_report/{d}" for d in days] + [f"drift_alert/{d}" for d in days]
    )
    for day in days:
        assert backend.unpickle(f"drift_report/{day}") == drift_summary(day)
        assert backend.unpickle(f"drift_alert/{day}") is True
    metadata = result.asset_materializations_for_node("drift_report")[0].metadata
    assert metadata["partitions_written"].value == 3
    assert metadata["path_prefix"].value == backend.full_path("drift_report")


def test_object_range_with_wrong_keys_is_rejected(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key=OBJECTS)
    def short_report(context: dg.AssetExecutionContext) -> dict[str, dict]:
        return {key: {} for key in context.partition_keys[:1]}

    with pytest.raises(PartitionKeysMismatchError, match="missing 1: 2025-01-02"):
        materialize(
            backend,
            [short_report],
            tags={
                "dagster/asset_partition_range_start": "2025-01-01",
                "dagster/asset_partition_range_end": "2025-01-02",
            },
        )
    assert backend.stored_files() == []


def test_missing_object_partition_names_it(backend: StorageBackend):
    with pytest.raises(
        MissingPartitionError, match=r"Partition 2025-01-04 of asset 'drift_report'"
    ) as raised:
        materialize(backend, [drift_report, drift_alert], selection=[drift_alert], partition_key="2025-01-04")
    assert backend.full_path("drift_report/2025-01-04") in str(raised.value)
