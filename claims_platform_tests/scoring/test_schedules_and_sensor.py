"""Schedules target the right partition at the right time; the late-applications sensor re-scores once per change."""

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from claims_platform.scoring.jobs import (
    CHANGE_TAG,
    MAX_ATTEMPTS,
    DayState,
    late_applications_sensor,
    late_rescore_requests,
    nightly_scoring_schedule,
)
from claims_platform.source.resources import WarehouseSource
from claims_platform.source.simulate import simulate_range
from claims_platform.source.warehouse import Warehouse
from claims_platform.training.jobs import monthly_training_schedule


def _requested_partition(schedule, when: datetime) -> str:
    context = dg.build_schedule_context(scheduled_execution_time=when)
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1
    return requests[0].partition_key


def test_training_runs_at_six_on_day_two_for_the_month_just_ended():
    assert monthly_training_schedule.cron_schedule == "0 6 2 * *"
    assert (
        _requested_partition(monthly_training_schedule, datetime(2026, 12, 2, 6, tzinfo=UTC)) == "2026-11-01"
    )
    assert (
        _requested_partition(monthly_training_schedule, datetime(2026, 1, 2, 6, tzinfo=UTC)) == "2025-12-01"
    )


def test_scoring_runs_every_morning_for_the_day_just_ended():
    assert nightly_scoring_schedule.cron_schedule == "0 7 * * *"
    assert _requested_partition(nightly_scoring_schedule, datetime(2026, 3, 1, 7, tzinfo=UTC)) == "2026-02-28"


def _state(**given) -> DayState:
    base = dict(
        day="2025-02-01",
        warehouse_rows=1200,
        warehouse_watermark="2025-02-02T01:00:00+00:00",
        ingested_rows=1200,
        ingested_watermark="2025-02-02T01:00:00+00:00",
        ingested_at=datetime(2025, 2, 2, 7, tzinfo=UTC).timestamp(),
        scored_at=datetime(2025, 2, 2, 7, 1, tzinfo=UTC).timestamp(),
    )
    return DayState(**{**base, **given})


def test_a_day_is_stale_when_the_warehouse_moved_past_what_was_read_or_the_last_read_was_not_scored():
    assert _state().needs_rescore() is None
    assert (
        _state(scored_at=None).needs_rescore() is None
    )  # never scored: the schedule's job, not the sensor's
    assert "1250 rows" in _state(warehouse_rows=1250).needs_rescore()
    # Loaded during the scoring run, after its read: earlier than the scores' time, later than the read.
    assert "after the read" in _state(warehouse_watermark="2025-02-02T07:00:30+00:00").needs_rescore()
    assert "not scored" in _state(ingested_at=datetime(2025, 2, 3, tzinfo=UTC).timestamp()).needs_rescore()


def test_one_request_per_change_none_while_one_runs_and_a_failed_one_is_retried():
    stale = _state(warehouse_rows=1250, warehouse_watermark="2025-02-03T09:00:00+00:00")
    requests, _ = late_rescore_requests([stale, _state(day="2025-02-02")], set(), {})
    assert [r.partition_key for r in requests] == ["2025-02-01"]
    first_key = requests[0].run_key
    assert requests[0].tags[CHANGE_TAG] == stale.change

    assert late_rescore_requests([stale], {"2025-02-01"}, {})[0] == []  # queued or running: no duplicate
    again, _ = late_rescore_requests([stale], set(), {})
    assert again[0].run_key == first_key  # the same change, the same run key: Dagster launches it once
    retry, _ = late_rescore_requests([stale], set(), {("2025-02-01", stale.change): 1})
    assert retry[0].run_key != first_key and retry[0].tags["claims/attempt"] == "2"
    gave_up, exhausted = late_rescore_requests([stale], set(), {("2025-02-01", stale.change): MAX_ATTEMPTS})
    assert gave_up == [] and exhausted == ["2025-02-01"]


@pytest.fixture
def recent_days(tmp_path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    today = datetime.now(UTC).date()
    days = today - timedelta(days=3), today - timedelta(days=2)
    simulate_range(warehouse, days[0], days[1])
    return warehouse, days


def _ingest(instance, warehouse, day):
    from claims_platform.core.alerts import AlertsResource
    from claims_platform.ingestion.assets import ingest_applications
    from claims_platform.storage import PartitionedParquetIOManager

    return dg.materialize(
        [ingest_applications],
        partition_key=day.isoformat(),
        instance=instance,
        resources={
            "source": WarehouseSource(url=warehouse.url),
            "io_manager": PartitionedParquetIOManager(
                base_path=str(warehouse.url.removeprefix("sqlite:///")) + ".storage"
            ),
            "alerts": AlertsResource(),
        },
    )


def _scored(instance, day):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="application_scores", partition=day.isoformat())
    )


def _rewrite(warehouse, day, loaded_at, extra=0):
    apps = warehouse.read_applications(day)
    outcomes = warehouse.read_outcomes(date(2100, 1, 1), first_day=day, last_day=day)
    if extra:
        apps = apps.iloc[:-extra]
        outcomes = outcomes[outcomes["application_id"].isin(apps["application_id"])]
    warehouse.write_day(day, apps, outcomes, loaded_at=loaded_at)


def _tick(instance, warehouse):
    return late_applications_sensor(
        dg.build_sensor_context(instance=instance), source=WarehouseSource(url=warehouse.url)
    )


def test_rows_loaded_during_a_scoring_run_are_rescored_and_a_failed_rescore_is_retried(recent_days):
    warehouse, (day, unscored_day) = recent_days
    instance = dg.DagsterInstance.ephemeral()
    _ingest(instance, warehouse, day)
    # Rows land after the run read the warehouse but before its scores are recorded: the old sensor,
    # comparing load times with the scores' time, never re-scored them.
    _rewrite(warehouse, day, datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1))
    time.sleep(1.5)
    _scored(instance, day)
    _rewrite(
        warehouse, unscored_day, datetime.now(UTC).replace(tzinfo=None)
    )  # never scored: not the sensor's

    tick = _tick(instance, warehouse)
    assert [r.partition_key for r in tick.run_requests] == [day.isoformat()]
    request = tick.run_requests[0]

    # While the re-score runs, no second request.
    running = dg.DagsterRun(
        job_name="nightly_scoring",
        run_id="r1",
        status=dg.DagsterRunStatus.STARTED,
        tags=request.tags | {"dagster/partition": day.isoformat()},
    )
    instance.add_run(running)
    assert _tick(instance, warehouse).run_requests == []

    # It fails (say after ingesting): the next tick asks again, under a new run key.
    instance.delete_run("r1")
    instance.add_run(running.with_status(dg.DagsterRunStatus.FAILURE))
    retry = _tick(instance, warehouse).run_requests
    assert [r.partition_key for r in retry] == [day.isoformat()] and retry[0].run_key != request.run_key

    # A successful re-score (ingested, then scored) settles the day.
    _ingest(instance, warehouse, day)
    _scored(instance, day)
    assert _tick(instance, warehouse).run_requests == []

    # Rows deleted at the source change the count: re-scored too.
    _rewrite(warehouse, day, datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1), extra=3)
    assert [r.partition_key for r in _tick(instance, warehouse).run_requests] == [day.isoformat()]
