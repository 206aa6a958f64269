"""The nightly scoring job, its schedule, and the late-applications sensor."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from claims_platform.core.partitions import daily_partitions
from claims_platform.core.settings import DAILY_LANE, LANE_TAG, nightly_scoring_time
from claims_platform.source.resources import ApplicationSource

PARTITION_TAG = "dagster/partition"

nightly_scoring_job = dg.define_asset_job(
    "nightly_scoring",
    selection=dg.AssetSelection.assets(
        "applications",
        "rejected_applications",
        "application_scores",
        "reserve_forecast",
        "applications_drift",
    ),
    partitions_def=daily_partitions,
    tags={LANE_TAG: DAILY_LANE},
    description=(
        "Ingest the day's applications, score them with the model in force, forecast the reserve, and decide "
        "whether the day drifted from the model's reference sample (its Evidently report follows in `drift_reports`)."
    ),
)

# 07:00 UTC (CLAIMS_NIGHTLY_SCORING_TIME) for the day just ended. Not earlier than 06:00: the model that
# scores the first day of a month is decided by the monthly training at 06:00 on day 2, and that day is
# scored on day 2 too.
_HOUR, _MINUTE = nightly_scoring_time()
nightly_scoring_schedule = dg.build_schedule_from_partitioned_job(
    nightly_scoring_job,
    name="nightly_scoring_schedule",
    hour_of_day=_HOUR,
    minute_of_hour=_MINUTE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

LOOKBACK_DAYS = 60  # late applications older than this are left to a deliberate backfill
MAX_ATTEMPTS = 3  # re-scores of one change; each failure has raised a run-failure alert already
CHANGE_TAG = "claims/late_change"
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
_FAILED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class DayState:
    """What the warehouse holds for a day, and what the platform last ingested and scored of it."""

    day: str
    warehouse_rows: int
    warehouse_watermark: str  # latest loaded_at in the warehouse (ISO, UTC)
    ingested_rows: int | None  # rows the latest `applications` read; None: never ingested
    ingested_watermark: str | None  # latest loaded_at among them (`loaded_through`)
    ingested_at: float | None  # when `applications` was last materialized
    scored_at: float | None  # when `application_scores` was last materialized

    @property
    def change(self) -> str:
        """The warehouse state a re-score is for: one run key (per attempt) per change."""
        return f"{self.warehouse_watermark}|{self.warehouse_rows}"

    def needs_ingestion(self) -> str | None:
        """Why the day's `applications` partition does not hold what the warehouse holds, or None."""
        if self.ingested_rows is None:
            return "never ingested"
        if self.warehouse_rows != self.ingested_rows:
            return f"the warehouse holds {self.warehouse_rows} rows, {self.ingested_rows} were read"
        if self.ingested_watermark and pd.Timestamp(self.warehouse_watermark) > pd.Timestamp(
            self.ingested_watermark
        ):
            return (
                f"rows loaded at {self.warehouse_watermark}, after the read up to {self.ingested_watermark}"
            )
        return None

    def needs_rescore(self) -> str | None:
        """Why the day's scores are stale, or None. Days never scored are the schedule's, not this sensor's."""
        if self.scored_at is None or self.ingested_rows is None:
            return None
        changed = self.needs_ingestion()
        if changed is not None:
            return changed
        if self.ingested_at is not None and self.ingested_at > self.scored_at:
            return "the last re-ingestion was not scored (its run failed after ingesting)"
        return None


def late_rescore_requests(
    states: list[DayState], in_flight: set[str], failed_attempts: dict[tuple[str, str], int]
) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests for days whose scores are stale (pure), and the days given up on.

    ``in_flight``: days with a `nightly_scoring` run queued or running (no duplicate while one is);
    ``failed_attempts``: (day, change) -> failed re-score runs of that change. A failed re-score is
    requested again under the next attempt's run key, up to ``MAX_ATTEMPTS``.
    """
    requests, exhausted = [], []
    for state in states:
        reason = state.needs_rescore()
        if reason is None or state.day in in_flight:
            continue
        attempt = failed_attempts.get((state.day, state.change), 0) + 1
        if attempt > MAX_ATTEMPTS:
            exhausted.append(state.day)
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"late-{state.day}-{state.change}-{attempt}",
                partition_key=state.day,
                tags={
                    "claims/reason": f"late applications: {reason}"[:200],
                    CHANGE_TAG: state.change,
                    "claims/attempt": str(attempt),
                },
            )
        )
    return requests, exhausted


def day_states(instance: dg.DagsterInstance, loaded: pd.DataFrame) -> list[DayState]:
    """Each day of ``loaded`` (:meth:`ApplicationSource.loaded_days`) beside what the platform last read and scored of it."""
    from claims_platform.core.instance_records import latest_materializations
    from claims_platform.ingestion.assets import LOADED_THROUGH, ROWS_READ

    days = [d.isoformat() for d in loaded["application_date"]]
    ingested = latest_materializations(instance, dg.AssetKey("applications"), days)
    scored = latest_materializations(instance, dg.AssetKey("application_scores"), days)
    states = []
    for day, rows, last_loaded in zip(days, loaded["rows"], loaded["last_loaded_at"], strict=True):
        applications = ingested.get(day)
        meta = applications.metadata if applications else {}
        if applications and ROWS_READ not in meta:
            # Ingested before partitions recorded what they read: judge by when it was ingested.
            meta = {
                ROWS_READ: rows,
                LOADED_THROUGH: datetime.fromtimestamp(applications.timestamp, UTC).isoformat(),
            }
        states.append(
            DayState(
                day=day,
                warehouse_rows=int(rows),
                warehouse_watermark=pd.Timestamp(last_loaded).tz_localize(UTC).isoformat(),
                ingested_rows=int(meta[ROWS_READ]) if ROWS_READ in meta else None,
                ingested_watermark=meta.get(LOADED_THROUGH) or None,
                ingested_at=applications.timestamp if applications else None,
                scored_at=scored[day].timestamp if day in scored else None,
            )
        )
    return states


def _runs(
    instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus], tags: dict | None = None
) -> list:
    return instance.get_runs(
        filters=dg.RunsFilter(job_name=nightly_scoring_job.name, statuses=statuses, tags=tags or {}),
        limit=500,
    )


def _days_of_run(tags: dict[str, str]) -> set[str]:
    """The days a run covers: its partition, or every day of a single-run backfill's range."""
    if tags.get(PARTITION_TAG):
        return {tags[PARTITION_TAG]}
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if not (start and end):
        return set()
    return set(daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))


@dg.sensor(
    job=nightly_scoring_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Re-score a scored day when the warehouse changed after the platform read it (late or re-loaded rows), "
        "or when the last re-score failed after ingesting; once per change, retried up to 3 times."
    ),
)
def late_applications_sensor(context: dg.SensorEvaluationContext, source: ApplicationSource):
    """Compare each day's warehouse rows and load watermark with what `applications` last read."""
    today = datetime.now(UTC).date()
    first = max(today - timedelta(days=LOOKBACK_DAYS), daily_partitions.start.date())
    states = day_states(context.instance, source.loaded_days(first, today))
    in_flight = {day for run in _runs(context.instance, _IN_FLIGHT) for day in _days_of_run(run.tags)}
    stale = [s for s in states if s.needs_rescore() and s.day not in in_flight]
    failed: dict[tuple[str, str], int] = {}
    for state in stale:
        runs = _runs(context.instance, _FAILED, {PARTITION_TAG: state.day, CHANGE_TAG: state.change})
        failed[(state.day, state.change)] = len(runs)
    requests, exhausted = late_rescore_requests(stale, in_flight, failed)
    if exhausted:
        context.log.warning(
            f"Gave up re-scoring {', '.join(exhausted)} after {MAX_ATTEMPTS} failed runs each."
        )
    skip = (
        None if requests else f"every scored day of the last {LOOKBACK_DAYS} is up to date with the warehouse"
    )
    return dg.SensorResult(run_requests=requests, skip_reason=skip)
