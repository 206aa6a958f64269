"""PartitionedParquetIOManager through real Dagster runs, on a local folder and on S3 (same bodies)."""

import io
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from claims_platform.storage import (
    MissingPartitionError,
    PartitionedParquetIOManager,
    PartitionKeysMismatchError,
    StoredAssetNotFoundError,
)
from claims_platform_tests.s3_server import S3Endpoint
from claims_platform_tests.storage.conftest import StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
FIVE_DAYS = [f"2025-01-0{day}" for day in range(1, 6)]


def day_frame(partition_key: str) -> pd.DataFrame:
    """A small, distinct frame per day, with the dtypes the platform stores."""
    day = date.fromisoformat(partition_key)
    n = day.day  # a different row count per day, so mixed-up files would show
    return pd.DataFrame(
        {
            "application_id": [f"{partition_key}-{i}" for i in range(n)],
            "application_date": [day] * n,
            "income": [1000.0 * (i + day.day) for i in range(n)],
            "location": pd.Categorical(["A", "B", "C"] * n)[:n],
        }
    )


def range_tags(start: str, end: str) -> dict[str, str]:
    """Run tags of a single-run backfill over [start, end] (what the backfill daemon sets)."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
def applications(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
    return {key: day_frame(key) for key in context.partition_keys}


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
def application_scores(
    context: dg.AssetExecutionContext, applications: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    # Fails the run if the IO manager hands over other days than the run's.
    assert list(applications) == list(context.partition_keys)
    return {
        key: frame.assign(score=frame["income"] / 1000.0, scored_day=key)
        for key, frame in applications.items()
    }


def materialize(backend: StorageBackend, assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={"io_manager": backend.parquet_io_manager()},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def read_stored(backend: StorageBackend, relative: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(backend.read_bytes(relative)))


def test_single_run_backfill_writes_one_file_per_partition_and_reads_them_back(backend: StorageBackend):
    result = materialize(
        backend, [applications, application_scores], tags=range_tags(FIVE_DAYS[0], FIVE_DAYS[-1])
    )

    assert result.success
    assert backend.stored_files() == sorted(
        [f"applications/{d}.parquet" for d in FIVE_DAYS]
        + [f"application_scores/{d}.parquet" for d in FIVE_DAYS]
    )
    for day in FIVE_DAYS:
        # Read with plain pandas: other tools must be able to read what the platform writes.
        stored = read_stored(backend, f"application_scores/{day}.parquet")
        expected = day_frame(day).assign(score=lambda f: f["income"] / 1000.0, scored_day=day)
        pd.testing.assert_frame_equal(stored, expected)
    materialized = [
        (event.materialization.asset_key.to_user_string(), event.materialization.partition)
        for event in result.get_asset_materialization_events()
    ]
    assert sorted(materialized) == sorted(
        [("applications", d) for d in FIVE_DAYS] + [("application_scores", d) for d in FIVE_DAYS]
    )


def test_each_partition_of_a_range_carries_its_own_rows_and_path_and_the_run_totals_say_so(
    backend: StorageBackend,
):
    result = materialize(backend, [applications], tags=range_tags(FIVE_DAYS[0], FIVE_DAYS[-1]))

    by_day = {m.partition: m.metadata for m in result.asset_materializations_for_node("applications")}
    assert sorted(by_day) == FIVE_DAYS
    for day, metadata in by_day.items():
        assert metadata["dagster/row_count"].value == len(day_frame(day))
        assert metadata["path"].value == backend.full_path(f"applications/{day}.parquet")
        # The run's totals are on every partition, named as the run's: never a day's row count.
        assert metadata["run_row_count"].value == sum(range(1, 6))
        assert metadata["run_partitions_written"].value == 5
        assert metadata["run_partition_range"].value == "2025-01-01 to 2025-01-05"


def test_single_partition_dataframe_in_and_out(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, name="applications")
    def one_day_applications(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return day_frame(context.partition_key)

    @dg.asset(partitions_def=DAILY)
    def reserve_forecast(applications: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"applications": [len(applications)], "income": [applications["income"].sum()]})

    result = materialize(backend, [one_day_applications, reserve_forecast], partition_key="2025-01-03")

    assert result.success
    assert backend.stored_files() == [
        "applications/2025-01-03.parquet",
        "reserve_forecast/2025-01-03.parquet",
    ]
    pd.testing.assert_frame_equal(
        read_stored(backend, "applications/2025-01-03.parquet"), day_frame("2025-01-03")
    )
    pd.testing.assert_frame_equal(
        read_stored(backend, "reserve_forecast/2025-01-03.parquet"),
        pd.DataFrame({"applications": [3], "income": [3000.0 + 4000.0 + 5000.0]}),
    )
    metadata = result.asset_materializations_for_node("reserve_forecast")[0].metadata
    assert metadata["path"].value == backend.full_path("reserve_forecast/2025-01-03.parquet")
    assert metadata["dagster/row_count"].value == 1
    assert not [key for key in metadata if key.startswith("run_")]  # a one-partition run has no range to sum


def test_dict_annotated_input_gets_a_dict_even_for_one_partition(backend: StorageBackend):
    seen: list[list[str]] = []

    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
    def daily_counts(applications: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        seen.append(list(applications))
        return {key: pd.DataFrame({"n": [len(frame)]}) for key, frame in applications.items()}

    # The upstream returns a one-key mapping for a one-partition run: also accepted.
    result = materialize(backend, [applications, daily_counts], partition_key="2025-01-02")

    assert result.success
    assert seen == [["2025-01-02"]]
    assert backend.stored_files() == ["applications/2025-01-02.parquet", "daily_counts/2025-01-02.parquet"]
    pd.testing.assert_frame_equal(
        read_stored(backend, "daily_counts/2025-01-02.parquet"), pd.DataFrame({"n": [2]})
    )


def test_unpartitioned_asset_is_one_file_named_by_its_key_path(backend: StorageBackend):
    @dg.asset(key_prefix=["monitoring"])
    def reference_sample() -> pd.DataFrame:
        return day_frame("2025-01-04")

    @dg.asset(ins={"reference_sample": dg.AssetIn(key=["monitoring", "reference_sample"])})
    def reference_size(reference_sample: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"rows": [len(reference_sample)]})

    result = materialize(backend, [reference_sample, reference_size])

    assert result.success
    assert backend.stored_files() == ["monitoring/reference_sample.parquet", "reference_size.parquet"]
    pd.testing.assert_frame_equal(read_stored(backend, "reference_size.parquet"), pd.DataFrame({"rows": [4]}))
    metadata = result.asset_materializations_for_node("monitoring__reference_sample")[0].metadata
    assert metadata["path"].value == backend.full_path("monitoring/reference_sample.parquet")
    assert metadata["dagster/row_count"].value == 4


def test_missing_upstream_partition_names_asset_partition_and_path(backend: StorageBackend):
    # Days 1-3 exist; scoring days 1-5 needs days 4 and 5 too.
    assert materialize(backend, [applications], tags=range_tags("2025-01-01", "2025-01-03")).success

    with pytest.raises(MissingPartitionError) as raised:
        materialize(
            backend,
            [applications, application_scores],
            selection=[application_scores],
            tags=range_tags(FIVE_DAYS[0], FIVE_DAYS[-1]),
        )

    message = str(raised.value)
    assert "2 of the 5 requested partitions of asset 'applications'" in message
    assert "2025-01-04, 2025-01-05" in message
    assert backend.full_path("applications/2025-01-04.parquet") in message
    assert "Materialize 'applications' for partitions 2025-01-04 to 2025-01-05 first" in message
    assert raised.value.missing_partition_keys == ["2025-01-04", "2025-01-05"]
    assert not any(path.startswith("application_scores/") for path in backend.stored_files())


def test_missing_single_partition_message(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY)
    def reserve_forecast(applications: pd.DataFrame) -> pd.DataFrame:
        return applications

    with pytest.raises(
        MissingPartitionError, match=r"Partition 2025-01-02 of asset 'applications' has not been"
    ):
        materialize(
            backend,
            [applications, reserve_forecast],
            selection=[reserve_forecast],
            partition_key="2025-01-02",
        )


def test_allow_missing_partitions_skips_them(backend: StorageBackend):
    seen: list[list[str]] = []

    @dg.asset(
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={"applications": dg.AssetIn(metadata={"allow_missing_partitions": True})},
    )
    def tolerant_scores(
        context: dg.AssetExecutionContext, applications: dict[str, pd.DataFrame]
    ) -> dict[str, pd.DataFrame]:
        seen.append(list(applications))
        return {key: pd.DataFrame({"n": [len(applications.get(key, []))]}) for key in context.partition_keys}

    assert materialize(backend, [applications], partition_key="2025-01-02").success
    result = materialize(
        backend,
        [applications, tolerant_scores],
        selection=[tolerant_scores],
        tags=range_tags("2025-01-01", "2025-01-03"),
    )

    assert result.success
    assert seen == [["2025-01-02"]]


def test_unmaterialized_unpartitioned_asset_gives_clear_error(backend: StorageBackend):
    @dg.asset
    def reference_sample() -> pd.DataFrame:
        return day_frame("2025-01-01")

    @dg.asset
    def reference_size(reference_sample: pd.DataFrame) -> pd.DataFrame:
        return reference_sample

    with pytest.raises(
        StoredAssetNotFoundError, match=r"Asset 'reference_sample' has not been materialized"
    ) as raised:
        materialize(backend, [reference_sample, reference_size], selection=[reference_size])
    assert backend.full_path("reference_sample.parquet") in str(raised.value)


def test_mapping_with_wrong_keys_fails_before_writing_anything(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), name="applications")
    def sloppy_applications(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
        keys = [*context.partition_keys[:-1], "2024-12-31"]  # drops the last day, adds a stranger
        return {key: day_frame("2025-01-01") for key in keys}

    with pytest.raises(PartitionKeysMismatchError) as raised:
        materialize(backend, [sloppy_applications], tags=range_tags("2025-01-01", "2025-01-03"))

    message = str(raised.value)
    assert "Asset 'applications'" in message
    assert "missing 1: 2025-01-03" in message
    assert "unexpected 1: 2024-12-31" in message
    assert backend.stored_files() == []


def test_range_run_returning_one_dataframe_is_rejected(backend: StorageBackend):
    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(), name="applications")
    def lumped_applications() -> pd.DataFrame:
        return day_frame("2025-01-01")

    with pytest.raises(TypeError, match=r"materializing 3 partitions in one run .* returned DataFrame"):
        materialize(backend, [lumped_applications], tags=range_tags("2025-01-01", "2025-01-03"))
    assert backend.stored_files() == []


def test_empty_day_round_trips_columns_and_dtypes(backend: StorageBackend):
    empty = (
        day_frame("2025-01-01")
        .iloc[0:0]
        .assign(
            claim_probability=pd.Series([], dtype="float64"),
            decision=pd.Categorical([], categories=["accept", "refer", "decline"]),
            model_version=pd.Series([], dtype="Int64"),
            scored_at=pd.Series([], dtype="datetime64[ns, UTC]"),
        )
    )
    loaded: list[pd.DataFrame] = []

    @dg.asset(partitions_def=DAILY, name="application_scores")
    def empty_scores() -> pd.DataFrame:
        return empty

    @dg.asset(partitions_def=DAILY)
    def reserve_forecast(application_scores: pd.DataFrame) -> pd.DataFrame:
        loaded.append(application_scores)
        return pd.DataFrame({"accepted": [int((application_scores["decision"] == "accept").sum())]})

    assert materialize(backend, [empty_scores, reserve_forecast], partition_key="2025-01-06").success

    (frame,) = loaded
    assert list(frame.columns) == list(empty.columns)
    assert frame.empty
    pd.testing.assert_series_equal(frame.dtypes, empty.dtypes)
    assert frame["decision"].cat.categories.tolist() == ["accept", "refer", "decline"]
    assert backend.stored_files() == [
        "application_scores/2025-01-06.parquet",
        "reserve_forecast/2025-01-06.parquet",
    ]


@pytest.mark.integration
def test_missing_bucket_fails_loudly_and_is_not_created(s3_endpoint: S3Endpoint):
    client = s3_endpoint.client()
    io_manager = PartitionedParquetIOManager(
        base_path="s3://no-such-bucket/claims", s3=s3_endpoint.resource()
    )

    with pytest.raises(FileNotFoundError, match="bucket does not exist"):
        dg.materialize(
            [applications],
            resources={"io_manager": io_manager},
            instance=dg.DagsterInstance.ephemeral(),
            partition_key="2025-01-01",
        )

    bucket_names = [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]
    assert "no-such-bucket" not in bucket_names
