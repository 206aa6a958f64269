"""The ingestion assets and their blocking checks, materialized through Dagster on temporary storage."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from claims_platform.contract import REJECTION_REASON
from claims_platform.ingestion import assets as ingestion
from claims_platform.resources import ApplicationSource, WarehouseSource
from claims_platform.schema import APPLICATION_ID
from claims_platform.source.scenarios import count_defects, get_scenario
from claims_platform.source.simulate import simulate_range
from claims_platform.source.warehouse import Warehouse
from claims_platform.storage import PartitionedParquetIOManager
from claims_platform_tests.dagster_helpers import check_results, materialize_range

FIRST, LAST = date(2025, 2, 1), date(2025, 2, 3)


def _run(source: ApplicationSource, storage, first=FIRST, last=LAST, **kwargs):
    return materialize_range(
        [ingestion.ingest_applications],
        first.isoformat(),
        last.isoformat(),
        resources={"source": source, "io_manager": PartitionedParquetIOManager(base_path=str(storage))},
        **kwargs,
    )


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")


def test_a_range_of_days_is_one_run_one_file_per_day_and_every_row_accounted(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, LAST)
    simulate_range(warehouse, LAST, LAST, scenario=get_scenario("data_quality", LAST))
    # The injected duplicate ids fail a blocking check, so the run fails — after storing every day.
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", raise_on_error=False)
    assert not result.success and check_results(result)["unique_application_ids"].passed is False

    files = sorted(p.name for p in (tmp_path / "storage" / "applications").iterdir())
    assert files == ["2025-02-01.parquet", "2025-02-02.parquet", "2025-02-03.parquet"]
    valid = result.output_for_node("ingest_applications", "applications")
    rejected = result.output_for_node("ingest_applications", "rejected_applications")
    for day in ("2025-02-01", "2025-02-02", "2025-02-03"):
        raw = warehouse.read_applications(date.fromisoformat(day))
        assert len(valid[day]) + len(rejected[day]) == len(raw)
        stored = pd.read_parquet(tmp_path / "storage" / "applications" / f"{day}.parquet")
        assert len(stored) == len(valid[day])
    assert rejected["2025-02-01"].empty and rejected["2025-02-02"].empty
    # Every injected defect is caught, and nothing else is.
    raw_last = warehouse.read_applications(LAST)
    assert len(rejected["2025-02-03"]) == sum(count_defects(raw_last).values()) > 0
    assert rejected["2025-02-03"][REJECTION_REASON].str.startswith("column '").all()

    materializations = result.asset_materializations_for_node("ingest_applications")
    by_key = {(m.asset_key.to_user_string(), m.partition) for m in materializations}
    assert ("applications", "2025-02-02") in by_key and ("rejected_applications", "2025-02-03") in by_key
    metadata = next(m.metadata for m in materializations if m.asset_key.to_user_string() == "applications")
    assert metadata["run_rows_read"].value == metadata["run_valid_rows"].value + metadata["run_rejected_rows"].value
    per_day = {r.data["day"]: r.data for r in metadata["per_day"].records}
    assert per_day["2025-02-03"]["read"] == per_day["2025-02-03"]["valid"] + per_day["2025-02-03"]["rejected"]


def test_duplicate_ids_fail_a_blocking_check(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, LAST, scenario=get_scenario("data_quality", LAST))
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", raise_on_error=False)
    assert not result.success
    checks = check_results(result)
    assert checks["unique_application_ids"].passed is False
    assert checks["unique_application_ids"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["contract_columns_present"].passed is True


class _FrameSource(ApplicationSource):
    """A source that hands over a fixed frame: to present batches no real warehouse would hold."""

    frame_path: str

    def read_applications(self, first_day, last_day):
        return pd.read_pickle(self.frame_path)

    def read_outcomes(self, first_day, last_day, known_before):
        raise NotImplementedError

    def loaded_days(self, first_day, last_day):
        raise NotImplementedError


def test_a_missing_column_fails_the_blocking_check_and_rejects_every_row(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, FIRST)
    frame = warehouse.read_applications(FIRST).drop(columns=["uk_residence"])
    frame.to_pickle(tmp_path / "frame.pkl")
    result = _run(
        _FrameSource(frame_path=str(tmp_path / "frame.pkl")), tmp_path / "storage", FIRST, FIRST, raise_on_error=False
    )
    assert not result.success
    checks = check_results(result)
    assert checks["contract_columns_present"].passed is False
    assert checks["contract_columns_present"].metadata["missing_columns"].value == ["uk_residence"]
    rejected = result.output_for_node("ingest_applications", "rejected_applications")["2025-02-01"]
    assert len(rejected) == len(frame)


def test_an_empty_day_warns_without_blocking_and_an_implausible_day_blocks(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, FIRST)
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", FIRST, LAST)
    assert result.success  # a warning does not block
    volume = check_results(result)["plausible_daily_volume"]
    assert volume.passed is False and volume.severity == dg.AssetCheckSeverity.WARN
    assert volume.metadata["empty_days"].value == ["2025-02-02", "2025-02-03"]

    few = warehouse.read_applications(FIRST).head(40)
    few.to_pickle(tmp_path / "few.pkl")
    result = _run(_FrameSource(frame_path=str(tmp_path / "few.pkl")), tmp_path / "s2", FIRST, FIRST, raise_on_error=False)
    assert not result.success
    volume = check_results(result)["plausible_daily_volume"]
    assert volume.passed is False and volume.severity == dg.AssetCheckSeverity.ERROR
    assert volume.metadata["implausible_days"].value == {"2025-02-01": 40}


def test_rejected_share_over_the_limit_blocks(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, FIRST)
    frame = warehouse.read_applications(FIRST)
    frame.loc[frame.index[:100], "age"] = 5  # about 8% of the day out of range
    frame.to_pickle(tmp_path / "frame.pkl")
    result = _run(
        _FrameSource(frame_path=str(tmp_path / "frame.pkl")), tmp_path / "storage", FIRST, FIRST, raise_on_error=False
    )
    assert not result.success
    share = check_results(result)["rejected_share_within_limit"]
    assert share.passed is False and "2025-02-01" in share.metadata["broken_days"].value
    assert set(result.output_for_node("ingest_applications", "rejected_applications")["2025-02-01"][APPLICATION_ID]) == set(
        frame[APPLICATION_ID].iloc[:100]
    )
