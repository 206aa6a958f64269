"""Schedules target the right partition at the right time; the late-applications sensor re-scores once per change."""

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from claims_platform.resources import WarehouseSource
from claims_platform.scoring.jobs import (
    late_applications_sensor,
    late_rescore_requests,
    nightly_scoring_schedule,
)
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
    assert _requested_partition(monthly_training_schedule, datetime(2026, 12, 2, 6, tzinfo=UTC)) == "2026-11-01"
    assert _requested_partition(monthly_training_schedule, datetime(2026, 1, 2, 6, tzinfo=UTC)) == "2025-12-01"


def test_scoring_runs_every_morning_for_the_day_just_ended():
    assert nightly_scoring_schedule.cron_schedule == "0 7 * * *"
    assert _requested_partition(nightly_scoring_schedule, datetime(2026, 3, 1, 7, tzinfo=UTC)) == "2026-02-28"


def test_one_request_per_change_and_none_for_unscored_days():
    day1, day2 = date(2025, 2, 1), date(2025, 2, 2)
    scored_at = {"2025-02-01": datetime(2025, 2, 2, 7, tzinfo=UTC).timestamp()}
    before, after = datetime(2025, 2, 2, 1), datetime(2025, 2, 3, 9)
    loaded = [(day1, 1200, before), (day2, 1200, after)]
    requests, cursor = late_rescore_requests(loaded, scored_at, {})
    assert requests == [] and cursor == {}  # day 1 unchanged since scoring; day 2 never scored

    loaded = [(day1, 1250, after), (day2, 1200, after)]
    requests, cursor = late_rescore_requests(loaded, scored_at, {})
    assert [r.partition_key for r in requests] == ["2025-02-01"]
    again, cursor_again = late_rescore_requests(loaded, scored_at, cursor)
    assert again == [] and cursor_again == cursor  # the same change is requested once

    later = [(day1, 1300, after + timedelta(hours=2))]
    requests, _ = late_rescore_requests(later, scored_at, cursor)
    assert len(requests) == 1 and requests[0].run_key != f"late-2025-02-01-{cursor['2025-02-01']}"


@pytest.fixture
def recent_days(tmp_path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    today = datetime.now(UTC).date()
    days = today - timedelta(days=3), today - timedelta(days=2)
    simulate_range(warehouse, days[0], days[1])
    return warehouse, days


def test_the_sensor_reads_the_warehouse_and_dagsters_materializations(recent_days):
    warehouse, (scored_day, unscored_day) = recent_days
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="application_scores", partition=scored_day.isoformat())
    )
    source = WarehouseSource(url=warehouse.url)

    result = late_applications_sensor(dg.build_sensor_context(instance=instance), source=source)
    assert result.run_requests == [] and result.skip_reason  # loaded before it was scored

    # Late applications for the scored day and for the unscored one.
    apps = warehouse.read_applications(scored_day)
    late_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    for day in (scored_day, unscored_day):
        warehouse.write_day(day, warehouse.read_applications(day), warehouse.read_outcomes(
            date(2100, 1, 1), first_day=day, last_day=day), loaded_at=late_at)
    result = late_applications_sensor(dg.build_sensor_context(instance=instance), source=source)
    assert [r.partition_key for r in result.run_requests] == [scored_day.isoformat()]
    assert len(apps) > 0
    assert scored_day.isoformat() in json.loads(result.cursor)
    repeat = late_applications_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor), source=source)
    assert repeat.run_requests == [] and repeat.skip_reason
