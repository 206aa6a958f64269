"""The nightly scoring job, its schedule, and the late-applications sensor."""

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from claims_platform.partitions import daily_partitions
from claims_platform.resources import ApplicationSource

nightly_scoring_job = dg.define_asset_job(
    "nightly_scoring",
    selection=dg.AssetSelection.assets(
        "applications", "rejected_applications", "application_scores", "reserve_forecast", "applications_drift"
    ),
    partitions_def=daily_partitions,
    description=(
        "Ingest the day's applications, score them with the model in force, forecast the reserve, and decide "
        "whether the day drifted from the model's reference sample (its Evidently report follows in `drift_reports`)."
    ),
)

# 07:00 UTC for the day just ended. Not earlier: the model that scores the first day of a month is
# decided by the monthly training at 06:00 on day 2, and that day is scored on day 2 too.
nightly_scoring_schedule = dg.build_schedule_from_partitioned_job(
    nightly_scoring_job, name="nightly_scoring_schedule", hour_of_day=7, default_status=dg.DefaultScheduleStatus.RUNNING
)

LOOKBACK_DAYS = 60  # late applications older than this are left to a deliberate backfill


def _scored_at(instance: dg.DagsterInstance, day: str) -> float | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("application_scores"), asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


def late_rescore_requests(
    loaded: list[tuple[date, int, datetime]], scored_at: dict[str, float], handled: dict[str, str]
) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """Run requests for scored days whose applications changed after they were scored (pure).

    ``loaded``: (day, rows, last_loaded_at UTC) from the warehouse; ``scored_at``: the day's last
    scoring time (epoch seconds) for scored days only; ``handled``: day -> the load watermark already
    requested (the cursor). One request per change: the run key is the day and its load watermark.
    """
    requests, cursor = [], dict(handled)
    for day, rows, last_loaded in loaded:
        key = day.isoformat()
        if key not in scored_at:
            continue  # never scored: the nightly schedule or a backfill will, not this sensor
        watermark = last_loaded.replace(tzinfo=UTC).isoformat()
        if last_loaded.replace(tzinfo=UTC).timestamp() <= scored_at[key] or handled.get(key) == watermark:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"late-{key}-{watermark}",
                partition_key=key,
                tags={"claims/reason": "late applications", "claims/rows_in_warehouse": str(rows)},
            )
        )
        cursor[key] = watermark
    return requests, cursor


@dg.sensor(
    job=nightly_scoring_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-score a day already scored when applications for it arrive late in the warehouse.",
)
def late_applications_sensor(context: dg.SensorEvaluationContext, source: ApplicationSource):
    """Compare the warehouse's load times with the scores' materialization times, day by day."""
    today = datetime.now(UTC).date()
    first = max(today - timedelta(days=LOOKBACK_DAYS), date.fromisoformat(daily_partitions.start.date().isoformat()))
    frame = source.loaded_days(first, today)
    loaded = [(d, int(r), t.to_pydatetime()) for d, r, t in frame[["application_date", "rows", "last_loaded_at"]].itertuples(index=False)]
    scored = {d.isoformat(): ts for d, _, _ in loaded if (ts := _scored_at(context.instance, d.isoformat())) is not None}
    handled = json.loads(context.cursor) if context.cursor else {}
    requests, cursor = late_rescore_requests(loaded, scored, handled)
    # Keep the cursor small: forget days that left the look-back window.
    cursor = {d: w for d, w in cursor.items() if d >= first.isoformat()}
    skip = None if requests else f"no scored day received applications after it was scored (last {LOOKBACK_DAYS} days)"
    return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=json.dumps(cursor, sort_keys=True))
