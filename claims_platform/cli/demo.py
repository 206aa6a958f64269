"""`claims-platform demo`: the platform's main job on embedded defaults, end to end.

Simulates the last months into the warehouse (riskier applicants arrive in the last ``DRIFT_DAYS``
days: the ``risk_shift`` scenario, a drift that moves the predictions and so asks for a retrain), ingests them through Dagster as ONE backfill run, trains and
decides a champion for every month that has enough labelled history, scores the days with the model
in force each month and reports their drift (one backfill run), lets the monitoring sensors raise
their alert and the off-cycle retrain it asks for, and prints what it did.

Everything goes into the Dagster instance (`DAGSTER_HOME`) that `make dev` shows, as runs of the code
location ``claims_platform`` of ``workspace.yaml``: each run is created from the location's remote
job, the way the daemon's schedules and sensors and the UI's Launch create theirs (see
:class:`LocalPlatform`), so the UI lists it under its job and can re-execute it.

The demo's world starts on the first day of the month ``months`` months ago. That day becomes the
platform's first day (``CLAIMS_FIRST_DAY``) in the demo's processes and in the repo's ``.env``, which
`make dev` reads, so the UI's partitions start where the demo's data starts. When the instance
already holds days from before it (an earlier demo, a month ago), the demo keeps the earlier first
day instead: moving it would leave that history outside the partitions, and the champion chain
refuses to start again after a month it already decided.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from claims_platform.cli.runs import (
    LOCATION,
    WORKSPACE_FILE,
    LocalPlatform,
    PlatformRunError,
    history_start,
    open_instance,
    quiet_mlflow,
    quiet_output,
    range_request,
)
from claims_platform.cli.steps import SCORING_ASSETS, Steps, clip
from claims_platform.core import project_env, settings
from claims_platform.core.redaction import redact_url

DEMO_TAGS = {"source": "demo"}
# Months before today's month the demo's world starts: two gather labelled history, the third trains the
# first champion, the rest train against it; the champion scores from the fourth. (Five were tried: the
# first champion, trained on one labelled month, then under-forecast its first scored month's claims by
# a fifth, and the failed performance check asked for a second retrain.)
DEMO_MONTHS = 6
# A smaller cold-start budget than the monthly schedule's, so the demo trains several months quickly,
# and the schedule's own warm-start budget: NUMBERS of real trials (never seconds), so the demo's
# models do not depend on the machine's load.
DEMO_TRAINING = {"n_trials": 6, "warm_start_trials": 2, "tuning_rows": 30_000}
# The drift scenario of the demo: in the window's last days a tenth of the applicants who would not have
# claimed are replaced by ones who will. The predictions drift, so the alert asks for a retrain; a drift in
# columns the model barely uses (income_shift, mix_shift) would be a warning without one.
DRIFT_SCENARIO = "risk_shift"
DRIFT_DAYS = 10


class DemoError(Exception):
    """The demo cannot go on: the message says why and where to look."""


@dataclass(frozen=True)
class DemoWindow:
    """The days the demo simulates and processes."""

    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def target_first_day(today: date, months: int) -> date:
    """The first day of the month ``months`` months before today's month."""
    from claims_platform.core.months import add_months

    return add_months(today.replace(day=1), -months)


def choose_first_day(target: date, history_start: date | None) -> date:
    """``target``, or the first of the month of the instance's earliest day when that is earlier.

    Kept earlier so that the instance's history stays inside the partitions: a first day moved past
    decided months would hide them, and the champion chain would refuse to start after them.
    """
    if history_start is None:
        return target
    return min(target, history_start.replace(day=1))


def demo_window(today: date, months: int, history_start: date | None = None) -> DemoWindow:
    """From the demo's first day (see :func:`choose_first_day`) to yesterday."""
    return DemoWindow(
        choose_first_day(target_first_day(today, months), history_start), today - timedelta(days=1)
    )


def decision_months(window: DemoWindow) -> list[str]:
    """Every month of the window up to last month: the champion chain starts at the first one.

    The first two cannot train yet (an out-of-time split needs two labelled months): their
    decisions say "no model", as the platform's own first months would.
    """
    from claims_platform.core.months import add_months

    first = window.first_day.replace(day=1)
    last = add_months(window.last_day.replace(day=1), -1)
    months = []
    while first <= last:
        months.append(first.isoformat())
        first = add_months(first, 1)
    return months


_STARTED = time.perf_counter()


def _log(message: str) -> None:
    """A progress line with the seconds since the demo started."""
    print(f"{time.perf_counter() - _STARTED:5.0f}s  {redact_url(message)}", file=sys.stderr, flush=True)


def _create_mlflow_store():
    """Create the embedded MLflow store (MLflow's import, ~4 s, and its SQLite schema, ~40 migrations,
    ~3 s) in a process of its own, on the core the ingestion run leaves idle; the training waits for
    it. None when tracking goes to a server, which has its store already."""
    import subprocess

    uri = settings.default_mlflow_tracking_uri()
    if settings.tracks_to_server(uri):
        return None
    code = (
        "import sys; from mlflow.tracking import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
    )
    # A failure here is the training's to report (it opens the same store), so the output is not kept.
    return subprocess.Popen(
        [sys.executable, "-c", code, uri], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _short(decision: dict) -> str:
    champion = decision["champion"]
    return f"{decision['outcome']}" + (f" (v{champion['version']})" if champion else "")


def main(
    months: int = DEMO_MONTHS,
    today: date | None = None,
    seed: int = settings.DEFAULT_WORLD_SEED,
    launch: bool = False,
) -> int:
    """Run the demo; returns a process exit code."""
    try:
        return _demo(months, today or date.today(), seed, launch)
    except (DemoError, PlatformRunError) as error:
        print(f"claims_platform demo: {redact_url(str(error))}", file=sys.stderr)
        return 1


@dataclass
class _Found:
    """What the demo's steps did, for its summary."""

    window: DemoWindow
    drift_from: date
    warehouse_url: str
    simulated: int = 0
    valid: int = 0
    rejected: int = 0
    decisions: list[dict] = field(default_factory=list)  # each decided month's champion decision, in order
    decision_lines: list[str] | None = None
    performance_lines: list[str] | None = None
    forecast: object = None  # yesterday's reserve_forecast row
    drift: dict | None = None  # each scored day's applications_drift metadata
    alerts: tuple[list, list, str | None] = ([], [], None)  # requests, retrains, skip message


def _demo(months: int, today: date, seed: int, launch: bool) -> int:
    from claims_platform.source.warehouse import Warehouse

    quiet_output()
    env_file = project_env.env_file()
    project_env.load_env_file(env_file)
    instance = open_instance()
    window = _first_day(instance, env_file, today, months)
    started = time.perf_counter()
    settings.local_home().mkdir(parents=True, exist_ok=True)
    warehouse = Warehouse(settings.default_warehouse_url())
    found = _Found(window, window.last_day - timedelta(days=DRIFT_DAYS - 1), warehouse.url)
    platform = LocalPlatform(instance, tags=DEMO_TAGS, launch=launch)
    try:
        _simulate(platform, warehouse, found, seed)
        _ingest(platform, found)
        months_to_decide = _train(platform, found, months)
        scoring = _score(platform, found)
        _monitor(platform, found, scoring, months_to_decide)
    finally:
        platform.close()
        warehouse.dispose()
    # Every URL in the summary is shown with its password or token masked (a secret is never printed).
    print(redact_url("\n".join(_summary(found, env_file, time.perf_counter() - started))))
    return 0


def _first_day(instance, env_file, today: date, months: int) -> DemoWindow:
    """The demo's window; its first day becomes the partitions' (in this process and in ``.env``)."""
    target = target_first_day(today, months)
    window = demo_window(today, months, history_start(instance))
    # The demo's processes, and `make dev` after it (.env), start the partitions on the demo's first day.
    settings.use_first_day(window.first_day)
    project_env.set_env_line(env_file, settings.ENV_FIRST_DAY, window.first_day.isoformat())
    extra = (target.year - window.first_day.year) * 12 + target.month - window.first_day.month
    kept = (
        f"; kept from the instance's earlier days, {extra} month(s) more than asked "
        f"(for a fresh {months}-month world delete {settings.local_home()} first)"
        if extra > 0
        else ""
    )
    _log(
        f"first day {window.first_day} ({settings.ENV_FIRST_DAY} in {env_file}, which `make dev` reads){kept}"
    )
    return window


def _simulate(platform: LocalPlatform, warehouse, found: _Found, seed: int) -> None:
    """[1/5] The window's days into the warehouse, while the code server starts in a process of its own."""
    from concurrent.futures import ThreadPoolExecutor

    from claims_platform.source.scenarios import get_scenario
    from claims_platform.source.simulate import simulate_range

    window = found.window
    _log(
        f"[1/5] simulating {window.days} days {window.first_day}..{window.last_day} into {redact_url(warehouse.url)} "
        f"({DRIFT_SCENARIO} from {found.drift_from}); loading the code location {LOCATION} of {WORKSPACE_FILE.name}"
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(platform.open)
        found.simulated = simulate_range(
            warehouse,
            window.first_day,
            window.last_day,
            seed=seed,
            scenario=get_scenario(DRIFT_SCENARIO, found.drift_from),
        )
        opening.result()


def _ingest(platform: LocalPlatform, found: _Found) -> None:
    """[2/5] The days as one backfill run of daily_ingestion (MLflow's store is created beside it)."""
    _log("[2/5] ingesting the days as one backfill run of daily_ingestion")
    mlflow_store = _create_mlflow_store()
    ingest = platform.run(
        "daily_ingestion",
        range_request(found.window.first_day.isoformat(), found.window.last_day.isoformat()),
    )
    found.valid = sum(
        int(m.get("valid_rows", 0)) for m in platform.materialized(ingest, "applications").values()
    )
    found.rejected = sum(
        int(m.get("rejected_rows", 0))
        for m in platform.materialized(ingest, "rejected_applications").values()
    )
    if mlflow_store is not None:
        mlflow_store.wait()
    quiet_mlflow()


def _train(platform: LocalPlatform, found: _Found, months: int) -> list[str]:
    """[3/5] Every month with enough labelled history trained and decided, in order; the months decided."""
    from dagster import RunRequest

    months_to_decide = decision_months(found.window)
    if len(months_to_decide) < 3:
        raise DemoError(
            f"{months} months are too few to train on: use at least 4 (two labelled months + one to score)"
        )
    for i, month in enumerate(months_to_decide, start=1):
        request = RunRequest(
            partition_key=month, run_config={"ops": {"candidate_model": {"config": DEMO_TRAINING}}}
        )
        platform.run("monthly_training", request)
        decision = platform.stored("champion_decision", month)
        found.decisions.append(decision)
        _log(
            f"[3/5] trained and decided {month[:7]} ({i}/{len(months_to_decide)}): {_short(decision)} — {clip(decision['reason'], 110)}"
        )
    return months_to_decide


def _score(platform: LocalPlatform, found: _Found):
    """[4/5] The models in force, then the days from the first champion's month as one nightly_scoring backfill."""
    from claims_platform.core.months import add_months
    from claims_platform.monitoring.reports import warm_report_workers

    # The first month with a model in force is the one after the first month with a champion.
    first_champion = next((d["training_month"] for d in found.decisions if d["champion"]), None)
    if first_champion is None:
        raise DemoError(
            "no month produced an eligible model: see the champion decisions in the Dagster UI (make dev)"
        )
    scoring_first = add_months(date.fromisoformat(f"{first_champion}-01"), 1).isoformat()
    last = found.window.last_day.isoformat()
    _log(
        f"[4/5] scoring {scoring_first}..{last} with the model in force each month, as one backfill run of nightly_scoring"
    )
    warm_report_workers()  # the drift reports' workers import Evidently on the core the scoring run leaves idle
    platform.run(
        "__ASSET_JOB",
        range_request(
            scoring_first,
            found.window.last_day.replace(day=1).isoformat(),
            asset_selection=[_key("model_in_force")],
        ),
    )
    # The days are ingested already: the backfill materializes the nightly job's scoring assets only,
    # as "Materialize selected" of those three assets would.
    scoring = platform.run(
        "nightly_scoring",
        range_request(scoring_first, last, asset_selection=[_key(name) for name in SCORING_ASSETS]),
    )
    found.forecast = platform.stored("reserve_forecast", last).iloc[0]
    found.drift = platform.materialized(scoring, "applications_drift")
    return scoring


def _monitor(platform: LocalPlatform, found: _Found, scoring, months_to_decide: list[str]) -> None:
    """[5/5] The drift reports, the months whose outcomes are known, the drift alert and its retrain."""
    from claims_platform.assembly.monitoring_sensors import drift_report_sensor, report_request

    _log(
        "[5/5] monitoring: Evidently's drift reports, the months whose outcomes are known, the drift alert and its retrain"
    )
    # What `drift_report_sensor` requests after a successful nightly run: the same days' reports.
    platform.run("drift_reports", report_request(scoring), sensor_name=drift_report_sensor.name)
    performance = _performance_tick(platform, months_to_decide)
    # The summary's lines for these, as `claims-platform run` prints them (read before the retrain re-decides).
    steps = Steps(platform, warehouse_url=found.warehouse_url, progress=_log)
    found.decision_lines = [steps.decision_line(month) for month in months_to_decide]
    found.performance_lines = [steps.performance_line(month) for month in performance]
    found.alerts = _monitoring_tick(platform)


def _summary(found: _Found, env_file, elapsed: float) -> list[str]:
    """The demo's closing summary: what it did, where everything is, and how to look."""
    from claims_platform.core.figures import money

    window, decision, forecast = found.window, found.decisions[-1], found.forecast
    first, last = window.first_day.isoformat(), window.last_day.isoformat()
    champion = decision["champion"]
    currency = str(forecast.get("currency", "GBP"))
    return [
        "",
        f"claims_platform demo — done in {elapsed:.0f} s",
        f"  first day     {window.first_day} (the partitions start there: {settings.ENV_FIRST_DAY} in {env_file})",
        f"  warehouse     {redact_url(found.warehouse_url)}",
        f"  simulated     {window.days} days, {found.simulated:,} applications",
        f"  ingested      {found.valid:,} valid, {found.rejected:,} rejected ({first}..{last}, one run)",
        *found.decision_lines,
        f"  champion      {decision['model_name']} v{champion['version']} scores {decision['scores_month']}"
        f" — {decision['reason']}",
        f"  yesterday     {last}: {forecast['accept_count']} accepted, {forecast['refer_count']} referred, "
        f"{forecast['decline_count']} declined",
        f"  reserve       expected claims among accepted {forecast['accepted_expected_claims']:.1f} "
        f"(95% {forecast['accepted_claims_low']}–{forecast['accepted_claims_high']}) → "
        f"{money(forecast['accepted_reserve'], currency)} at {money(forecast['average_claim_cost'], currency)} per claim "
        f"(without filtering: {money(forecast['all_reserve'], currency)})",
        *found.performance_lines,
        *_drift_lines(found.drift, *found.alerts, found.drift_from),
        f"  storage       {redact_url(settings.default_storage_url())}",
        f"  mlflow        {redact_url(settings.default_mlflow_tracking_uri())}",
        *_webhook_lines(),
        f"  dagster home  {os.environ['DAGSTER_HOME']}: every run above, linked to the code location {LOCATION}",
        "",
        "Open the UI:  make dev   then browse http://127.0.0.1:3000/runs (the runs, their logs) and /assets",
        "              (asset applications_drift_report); its daemon runs the nightly and monthly schedules and the sensors",
        "Evidently UI: make evidently   then browse http://127.0.0.1:8000 (the drift time series)",
        f"Model card:   .venv/bin/claims-platform model-card {champion['version']}   (the champion's: what it was "
        "measured on, for whom, how it was judged)",
    ]


def _webhook_lines() -> list[str]:
    """Where alerts went besides the runs' logs: the webhook, its token masked (a secret: never printed)."""
    from claims_platform.core.alerts import ENV_ALERT_WEBHOOK_URL

    webhook = os.environ.get(ENV_ALERT_WEBHOOK_URL, "").strip()
    return [f"  alerts        the runs' logs and the webhook {redact_url(webhook)}"] if webhook else []


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def _performance_tick(platform: LocalPlatform, months: list[str]) -> list[str]:
    """Tick `model_performance_sensor` once and run what it requests: the months whose outcomes are known.

    Returns which of ``months`` the instance holds a measurement of, also those an earlier run of the
    demo measured (the sensor measures a month once).
    """
    from claims_platform.assembly.monitoring_sensors import MODEL_PERFORMANCE, model_performance_sensor

    for request in platform.tick(model_performance_sensor).run_requests or []:
        platform.run("measure_model_performance", request, sensor_name=model_performance_sensor.name)
    measured = set(platform.instance.get_materialized_partitions(MODEL_PERFORMANCE))
    return [month for month in months if month in measured]


def _monitoring_tick(platform: LocalPlatform) -> tuple[list, list, str | None]:
    """Tick the monitoring sensor once, as the daemon would, and run the retrains it requests."""
    from dagster import RunRequest

    from claims_platform.assembly.monitoring_sensors import monitoring_alert_sensor
    from claims_platform.core.alerts import alerts_from_env

    tick = platform.tick(monitoring_alert_sensor, resources={"alerts": alerts_from_env()})
    requests = list(tick.run_requests or [])
    retrains = []
    for request in requests:
        ops = {**request.run_config.get("ops", {}), "candidate_model": {"config": DEMO_TRAINING}}
        budgeted = RunRequest(
            run_key=request.run_key,
            partition_key=request.partition_key,
            run_config={"ops": ops},
            tags=request.tags,
        )
        platform.run("monthly_training", budgeted, sensor_name=monitoring_alert_sensor.name)
        month = request.partition_key
        retrains.append(
            (request, platform.stored("candidate_model", month), platform.stored("champion_decision", month))
        )
    return requests, retrains, tick.skip_message


def _drift_of(metadata: dict) -> str:
    """What drifted on a day and whether it matters: ``credit_score_2, height_cm → retrain (why)``."""
    what = ", ".join(metadata.get("drifted_columns", {})) or "no feature column"
    level, why = metadata.get("drift_level"), metadata.get("drift_reasons")
    return what + (f" → {level} ({why})" if level else "")


def _drift_lines(
    drift: dict[str, dict], requests: list, retrains: list, skipped: str | None, drift_from: date
) -> list[str]:
    drifted = {day: m for day, m in sorted(drift.items()) if m.get("drifted")}
    first = next(iter(drifted), None)
    lines = [
        f"  drift         {len(drift)} days reported, {len(drifted)} drifted"
        + (f" (first {first}: {_drift_of(drifted[first])}; scenario on from {drift_from})" if first else "")
    ]
    for request in requests:
        lines.append(
            f"  alert         {request.tags['claims/reason']} → off-cycle retrain of {request.partition_key[:7]}"
        )
    if skipped:
        lines.append(
            f"  alert         none: {skipped} (monitoring_alert_sensor; its cursor is kept in the instance)"
        )
    for request, candidate, decision in retrains:
        reused = (
            f" (training set, budget and code unchanged: v{candidate['version']} reused, nothing trained)"
            if candidate.get("reused")
            else ""
        )
        lines.append(
            f"  retrain       {request.partition_key[:7]} with outcomes known by {request.tags['claims/label_cutoff'][:10]}"
            f"{reused}: {_short(decision)} — {decision['reason']}"
        )
    if first:
        lines.append(
            f"  report        {redact_url(settings.default_storage_url())}/applications_drift_report/{first}/report.html"
        )
    return lines
