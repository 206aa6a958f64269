"""Monitoring automation: measure each month once its outcomes are known; alert and retrain off-cycle on
persistent drift or a failed performance check, once per episode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from claims_platform import settings
from claims_platform.alerts.resource import Alert, AlertsResource
from claims_platform.instance_records import latest_materializations
from claims_platform.months import add_months
from claims_platform.partitions import daily_partitions, monthly_partitions
from claims_platform.scoring.jobs import nightly_scoring_job

DRIFT = dg.AssetKey("applications_drift")
MODEL_PERFORMANCE = dg.AssetKey("model_performance")
SCORES = dg.AssetKey("application_scores")
# Drift days read per tick, back from the newest report; episodes whose alert day is older than
# ALERT_WINDOW_DAYS before the newest report are history (a backfill of old days), not news.
LOOKBACK_DAYS = 60
ALERT_WINDOW_DAYS = 14

model_performance_job = dg.define_asset_job(
    "measure_model_performance",
    selection=dg.AssetSelection.assets(MODEL_PERFORMANCE),
    partitions_def=monthly_partitions,
    tags={settings.LANE_TAG: settings.MONITORING_LANE},
    description="Measure a month's realised performance and backtest its reserve once its outcomes are known.",
)


drift_reports_job = dg.define_asset_job(
    "drift_reports",
    selection=dg.AssetSelection.assets("applications_drift_report"),
    partitions_def=daily_partitions,
    tags={settings.LANE_TAG: settings.MONITORING_LANE},
    description="Evidently's drift reports (HTML, JSON snapshot, workspace) of days whose drift was decided.",
)


def report_request(run: dg.DagsterRun) -> dg.RunRequest | None:
    """The `drift_reports` run for the days a successful `nightly_scoring` run decided (None if it had none)."""
    tags = run.tags
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return dg.RunRequest(
            run_key=f"drift-report-{run.run_id}",
            tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end, "claims/after_run": run.run_id},
        )
    if tags.get("dagster/partition"):
        return dg.RunRequest(run_key=f"drift-report-{run.run_id}", partition_key=tags["dagster/partition"], tags={"claims/after_run": run.run_id})
    return None


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[nightly_scoring_job],
    request_job=drift_reports_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful `nightly_scoring` run, Evidently's drift reports of the same days (one run).",
)
def drift_report_sensor(context: dg.RunStatusSensorContext):
    """One `drift_reports` run per successful nightly run (the run key is the nightly run's id)."""
    request = report_request(context.dagster_run)
    return request if request is not None else dg.SkipReason("the run had no daily partition")


@dataclass(frozen=True)
class DriftEpisode:
    """A run of consecutive drifted days; it alerts on its ``k``-th day."""

    start: str
    alert_day: str
    days: tuple[str, ...]


def drift_episodes(flags: Mapping[str, bool], k: int) -> list[DriftEpisode]:
    """Maximal runs of consecutive drifted calendar days that reach ``k`` days (pure).

    A day missing from ``flags`` (not reported) or not drifted ends a run; a run that ends and
    starts again is a new episode.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    episodes, run = [], []
    for day in sorted(flags):
        if flags[day] and run and date.fromisoformat(day) - date.fromisoformat(run[-1]) == timedelta(days=1):
            run.append(day)
        elif flags[day]:
            run = [day]
        else:
            run = []
        if len(run) == k:
            episodes.append(DriftEpisode(run[0], day, tuple(run)))
    # Fill each episode's days to its end (for the alert's text).
    out = []
    for episode in episodes:
        days, cursor = list(episode.days), date.fromisoformat(episode.days[-1])
        while flags.get((cursor := cursor + timedelta(days=1)).isoformat()):
            days.append(cursor.isoformat())
        out.append(DriftEpisode(episode.start, episode.alert_day, tuple(days)))
    return out


def retrain_request(alert_day: str, run_key: str, reason: str) -> dg.RunRequest:
    """An off-cycle `monthly_training` run of the latest month complete on ``alert_day``, with labels
    known by the end of that day (``label_cutoff``)."""
    day = date.fromisoformat(alert_day)
    partition = add_months(day.replace(day=1), -1).isoformat()
    cutoff = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC).isoformat()
    return dg.RunRequest(
        run_key=run_key,
        partition_key=partition,
        run_config={"ops": {"training_set": {"config": {"label_cutoff": cutoff}}}},
        tags={"claims/reason": reason[:200], "claims/off_cycle": "true", "claims/label_cutoff": cutoff},
    )


def drift_flags(instance: dg.DagsterInstance) -> dict[str, bool]:
    """day -> drifted, from the latest drift report of each of the last LOOKBACK_DAYS reported days."""
    reported = sorted(instance.get_materialized_partitions(DRIFT))
    if not reported:
        return {}
    newest = date.fromisoformat(reported[-1])
    window = [d for d in reported if d >= (newest - timedelta(days=LOOKBACK_DAYS)).isoformat()]
    return {day: bool(latest.metadata.get("drifted")) for day, latest in latest_materializations(instance, DRIFT, window).items()}


def monitoring_requests(
    flags: Mapping[str, bool],
    performance: Mapping[str, tuple[dict, float]],
    cursor: Mapping[str, list[str]],
    k: int,
) -> tuple[list[tuple[Alert, dg.RunRequest]], dict[str, list[str]]]:
    """The alerts and off-cycle retrains not yet raised, and the new cursor (pure).

    ``flags``: day -> drifted; ``performance``: month -> (metadata, materialized at) of the latest
    `model_performance`; ``cursor``: {"drift": episode starts handled, "performance": months handled}.
    """
    handled_drift, handled_performance = set(cursor.get("drift", [])), set(cursor.get("performance", []))
    out = []
    newest = max(flags) if flags else None
    for episode in drift_episodes(flags, k):
        if episode.start in handled_drift:
            continue
        if newest and episode.alert_day < (date.fromisoformat(newest) - timedelta(days=ALERT_WINDOW_DAYS)).isoformat():
            continue  # an old episode found by a backfill of history: not news
        handled_drift.add(episode.start)
        reason = f"drift on {len(episode.days)} consecutive day(s) from {episode.start}"
        request = retrain_request(episode.alert_day, f"drift-episode-{episode.start}", reason)
        alert = Alert(
            "warning",
            f"Applications drift: {k}+ consecutive days from {episode.start}",
            f"The applications, the predicted probabilities or the share of rejected rows drifted on every day from {episode.start} to "
            f"{episode.days[-1]} (pinned tests; see the `applications_drift` partitions and their Evidently reports). An off-cycle "
            f"retrain of {request.partition_key[:7]} with outcomes known by {request.tags['claims/label_cutoff']} was requested.",
            fields={"episode": episode.start, "alert day": episode.alert_day, "retrain": request.partition_key[:7]},
            dedupe_key=f"claims-drift-{episode.start}",
        )
        out.append((alert, request))
    for month, (metadata, timestamp) in sorted(performance.items()):
        if metadata.get("passed", True) or month in handled_performance:
            continue
        handled_performance.add(month)
        measured_on = datetime.fromtimestamp(timestamp, UTC).date().isoformat()
        reason = f"performance check failed for {month[:7]}"
        request = retrain_request(measured_on, f"performance-{month}", reason)
        alert = Alert(
            "error",
            f"Model performance below bounds in {month[:7]}",
            f"The `model_performance` check failed for {month[:7]} (realised kappa {metadata.get('realised_kappa')}, "
            f"holdout kappa {metadata.get('holdout_kappa')}, actual/expected claims {metadata.get('backtest_actual_to_expected')}). "
            f"An off-cycle retrain of {request.partition_key[:7]} was requested.",
            fields={"month": month[:7], "retrain": request.partition_key[:7]},
            dedupe_key=f"claims-performance-{month}",
        )
        out.append((alert, request))
    new_cursor = {"drift": sorted(handled_drift), "performance": sorted(handled_performance)}
    return out, new_cursor


@dg.sensor(
    job_name="monthly_training",
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Drift on K consecutive days (CLAIMS_DRIFT_ALERT_DAYS, default 3) or a failed `model_performance` check: "
        "one alert and one off-cycle retrain of the latest month per episode."
    ),
)
def monitoring_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertsResource):
    """Read the drift reports' and performance checks' outcomes; raise what is new."""
    k = settings.drift_alert_days()
    flags = drift_flags(context.instance)
    measured = sorted(context.instance.get_materialized_partitions(MODEL_PERFORMANCE))[-3:]
    latest = latest_materializations(context.instance, MODEL_PERFORMANCE, measured)
    performance = {month: (m.metadata, m.timestamp) for month, m in latest.items()}
    cursor = json.loads(context.cursor) if context.cursor else {}
    raised, new_cursor = monitoring_requests(flags, performance, cursor, k)
    for alert, _ in raised:
        alerts.send(alert, log=context.log)
    skip = None if raised else f"no new drift episode ({k}+ days) and no new failed performance check"
    return dg.SensorResult(
        run_requests=[request for _, request in raised], skip_reason=skip, cursor=json.dumps(new_cursor, sort_keys=True)
    )


def months_due(today: date, label_lag_days: int, scored_months: set[str], measured: set[str]) -> list[str]:
    """Months whose outcomes are all known by ``today``, with scores, not yet measured (pure)."""
    from claims_platform.monitoring.backtest import outcomes_known_from

    due = []
    for month in sorted(scored_months - measured):
        if month in monthly_partitions.get_partition_keys() and outcomes_known_from(month, label_lag_days) <= today:
            due.append(month)
    return due


@dg.sensor(
    job=model_performance_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materialize `model_performance` for each scored month once all its outcomes are known.",
)
def model_performance_sensor(context: dg.SensorEvaluationContext):
    """One run per month, once: the run key is the month."""
    scored_days = context.instance.get_materialized_partitions(SCORES)
    scored_months = {f"{d[:7]}-01" for d in scored_days}
    measured = set(context.instance.get_materialized_partitions(MODEL_PERFORMANCE))
    due = months_due(datetime.now(UTC).date(), settings.LABEL_LAG_DAYS, scored_months, measured)
    if not due:
        return dg.SkipReason("no scored month has all its outcomes known and unmeasured")
    return [dg.RunRequest(run_key=f"performance-{month}", partition_key=month) for month in due]
