"""The ingestion assets and their checks, materialized through Dagster on temporary storage."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from claims_platform.core.alerts import AlertsResource
from claims_platform.core.contract import REJECTION_REASON
from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID
from claims_platform.ingestion import assets as ingestion
from claims_platform.source.resources import ApplicationSource, WarehouseSource
from claims_platform.source.scenarios import count_defects, get_scenario
from claims_platform.source.simulate import simulate_range
from claims_platform.source.warehouse import Warehouse
from claims_platform.storage import PartitionedParquetIOManager
from claims_platform.training.assets import training_set
from claims_platform_tests.dagster_helpers import check_results, materialize_range
from claims_platform_tests.webhook import serve_webhook

FIRST, LAST = date(2025, 2, 1), date(2025, 2, 3)


def _run(source: ApplicationSource, storage, first=FIRST, last=LAST, *, assets=(), alerts=None, **kwargs):
    return materialize_range(
        [ingestion.ingest_applications, *assets],
        first.isoformat(),
        last.isoformat(),
        resources={
            "source": source,
            "io_manager": PartitionedParquetIOManager(base_path=str(storage)),
            "alerts": alerts or AlertsResource(),
        },
        **kwargs,
    )


def _own_metadata(result, asset: str) -> dict[str, dict]:
    """Each partition's own materialization metadata, by partition key."""
    return {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("ingest_applications")
        if m.asset_key.to_user_string() == asset
    }


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")


def test_a_range_of_days_is_one_run_one_file_per_day_and_every_row_accounted(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, LAST)
    simulate_range(warehouse, LAST, LAST, scenario=get_scenario("data_quality", LAST))
    # The injected duplicate ids are rejected rows: the check warns, nothing is blocked.
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage")
    checks = check_results(result)
    assert checks["unique_application_ids"].passed is False
    assert checks["unique_application_ids"].severity == dg.AssetCheckSeverity.WARN
    assert checks["contract_columns_present"].passed and checks["rejected_share_within_limit"].passed

    files = sorted(p.name for p in (tmp_path / "storage" / "applications").iterdir())
    assert files == ["2025-02-01.parquet", "2025-02-02.parquet", "2025-02-03.parquet"]
    valid = result.output_for_node("ingest_applications", "applications")
    rejected = result.output_for_node("ingest_applications", "rejected_applications")
    own = _own_metadata(result, "applications")
    loaded = warehouse.loaded_days(FIRST, LAST).set_index(APPLICATION_DATE)
    for day in ("2025-02-01", "2025-02-02", "2025-02-03"):
        raw = warehouse.read_applications(date.fromisoformat(day))
        assert len(valid[day]) + len(rejected[day]) == len(raw)
        stored = pd.read_parquet(tmp_path / "storage" / "applications" / f"{day}.parquet")
        assert len(stored) == len(valid[day])
        # Each partition carries its own figures and the warehouse watermark it read up to.
        assert own[day]["rows_read"] == len(raw) and own[day]["valid_rows"] == len(valid[day])
        assert own[day]["rejected_rows"] == len(rejected[day]) and own[day]["quarantined"] is False
        watermark = loaded.loc[date.fromisoformat(day), "last_loaded_at"]
        assert pd.Timestamp(own[day]["loaded_through"]) == watermark.tz_localize("UTC")
    assert rejected["2025-02-01"].empty and rejected["2025-02-02"].empty
    # Every injected defect is caught, and nothing else is.
    raw_last = warehouse.read_applications(LAST)
    assert len(rejected["2025-02-03"]) == sum(count_defects(raw_last).values()) > 0
    assert rejected["2025-02-03"][REJECTION_REASON].str.startswith("column '").all()


def test_an_id_already_ingested_on_an_earlier_day_is_rejected_naming_that_day(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, LAST)
    later = warehouse.read_applications(LAST)
    resubmitted = warehouse.read_applications(FIRST)[APPLICATION_ID].iloc[[5, 6]].tolist()
    later.loc[later.index[:2], APPLICATION_ID] = resubmitted
    outcomes = warehouse.read_outcomes(date(2026, 1, 1), first_day=LAST, last_day=LAST)
    warehouse.write_day(LAST, later, outcomes[outcomes[APPLICATION_ID].isin(later[APPLICATION_ID])])
    _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", FIRST, FIRST)

    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", LAST, LAST)
    rejected = result.output_for_node("ingest_applications", "rejected_applications")[LAST.isoformat()]
    assert sorted(rejected[APPLICATION_ID]) == sorted(resubmitted)
    assert rejected[REJECTION_REASON].str.contains("seen on an earlier day").all()
    assert rejected[REJECTION_REASON].str.contains("first on 2025-02-01").all()
    assert check_results(result)["unique_application_ids"].metadata["duplicate_rows"].value == 2


def test_one_broken_day_in_a_backfill_is_quarantined_and_the_others_flow_on(warehouse, tmp_path):
    first, last = date(2025, 3, 1), date(2025, 3, 30)
    broken = date(2025, 3, 17)
    simulate_range(warehouse, first, last)
    cut_short = warehouse.read_applications(broken).head(150)  # an extract cut short: 150 of ~1,200 rows
    outcomes = warehouse.read_outcomes(date(2026, 1, 1), first_day=broken, last_day=broken)
    warehouse.write_day(broken, cut_short, outcomes[outcomes[APPLICATION_ID].isin(cut_short[APPLICATION_ID])])

    @dg.asset(partitions_def=ingestion.daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def downstream(applications: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Stands in for scoring: it runs only if the blocking checks let it."""
        return {day: frame.head(1) for day, frame in applications.items()}

    with serve_webhook() as hook:
        result = _run(
            WarehouseSource(url=warehouse.url), tmp_path / "storage", first, last,
            assets=[downstream], alerts=AlertsResource(webhook_url=hook.url),
        )  # fmt: skip
    assert result.success
    volume = check_results(result)["plausible_daily_volume"]
    assert volume.passed is False and volume.severity == dg.AssetCheckSeverity.WARN
    assert "2025-03-17: plausible_daily_volume: 150 rows, expected" in volume.description
    assert (
        "min_share_of_typical" in volume.description
        and "ops: ingest_applications: config" in volume.description
    )

    valid = result.output_for_node("ingest_applications", "applications")
    rejected = result.output_for_node("ingest_applications", "rejected_applications")
    assert valid["2025-03-17"].empty and len(rejected["2025-03-17"]) == 150
    assert (
        rejected["2025-03-17"][REJECTION_REASON]
        .str.startswith("day quarantined: plausible_daily_volume")
        .all()
    )
    assert sorted(rejected["2025-03-17"]["row_number"]) == sorted(set(rejected["2025-03-17"]["row_number"]))
    good = [d for d in valid if d != "2025-03-17"]
    assert len(good) == 29 and all(len(valid[d]) > 1000 and rejected[d].empty for d in good)
    assert set(result.output_for_node("downstream")) == set(valid)  # every day reached the next step
    own = _own_metadata(result, "applications")
    assert own["2025-03-17"]["quarantined"] is True and own["2025-03-16"]["quarantined"] is False
    stored = pd.read_parquet(tmp_path / "storage" / "applications" / "2025-03-17.parquet")
    assert stored.empty
    assert len(hook.received) == 1 and "2025-03-17" in hook.titles()[0]

    # Training reads the 29 good days and nothing of the quarantined one (outcomes known by June).
    trained = dg.materialize(
        [ingestion.ingest_applications, training_set],
        selection=[training_set],
        partition_key="2025-03-01",
        resources={
            "source": WarehouseSource(url=warehouse.url),
            "io_manager": PartitionedParquetIOManager(base_path=str(tmp_path / "storage")),
            "alerts": AlertsResource(),
        },
        run_config={"ops": {"training_set": {"config": {"label_cutoff": "2025-06-01T00:00:00"}}}},
    )
    rows = trained.output_for_node("training_set", "result")
    days = set(pd.to_datetime(rows[APPLICATION_DATE]).dt.date)
    assert len(days) == 29 and broken not in days
    assert len(rows) == sum(len(valid[d]) for d in good)
    assert not set(rows[APPLICATION_ID]) & set(cut_short[APPLICATION_ID])


class _FrameSource(ApplicationSource):
    """A source that hands over a fixed frame: to present batches no real warehouse would hold."""

    frame_path: str

    def read_applications(self, first_day, last_day):
        return pd.read_pickle(self.frame_path)

    def read_outcomes(self, first_day, last_day, known_before):
        raise NotImplementedError

    def loaded_days(self, first_day, last_day):
        return pd.DataFrame({APPLICATION_DATE: [], "rows": [], "last_loaded_at": []})


def test_a_missing_column_fails_the_blocking_check_and_rejects_every_row(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, FIRST)
    frame = warehouse.read_applications(FIRST).drop(columns=["uk_residence"])
    frame.to_pickle(tmp_path / "frame.pkl")
    result = _run(
        _FrameSource(frame_path=str(tmp_path / "frame.pkl")),
        tmp_path / "storage",
        FIRST,
        FIRST,
        raise_on_error=False,
    )
    assert not result.success
    checks = check_results(result)
    assert checks["contract_columns_present"].passed is False
    assert checks["contract_columns_present"].metadata["missing_columns"].value == ["uk_residence"]
    rejected = result.output_for_node("ingest_applications", "rejected_applications")["2025-02-01"]
    assert len(rejected) == len(frame)

    # Without the identity columns too: every row is still accounted for, as rejected.
    frame.drop(columns=[APPLICATION_ID, APPLICATION_DATE]).to_pickle(tmp_path / "frame.pkl")
    result = _run(
        _FrameSource(frame_path=str(tmp_path / "frame.pkl")),
        tmp_path / "s2",
        FIRST,
        FIRST,
        raise_on_error=False,
    )
    missing = check_results(result)["contract_columns_present"].metadata["missing_columns"].value
    assert set(missing) == {"uk_residence", APPLICATION_ID, APPLICATION_DATE}
    assert len(result.output_for_node("ingest_applications", "rejected_applications")["2025-02-01"]) == len(
        frame
    )


def test_an_empty_day_warns_and_an_implausible_lone_day_blocks_with_its_numbers(warehouse, tmp_path):
    simulate_range(warehouse, FIRST - timedelta(days=7), FIRST)
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", FIRST, LAST)
    assert result.success  # a warning does not block
    volume = check_results(result)["plausible_daily_volume"]
    assert volume.passed is False and volume.severity == dg.AssetCheckSeverity.WARN
    assert volume.metadata["empty_days"].value == ["2025-02-02", "2025-02-03"]

    few = warehouse.read_applications(FIRST).head(40)
    warehouse.write_day(
        FIRST, few, warehouse.read_outcomes(date(2026, 1, 1), application_ids=few[APPLICATION_ID])
    )
    result = _run(WarehouseSource(url=warehouse.url), tmp_path / "s2", FIRST, FIRST, raise_on_error=False)
    assert not result.success  # the run's only day is quarantined: nothing usable, the check blocks
    volume = check_results(result)["plausible_daily_volume"]
    assert volume.passed is False and volume.severity == dg.AssetCheckSeverity.ERROR
    assert volume.metadata["implausible_days"].value == {"2025-02-01": 40}
    assert (
        "40 rows, expected 304..4,856 (a typical day has 1,214 rows: the median of the 7 non-empty days"
        in volume.description
    )


def test_rejected_share_over_the_limit_quarantines_the_day(warehouse, tmp_path):
    simulate_range(warehouse, FIRST, FIRST)
    frame = warehouse.read_applications(FIRST)
    frame.loc[frame.index[:100], "age"] = 5  # about 8% of the day out of range
    frame.to_pickle(tmp_path / "frame.pkl")
    result = _run(
        _FrameSource(frame_path=str(tmp_path / "frame.pkl")),
        tmp_path / "storage",
        FIRST,
        FIRST,
        raise_on_error=False,
    )
    assert not result.success
    share = check_results(result)["rejected_share_within_limit"]
    assert share.passed is False and "2025-02-01" in share.metadata["broken_days"].value
    assert "max_rejected_share 5.0%" in share.description
    rejected = result.output_for_node("ingest_applications", "rejected_applications")["2025-02-01"]
    assert len(rejected) == len(frame)  # the whole day is held, its 100 bad rows with their own reason too
    assert (
        rejected.set_index(APPLICATION_ID)
        .loc[frame[APPLICATION_ID].iloc[0], REJECTION_REASON]
        .startswith("column 'age'")
    )


def test_a_rejected_share_out_of_line_with_history_warns(warehouse, tmp_path):
    """A contract that quietly drops ~2% of applicants: below the 5% limit, far above its usual 0%."""
    first, last = date(2025, 3, 1), date(2025, 3, 29)
    simulate_range(warehouse, first, last)
    instance = dg.DagsterInstance.ephemeral()
    source = WarehouseSource(url=warehouse.url)
    quiet = _run(source, tmp_path / "storage", first, last - timedelta(days=1), instance=instance)
    assert check_results(quiet)["rejected_share_vs_history"].passed

    frame = warehouse.read_applications(last)
    frame.loc[frame.index[:25], "income level"] = 7
    warehouse.write_day(last, frame, warehouse.read_outcomes(date(2026, 1, 1), first_day=last, last_day=last))
    with serve_webhook() as hook:
        result = _run(
            source,
            tmp_path / "storage",
            last,
            last,
            instance=instance,
            alerts=AlertsResource(webhook_url=hook.url),
        )
    check = check_results(result)["rejected_share_vs_history"]
    assert result.success and check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "2025-03-29: rejected_share_vs_history: 25 of" in check.description
    assert hook.titles() == ["Rejected share out of line with history on 1 day(s): 2025-03-29"]


def test_ingestion_config_is_refused_at_launch_naming_the_field(warehouse, tmp_path):
    import claims_platform.definitions  # noqa: F401  (hangs the validators on every asset's config)

    simulate_range(warehouse, FIRST, FIRST)
    bad = {"ops": {"ingest_applications": {"config": {"min_rows": 500, "max_rows": 100}}}}
    with pytest.raises(
        dg.DagsterInvalidConfigError, match=r"min_rows \(500\) must not be above max_rows \(100\)"
    ):
        _run(WarehouseSource(url=warehouse.url), tmp_path / "storage", FIRST, FIRST, run_config=bad)
    assert not (tmp_path / "storage").exists()
