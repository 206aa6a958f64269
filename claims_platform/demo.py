"""`claims-platform demo`: the platform's main job on embedded defaults, end to end.

Simulates the last months into the warehouse (applicants' incomes rise in the last ``DRIFT_DAYS``
days: the ``income_shift`` scenario), ingests them through Dagster as ONE backfill run, trains and
decides a champion for every month that has enough labelled history, scores the days with the model
in force each month and reports their drift (one backfill run), lets the monitoring sensor raise
its alert and the off-cycle retrain it asks for, and prints what it did. Everything goes into the
same Dagster instance (`DAGSTER_HOME`) that `make dev` shows.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

from claims_platform import settings


@dataclass(frozen=True)
class DemoWindow:
    """The days the demo simulates and processes."""

    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def demo_window(today: date, months: int) -> DemoWindow:
    """From the first day of the month ``months`` months before today's month, to yesterday."""
    from claims_platform.months import add_months

    first = add_months(today.replace(day=1), -months)
    return DemoWindow(max(first, settings.FIRST_DAY), today - timedelta(days=1))


_STARTED = time.perf_counter()


def _log(message: str) -> None:
    """A progress line with the seconds since the demo started."""
    print(f"{time.perf_counter() - _STARTED:5.0f}s  {message}", file=sys.stderr, flush=True)


def _instance():
    from dagster import DagsterInstance

    # The demo and `make dev` must share one instance: the repo's dagster.yaml, like the Makefile.
    os.environ.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT))
    return DagsterInstance.get()


# A smaller tuning budget than the monthly schedule's, so the demo trains several months quickly:
# a NUMBER of real trials (never seconds), so the demo's models do not depend on the machine's load.
DEMO_TRAINING = {"n_trials": 6, "warm_start_trials": 3, "tuning_rows": 30_000}
# The drift scenario of the demo: incomes 35% higher in the window's last days.
DRIFT_SCENARIO = "income_shift"
DRIFT_DAYS = 10


def decision_months(window: DemoWindow) -> list[str]:
    """Every month of the window up to last month: the champion chain starts at the first one.

    The first two cannot train yet (an out-of-time split needs two labelled months): their
    decisions say "no model", as the platform's own first months would.
    """
    from claims_platform.months import add_months

    first = window.first_day.replace(day=1)
    last = add_months(window.last_day.replace(day=1), -1)
    months = []
    while first <= last:
        months.append(first.isoformat())
        first = add_months(first, 1)
    return months


def _execute(job_name: str, instance, *, partition_key: str | None = None, first: str | None = None, last: str | None = None, run_config=None, asset_selection=None, tags=None):
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from claims_platform.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def() if job_name == "__ASSET_JOB" else defs.resolve_job_def(job_name)
    tags = {"source": "demo", **(tags or {})}
    if first is not None:
        tags.update({ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last})
    # The console logger would print every one of the hundreds of per-partition events.
    config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}, **(run_config or {})}
    return job.execute_in_process(
        instance=instance, tags=tags, partition_key=partition_key, run_config=config, asset_selection=asset_selection
    )


def _short(decision: dict) -> str:
    champion = decision["champion"]
    return f"{decision['outcome']}" + (f" (v{champion['version']})" if champion else "")


def _holdout_line(model: dict, decision: dict) -> list[str]:
    if model.get("status") != "trained":
        return [f"  candidate     {model.get('failure')}"]
    metrics, policy = model["holdout_metrics"], decision["policy"]
    return [
        f"  holdout {model['holdout_month']}: kappa {metrics['kappa']:.3f} (screen p >= {policy['refer_at']}), "
        f"AUC {metrics['roc_auc']:.3f}, Brier {metrics['brier']:.4f}, ECE {metrics['ece']:.4f}"
    ]


def main(months: int = 6, today: date | None = None, seed: int = settings.DEFAULT_WORLD_SEED) -> int:
    """Run the demo; returns a process exit code."""
    import warnings

    from dagster import AssetKey, BetaWarning, PreviewWarning

    # The demo prints a summary for a person; library chatter would bury it (it stays in run logs).
    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from claims_platform.months import add_months
    from claims_platform.source.scenarios import get_scenario
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    window = demo_window(today or date.today(), months)
    started = time.perf_counter()
    settings.local_home().mkdir(parents=True, exist_ok=True)
    warehouse = Warehouse(settings.default_warehouse_url())
    drift_from = window.last_day - timedelta(days=DRIFT_DAYS - 1)
    _log(
        f"[1/5] simulating {window.days} days {window.first_day}..{window.last_day} into {warehouse.url} "
        f"({DRIFT_SCENARIO} from {drift_from})"
    )
    simulated = simulate_range(
        warehouse, window.first_day, window.last_day, seed=seed, scenario=get_scenario(DRIFT_SCENARIO, drift_from)
    )

    instance = _instance()
    first, last = window.first_day.isoformat(), window.last_day.isoformat()
    _log("[2/5] ingesting the days through Dagster as one backfill run")
    ingest = _execute("daily_ingestion", instance, first=first, last=last)
    valid = sum(len(v) for v in ingest.output_for_node("ingest_applications", "applications").values())
    rejected = sum(len(v) for v in ingest.output_for_node("ingest_applications", "rejected_applications").values())

    months_to_decide = decision_months(window)
    if len(months_to_decide) < 3:
        raise SystemExit(f"{months} months are too few to train on: use at least 4 (two labelled months + one to score)")
    decisions = []
    for i, month in enumerate(months_to_decide, start=1):
        _log(f"[3/5] training and deciding the champion for {month[:7]} ({i}/{len(months_to_decide)})")
        result = _execute(
            "monthly_training", instance, partition_key=month, run_config={"ops": {"candidate_model": {"config": DEMO_TRAINING}}}
        )
        decisions.append((result.output_for_node("candidate_model"), result.output_for_node("champion_decision")))

    # The first month with a model in force is the one after the first month with a champion.
    first_champion = next((c["training_month"] for _, c in decisions if c["champion"]), None)
    if first_champion is None:
        raise SystemExit("no month produced an eligible model: see the champion decisions in the Dagster UI")
    scoring_first = add_months(date.fromisoformat(f"{first_champion}-01"), 1)
    _log(f"[4/5] scoring and drift-reporting {scoring_first}..{last} with the model in force each month, as one backfill run")
    _execute(
        "__ASSET_JOB",
        instance,
        first=scoring_first.isoformat(),
        last=window.last_day.replace(day=1).isoformat(),
        asset_selection=[AssetKey("model_in_force")],
    )
    scoring = _execute("nightly_scoring", instance, first=scoring_first.isoformat(), last=last)
    forecast = scoring.output_for_node("reserve_forecast")[last].iloc[0]
    drift = scoring.output_for_node("applications_drift")
    _log("[5/5] monitoring: Evidently's drift reports, the months whose outcomes are known, the drift alert and its retrain")
    # What `drift_report_sensor` requests after a successful nightly run: the same days' reports.
    _execute("drift_reports", instance, first=scoring_first.isoformat(), last=last)
    performance = _performance_tick(instance)
    raised, retrains = _monitoring_tick(instance)

    model, decision = decisions[-1]
    champion = decision["champion"]
    elapsed = time.perf_counter() - started
    lines = [
        "",
        f"claims_platform demo — done in {elapsed:.0f} s",
        f"  warehouse     {warehouse.url}",
        f"  simulated     {window.days} days, {simulated:,} applications",
        f"  ingested      {valid:,} valid, {rejected:,} rejected ({first}..{last}, one run)",
        "  decisions     " + ", ".join(f"{c['training_month']}: {_short(c)}" for _, c in decisions),
        f"  champion      {decision['model_name']} v{champion['version']} scores {decision['scores_month']}"
        f" — {decision['reason']}",
        *_holdout_line(model, decision),
        f"  yesterday     {last}: {forecast['accept_count']} accepted, {forecast['refer_count']} referred, "
        f"{forecast['decline_count']} declined",
        f"  reserve       expected claims among accepted {forecast['accepted_expected_claims']:.1f} "
        f"(95% {forecast['accepted_claims_low']}–{forecast['accepted_claims_high']}) → "
        f"{forecast['accepted_reserve']:,.0f} at {forecast['average_claim_cost']:,.0f} per claim "
        f"(without filtering: {forecast['all_reserve']:,.0f})",
        *_performance_lines(performance),
        *_drift_lines(drift, raised, retrains, drift_from),
        f"  storage       {settings.default_storage_url()}",
        f"  mlflow        {settings.default_mlflow_tracking_uri()}",
        f"  dagster home  {os.environ['DAGSTER_HOME']}",
        "",
        "Open the UI:  make dev   then browse http://127.0.0.1:3000/assets  (asset applications_drift_report)",
        "Evidently UI: make evidently   then browse http://127.0.0.1:8000 (the drift time series)",
    ]
    print("\n".join(lines))
    return 0


def _performance_tick(instance) -> dict[str, dict]:
    """Evaluate `model_performance_sensor` once and run what it requests: the months whose outcomes are known."""
    from dagster import build_sensor_context

    from claims_platform.monitoring.sensors import model_performance_sensor

    result = model_performance_sensor(build_sensor_context(instance=instance))
    requests = result if isinstance(result, list) else []
    measured = {}
    for request in requests:
        run = _execute("measure_model_performance", instance, partition_key=request.partition_key)
        measured[request.partition_key] = run.output_for_node("model_performance").summary
    return measured


def _performance_lines(measured: dict[str, dict]) -> list[str]:
    lines = []
    for _, summary in sorted(measured.items()):
        backtest = summary["backtest"]
        lines.append(
            f"  measured      {summary['month']} (outcomes known): kappa {summary['realised']['kappa']:.3f} realised vs "
            f"{summary['estimated']['estimated_kappa']:.3f} estimated; accepted claims {backtest['backtest_actual_claims']} vs "
            f"{backtest['backtest_expected_claims']:.0f} forecast (ratio {backtest['backtest_actual_to_expected']:.2f}), "
            f"{backtest['backtest_days_inside']}/{backtest['backtest_days']} days inside their 95% interval — "
            + ("check passed" if summary["passed"] else "check FAILED: " + "; ".join(summary["failures"]))
        )
    return lines


def _monitoring_tick(instance) -> tuple[list, list]:
    """Evaluate the monitoring sensor once, as the daemon would, and run the retrains it requests."""
    from dagster import build_sensor_context

    from claims_platform.alerts.resource import alerts_from_env
    from claims_platform.monitoring.sensors import monitoring_alert_sensor

    context = build_sensor_context(instance=instance, resources={"alerts": alerts_from_env()})
    result = monitoring_alert_sensor(context)
    requests = list(getattr(result, "run_requests", None) or [])
    retrains = []
    for request in requests:
        ops = {**request.run_config.get("ops", {}), "candidate_model": {"config": DEMO_TRAINING}}
        run = _execute(
            "monthly_training", instance, partition_key=request.partition_key, run_config={"ops": ops}, tags=request.tags
        )
        retrains.append((request, run.output_for_node("champion_decision")))
    return requests, retrains


def _drift_lines(drift: dict, requests: list, retrains: list, drift_from: date) -> list[str]:
    drifted = {day: s for day, s in sorted(drift.items()) if s["drifted"]}
    first = next(iter(drifted), None)
    lines = [
        f"  drift         {len(drift)} days reported, {len(drifted)} drifted"
        + (f" (first {first}: {', '.join(drifted[first]['drifted_columns'])}; scenario on from {drift_from})" if first else "")
    ]
    for request in requests:
        lines.append(f"  alert         {request.tags['claims/reason']} → off-cycle retrain of {request.partition_key[:7]}")
    for request, decision in retrains:
        lines.append(
            f"  retrain       {request.partition_key[:7]} with outcomes known by {request.tags['claims/label_cutoff'][:10]}: "
            f"{_short(decision)} — {decision['reason']}"
        )
    if first:
        from claims_platform import settings as platform_settings

        lines.append(f"  report        {platform_settings.default_storage_url()}/applications_drift_report/{first}/report.html")
    return lines
