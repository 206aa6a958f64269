"""Monitoring automation: measure each month once its outcomes are known; alert on a drift episode or a
failed performance check, once, and retrain off-cycle once per (month, label cutoff)
(:mod:`claims_platform.monitoring.episodes` has the rules).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from claims_platform.core import settings
from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.instance_records import latest_materializations
from claims_platform.core.partitions import daily_partitions, monthly_partitions
from claims_platform.monitoring.episodes import (
    DriftDay,
    DriftEpisode,
    EpisodeRules,
    RetrainTarget,
    drift_episodes,
    retrain_target,
)
from claims_platform.monitoring.level import DayLevel, LevelRules
from claims_platform.scoring.jobs import nightly_scoring_job

DRIFT = dg.AssetKey("applications_drift")
DECISION = dg.AssetKey("champion_decision")
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
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if start and end:
        return dg.RunRequest(
            run_key=f"drift-report-{run.run_id}",
            tags={
                PARTITION_RANGE_START_TAG: start,
                PARTITION_RANGE_END_TAG: end,
                "claims/after_run": run.run_id,
            },
        )
    if tags.get("dagster/partition"):
        return dg.RunRequest(
            run_key=f"drift-report-{run.run_id}",
            partition_key=tags["dagster/partition"],
            tags={"claims/after_run": run.run_id},
        )
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


def episode_rules() -> EpisodeRules:
    """The episode rules in force: ``CLAIMS_DRIFT_ALERT_DAYS``, ``CLAIMS_DRIFT_QUIET_DAYS`` and
    ``CLAIMS_DRIFT_LEVEL_DAYS`` over the defaults."""
    return EpisodeRules(
        alert_days=settings.drift_alert_days(),
        quiet_days=settings.drift_quiet_days(),
        level=LevelRules(days=settings.drift_level_days()),
    )


def retrain_request(target: RetrainTarget, reasons: list[str]) -> dg.RunRequest:
    """The off-cycle `monthly_training` run of ``target``: one per (month, label cutoff), whatever asked for it."""
    cutoff = target.label_cutoff.isoformat()
    reason = "; ".join(reasons)
    return dg.RunRequest(
        run_key=target.run_key,
        partition_key=target.month,
        run_config={"ops": {"training_set": {"config": {"label_cutoff": cutoff}}}},
        tags={"claims/reason": reason[:200], "claims/off_cycle": "true", "claims/label_cutoff": cutoff},
    )


def drift_days(instance: dg.DagsterInstance) -> dict[str, DriftDay]:
    """day -> drift decision, severity and whether it matters, from the latest `applications_drift` of each
    of the last LOOKBACK_DAYS reported days."""
    reported = sorted(instance.get_materialized_partitions(DRIFT))
    if not reported:
        return {}
    newest = date.fromisoformat(reported[-1])
    window = [d for d in reported if d >= (newest - timedelta(days=LOOKBACK_DAYS)).isoformat()]
    return {
        day: drift_day(latest.metadata)
        for day, latest in latest_materializations(instance, DRIFT, window).items()
    }


def drift_day(metadata: Mapping[str, object]) -> DriftDay:
    """A day's drift decision from its `applications_drift` metadata values (a record written before a
    day's drift was weighed has no ``drift_level``: it is taken to matter)."""
    level = metadata.get("drift_level")
    reasons = str(metadata.get("drift_reasons") or "")
    return DriftDay(
        bool(metadata.get("drifted")),
        metadata.get("drift_severity"),
        None if level is None else level == "retrain",
        tuple(r for r in reasons.split("; ") if r) if level == "retrain" else (),
        day_level(metadata),
    )


def day_level(metadata: Mapping[str, object]) -> DayLevel | None:
    """The day's mean predicted probability and its reference, from its metadata (None: not recorded,
    or a day without a valid application)."""
    keys = (
        "rows",
        "prediction_mean",
        "reference_prediction_mean",
        "reference_prediction_sd",
        "reference_rows",
        "model_version",
    )
    if any(metadata.get(key) is None for key in keys) or not metadata["rows"]:
        return None
    return DayLevel(
        int(metadata["rows"]), float(metadata["prediction_mean"]), float(metadata["reference_prediction_mean"]),
        float(metadata["reference_prediction_sd"]), int(metadata["reference_rows"]), str(metadata["model_version"]),
    )  # fmt: skip


def latest_decided_month(instance: dg.DagsterInstance) -> str | None:
    """The latest month the champion chain has decided (None before the first decision)."""
    decided = instance.get_materialized_partitions(DECISION)
    return max(decided) if decided else None


def _drift_alert(
    episode: DriftEpisode, rules: EpisodeRules, target: RetrainTarget | None, upgrade: bool
) -> Alert:
    """The alert of a drift episode: a warning while its drift is in columns the model barely uses, an error
    with its retrain once the drift can move decisions (``upgrade``: the warning was raised already)."""
    how = {
        "consecutive": f"drifted on {rules.alert_days}+ consecutive days from {episode.start}",
        "level": f"moved the level of the predicted probabilities over the {rules.level.days} days to {episode.alert_day}",
    }.get(
        episode.trigger,
        f"a steady change from {episode.start}: the EWMA of the daily drift severity reached {rules.ewma_alert}",
    )
    fields = {"episode": episode.start, "alert day": episode.alert_day}
    ending = f"The episode goes on until {rules.quiet_days} days in a row are quiet: no other alert for it"
    if target is None:
        return Alert(
            "warning",
            f"Applications drift the model barely uses: an episode from {episode.start}",
            f"The applications {how} (alert on {episode.alert_day}; see the `applications_drift` partitions and their "
            "Evidently reports), in columns that carry little of the model's importance, with neither the predicted "
            f"probabilities nor the estimated kappa moved: no retrain. {ending}, unless it comes to matter.",
            fields=fields,
            dedupe_key=f"claims-drift-{episode.start}",
        )
    why = "; ".join(episode.reasons) or "it can move decisions"
    first = f"it matters from {episode.matters_from}: {why}" if upgrade else why
    return Alert(
        "error",
        f"Applications drift that can move decisions: an episode from {episode.start}",
        f"The applications {how} (alert on {episode.alert_day}; see the `applications_drift` partitions and their "
        f"Evidently reports), and {first}. {ending}. An off-cycle retrain of {target.month[:7]} with outcomes known "
        f"by {target.label_cutoff.isoformat()} was requested.",
        fields={**fields, "matters from": episode.matters_from, "retrain": target.month[:7]},
        dedupe_key=f"claims-drift-retrain-{episode.start}",
    )


def monitoring_requests(
    days: Mapping[str, DriftDay],
    performance: Mapping[str, tuple[dict, float]],
    cursor: Mapping[str, list[str]],
    rules: EpisodeRules,
    today: date,
    latest_decided: str | None = None,
) -> tuple[list[Alert], list[dg.RunRequest], dict[str, list[str]]]:
    """The alerts and off-cycle retrains not yet raised, and the new cursor (pure).

    ``days``: day -> drift decision; ``performance``: month -> (metadata, materialized at) of the latest
    `model_performance`; ``cursor``: {"drift": episode starts alerted, "drift_retrain": episode starts whose
    retrain was asked, "performance": months handled}. One alert per new episode (a warning while its drift
    does not matter, upgraded once with its retrain when it comes to) and per newly failed month; their
    retrains merged by (month, label cutoff).
    """
    handled_drift, handled_performance = set(cursor.get("drift", [])), set(cursor.get("performance", []))
    # A cursor from before drift was weighed asked a retrain for every episode it alerted on.
    handled_retrain = set(cursor.get("drift_retrain", cursor.get("drift", [])))
    wanted: dict[RetrainTarget, list[str]] = {}
    alerts = _drift_alerts(days, rules, today, latest_decided, handled_drift, handled_retrain, wanted)
    alerts += _performance_alerts(performance, today, latest_decided, handled_performance, wanted)
    requests = [
        retrain_request(target, reasons)
        for target, reasons in sorted(wanted.items(), key=lambda kv: kv[0].run_key)
    ]
    new_cursor = {
        "drift": sorted(handled_drift),
        "drift_retrain": sorted(handled_retrain),
        "performance": sorted(handled_performance),
    }
    return alerts, requests, new_cursor


def _drift_alerts(
    days, rules, today, latest_decided, handled_drift: set, handled_retrain: set, wanted: dict
) -> list[Alert]:
    """One alert per new episode, and one upgrade with its retrain when an episode comes to matter
    (``handled_*`` and ``wanted`` are updated)."""
    alerts: list[Alert] = []
    newest = max(days) if days else None
    for episode in drift_episodes(days, rules):
        new = episode.start not in handled_drift
        comes_to_matter = episode.matters_from is not None and episode.start not in handled_retrain
        if not (new or comes_to_matter):
            continue
        if new and episode.awaiting and episode.matters_from is None and episode.alert_day == newest:
            continue  # its first day that matters is today: tomorrow says whether it is an error or a warning
        if (
            newest
            and episode.alert_day
            < (date.fromisoformat(newest) - timedelta(days=ALERT_WINDOW_DAYS)).isoformat()
        ):
            continue  # an old episode found by a backfill of history: not news
        handled_drift.add(episode.start)
        target = None
        if episode.matters_from is not None:
            handled_retrain.add(episode.start)
            target = retrain_target(max(episode.alert_day, episode.matters_from), today, latest_decided)
            wanted.setdefault(target, []).append(f"drift episode from {episode.start}")
        alerts.append(_drift_alert(episode, rules, target, upgrade=not new))
    return alerts


def _performance_alerts(performance, today, latest_decided, handled: set, wanted: dict) -> list[Alert]:
    """One error alert and a retrain per newly failed month (``handled`` and ``wanted`` are updated)."""
    alerts: list[Alert] = []
    for month, (metadata, timestamp) in sorted(performance.items()):
        if metadata.get("passed", True) or month in handled:
            continue
        handled.add(month)
        measured_on = datetime.fromtimestamp(timestamp, UTC).date().isoformat()
        target = retrain_target(measured_on, today, latest_decided)
        wanted.setdefault(target, []).append(f"performance check failed for {month[:7]}")
        alerts.append(
            Alert(
                "error",
                f"Model performance below bounds in {month[:7]}",
                f"The `model_performance` check failed for {month[:7]} (realised kappa {metadata.get('realised_kappa')}, "
                f"holdout kappa {metadata.get('holdout_kappa')}, actual/expected claims {metadata.get('backtest_actual_to_expected')}). "
                f"An off-cycle retrain of {target.month[:7]} with outcomes known by {target.label_cutoff.isoformat()} was requested.",
                fields={"month": month[:7], "retrain": target.month[:7]},
                dedupe_key=f"claims-performance-{month}",
            )
        )
    return alerts


@dg.sensor(
    job_name="monthly_training",
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "A drift episode (CLAIMS_DRIFT_ALERT_DAYS drifted days in a row, default 3, or a steady change) or a failed "
        "`model_performance` check: one alert per episode, and one off-cycle retrain of the latest month once the "
        "drift can move decisions (a warning without retrain while it sits in columns the model barely uses)."
    ),
)
def monitoring_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertsResource):
    """Read the drift decisions' and performance checks' outcomes; raise what is new."""
    rules = episode_rules()
    measured = sorted(context.instance.get_materialized_partitions(MODEL_PERFORMANCE))[-3:]
    latest = latest_materializations(context.instance, MODEL_PERFORMANCE, measured)
    performance = {month: (m.metadata, m.timestamp) for month, m in latest.items()}
    cursor = json.loads(context.cursor) if context.cursor else {}
    raised, requests, new_cursor = monitoring_requests(
        drift_days(context.instance), performance, cursor, rules, datetime.now(UTC).date(),
        latest_decided_month(context.instance),
    )  # fmt: skip
    for alert in raised:
        alerts.send(alert, log=context.log)
    skip = None if raised else "no new drift episode and no new failed performance check"
    return dg.SensorResult(
        run_requests=requests, skip_reason=skip, cursor=json.dumps(new_cursor, sort_keys=True)
    )


def months_due(today: date, label_lag_days: int, scored_months: set[str], measured: set[str]) -> list[str]:
    """Months whose outcomes are all known by ``today``, with scores, not yet measured (pure)."""
    from claims_platform.monitoring.backtest import outcomes_known_from

    due = []
    for month in sorted(scored_months - measured):
        if (
            month in monthly_partitions.get_partition_keys()
            and outcomes_known_from(month, label_lag_days) <= today
        ):
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
