"""End to end on the production profile, on real services on loopback, driven as the UI drives it.

One stack for the module (see ``stack.py``): PostgreSQL, `moto_server` behind a TCP proxy, `mlflow
server` (PostgreSQL backend, artifacts proxied to S3), a code server, `dagster-webserver` and
`dagster-daemon` on a copy of ``deploy/dagster.yaml``. Through the webserver's GraphQL API: ingest the
world as one backfill run, train two months (``monthly_training``), put their champions in force, and
backfill 30 days of scores, forecasts, drift decisions and drift reports as ONE run. The daemon itself
ticks ``nightly_scoring_schedule`` (at ``CLAIMS_NIGHTLY_SCORING_TIME``, set a few minutes after the
stack starts) and ``drift_report_sensor`` reacts to that run. Then S3, the registry (MLflow's REST API),
Dagster's records (GraphQL) and the warehouse are checked, and a fresh process without ``CLAIMS_HOME``
scores one more day: the model comes from MLflow/S3, never from local disk.

SLOW (several minutes) and ``integration``: `make test` runs it, on CI too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from claims_platform_tests.production.conftest import TRAINING_CONFIG, RecentWorld, utc_now
from claims_platform_tests.production.stack import (
    BIN,
    MLFLOW_PREFIX,
    REPO_ROOT,
    STORAGE_PREFIX,
    mlflow_get,
    running_stack,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The nightly schedule's tick. The stack starts with CLAIMS_NIGHTLY_SCORING_TIME ~22 h away (nothing ticks
# while the models are trained); once the models are in force the platform is redeployed (daemon stopped,
# code server restarted, location reloaded, daemon started) with the time set to the first whole minute
# at least TICK_LEAD_SECONDS away, enough for the code server to load.
TICK_LEAD_SECONDS = float(os.environ.get("CLAIMS_TEST_TICK_LEAD_SECONDS", "45"))
SCORING_ASSETS = ["application_scores", "reserve_forecast", "applications_drift", "applications_drift_report"]
RUN_SECONDS = 420


def _model_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("MLmodel")) if folder.exists() else []


@pytest.fixture(scope="module")
def recent() -> RecentWorld:
    return RecentWorld(utc_now().date())


@pytest.fixture(scope="module")
def stack(recent, tmp_path_factory):
    past = utc_now() - timedelta(hours=2)
    with running_stack(
        tmp_path_factory.mktemp("production_e2e"), recent.world, f"{past.hour:02d}:{past.minute:02d}"
    ) as stack:
        yield stack


def test_production_end_to_end(stack, recent):
    began = time.perf_counter()
    timings: dict[str, float] = {"stack_up": stack.timings["stack_up"]}
    gql = stack.graphql()
    local_before = set(_model_files(REPO_ROOT / ".local"))
    problems: list[str] = []  # checks that do not stop the test: all reported at its end

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        return time.perf_counter()

    now = time.perf_counter()
    # 1. Ingest every simulated day: a backfill of the daily ingestion assets, ONE run (single-run policy).
    days = stack.world.days
    backfill = gql.launch_backfill(["applications", "rejected_applications"], days, title="ingest the world")
    ingest = gql.wait_backfill_run(backfill, 120)
    gql.wait_run(ingest["runId"], RUN_SECONDS)
    assert len(gql.backfill_runs(backfill)) == 1
    now = lap("ingest", now)

    # 2. The monthly training of two months, as the Launchpad launches a partition of the job.
    training_runs = {}
    for month in recent.training_months:
        training_runs[month] = gql.launch_run("monthly_training", partition=month, run_config=TRAINING_CONFIG)
        run = gql.wait_run(training_runs[month], RUN_SECONDS)
        if run["tags"].get("claims/lane") != "monthly":
            problems.append(f"monthly_training run without the claims/lane=monthly tag: {run['tags']}")
    now = lap("train_two_months", now)

    # 3. The models in force of the scored months, one backfill run.
    in_force = gql.launch_backfill(["model_in_force"], recent.scoring_months, title="models in force")
    gql.wait_run(gql.wait_backfill_run(in_force, 120)["runId"], RUN_SECONDS)
    now = lap("model_in_force", now)

    # 4. 30 days of scores, forecasts, drift decisions and drift reports: ONE run.
    backfill_started = time.perf_counter()
    scoring_backfill = gql.launch_backfill(SCORING_ASSETS, recent.backfill_days, title="30 days")
    scoring_run = gql.wait_backfill_run(scoring_backfill, 120)
    scoring_run = gql.wait_run(scoring_run["runId"], RUN_SECONDS)
    assert len(gql.backfill_runs(scoring_backfill)) == 1, "a 30-day backfill must be ONE run"
    assert gql.wait_for("backfill completed", lambda: gql.backfill(scoring_backfill)["status"] == "COMPLETED_SUCCESS"
                        or gql.backfill(scoring_backfill)["status"] == "COMPLETED", 120)  # fmt: skip
    timings["backfill_30_days"] = round(time.perf_counter() - backfill_started, 1)
    timings["backfill_30_days_run"] = round(scoring_run["endTime"] - scoring_run["startTime"], 1)
    materialized = gql.materialized(scoring_run["runId"])
    for asset in SCORING_ASSETS:
        assert materialized.get(asset) == set(recent.backfill_days), (
            f"{asset}: {sorted(materialized.get(asset, []))}"
        )
    now = lap("after_backfill", now)

    # 5. The daemon's schedule tick: nightly_scoring for yesterday, at CLAIMS_NIGHTLY_SCORING_TIME. The code
    # server is restarted with a time a minute or so away (no run may be in flight meanwhile).
    gql.wait_for(
        "no run in flight before the code server restarts",
        lambda: not gql.active_runs(),
        RUN_SECONDS,
        every=2,
    )
    tick = utc_now() + timedelta(seconds=TICK_LEAD_SECONDS + 59)
    if tick.date() != recent.today:
        pytest.skip(
            "the schedule's tick would fall tomorrow, a day the world does not hold: run it before 23:55 UTC"
        )
    stack.redeploy(f"{tick.hour:02d}:{tick.minute:02d}")
    assert gql.schedule("nightly_scoring_schedule")["cronSchedule"] == f"{tick.minute} {tick.hour} * * *", (
        "CLAIMS_NIGHTLY_SCORING_TIME did not set the schedule's time: "
        + str(gql.schedule("nightly_scoring_schedule"))
    )
    yesterday = recent.yesterday.isoformat()
    scheduled = gql.wait_for(
        f"a nightly_scoring run from the schedule's tick at {stack.nightly_scoring_time} UTC",
        lambda: gql.runs(tags={"dagster/schedule_name": "nightly_scoring_schedule"}),
        TICK_LEAD_SECONDS + 180,
        every=3,
    )
    assert len(scheduled) == 1, scheduled
    nightly = gql.wait_run(scheduled[0]["runId"], RUN_SECONDS)
    assert nightly["jobName"] == "nightly_scoring" and nightly["tags"]["dagster/partition"] == yesterday, (
        nightly
    )
    now = lap("schedule_tick_and_run", now)

    # 6. The sensor's tick: drift_report_sensor asks for the same day's Evidently report after that run.
    reports = gql.wait_for(
        "a drift_reports run requested by drift_report_sensor after the nightly run",
        lambda: gql.runs(
            tags={"dagster/sensor_name": "drift_report_sensor", "claims/after_run": nightly["runId"]}
        ),
        180,
        every=3,
    )
    report_run = gql.wait_run(reports[0]["runId"], RUN_SECONDS)
    assert (
        report_run["jobName"] == "drift_reports" and report_run["tags"].get("dagster/partition") == yesterday
    )
    now = lap("sensor_tick_and_run", now)

    # -- S3: every day's objects under claims-platform/, the model files under mlflow/ ------------------
    s3 = stack.s3()
    stored = set(stack.keys(f"{STORAGE_PREFIX}/"))
    for day in recent.backfill_days:
        for key in (
            f"application_scores/{day}.parquet",
            f"reserve_forecast/{day}.parquet",
            f"applications_drift_report/{day}/report.html",
            f"applications_drift_report/{day}/snapshot.json.gz",
        ):
            assert f"{STORAGE_PREFIX}/{key}" in stored, f"missing s3://{stack.bucket}/{STORAGE_PREFIX}/{key}"
    assert not [k for k in stored if ".staging" in k or k.endswith(".backup")], "temporaries left in S3"
    model_keys = [k for k in stack.keys(f"{MLFLOW_PREFIX}/") if k.endswith("/MLmodel")]
    assert len(model_keys) >= 2, f"model files under s3://{stack.bucket}/{MLFLOW_PREFIX}/: {model_keys}"
    # Nothing model-like on local disk.
    assert _model_files(stack.claims_home) == []
    assert set(_model_files(REPO_ROOT / ".local")) == local_before

    # -- the warehouse: every application of each day is scored or rejected ----------------------------
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(stack.warehouse_url)
    try:
        with engine.connect() as connection:
            counts = dict(
                connection.execute(
                    sa.text(
                        "select cast(application_date as text), count(*) from applications "
                        "where application_date between :a and :b group by 1"
                    ),
                    {"a": recent.backfill_days[0], "b": yesterday},
                ).all()
            )
    finally:
        engine.dispose()

    def read_parquet(key: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()))

    for day in recent.backfill_days:
        scores = read_parquet(f"{STORAGE_PREFIX}/application_scores/{day}.parquet")
        rejected_key = f"{STORAGE_PREFIX}/rejected_applications/{day}.parquet"
        rejected = len(read_parquet(rejected_key)) if rejected_key in stored else 0
        assert len(scores) + rejected == counts[day[:10]], (day, len(scores), rejected, counts.get(day))
        assert scores["claim_probability"].between(0, 1).all()

    # -- the registry, through MLflow's REST API ----------------------------------------------------------
    model = mlflow_get(stack, "registered-models/get", name="claims_classifier")["registered_model"]
    assert model.get("description"), "the registered model has no description"
    versions = mlflow_get(stack, "model-versions/search", filter="name='claims_classifier'")["model_versions"]
    assert len(versions) == 2, [v["version"] for v in versions]
    for version in versions:
        assert version.get("description"), f"version {version['version']} has no description"
        uri = mlflow_get(
            stack, "model-versions/get-download-uri", name="claims_classifier", version=version["version"]
        )
        assert uri["artifact_uri"].startswith(("mlflow-artifacts:", "s3://")), uri
    decisions = {}
    for month in recent.training_months:
        body = s3.get_object(Bucket=stack.bucket, Key=f"{STORAGE_PREFIX}/champion_decision/{month}.json")[
            "Body"
        ].read()
        decisions[month] = json.loads(body)
    assert decisions[recent.training_months[0]]["outcome"] == "first champion", decisions[
        recent.training_months[0]
    ]
    latest = decisions[recent.training_months[-1]]
    assert latest["champion"], latest
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    assert aliases.get("champion") == str(latest["champion"]["version"]), (aliases, latest["champion"])
    audit = {t["key"]: json.loads(t["value"]) for t in model.get("tags", []) if t["key"].startswith("audit.")}
    for month in recent.training_months:
        records = [r for k, r in audit.items() if k.endswith(f"decision_{month[:7]}")]
        assert records and records[-1]["dagster_run_id"] == training_runs[month], (month, records)

    # -- Dagster's records: a materialization per partition, the asset checks ---------------------------
    for asset, wanted in (
        ("applications", days),
        ("application_scores", recent.backfill_days),
        ("applications_drift_report", recent.backfill_days),
        ("champion_decision", recent.training_months),
        ("model_in_force", recent.scoring_months),
    ):
        partitions = {m["partition"] for m in gql.asset(asset)["assetMaterializations"]}
        assert set(wanted) <= partitions, f"{asset}: not materialized {sorted(set(wanted) - partitions)[:5]}"
    checks = gql.asset("applications")["assetChecksOrError"]["checks"]
    statuses = {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status") for c in checks}
    assert statuses.get("contract_columns_present") == "SUCCEEDED", statuses

    # -- a fresh process, CLAIMS_HOME moved away, scores one more day --------------------------------------
    moved = stack.claims_home.with_name("claims_home.moved")
    stack.claims_home.rename(moved)
    fresh_tmp = stack.base / "fresh_tmp"
    fresh_tmp.mkdir()
    env = {**stack.env(), "TMPDIR": str(fresh_tmp)}
    fresh = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "claims_platform.definitions",
         "--select", "application_scores", "--partition", recent.extra_day],
        env=env, cwd=stack.base, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert fresh.returncode == 0, (
        f"scoring {recent.extra_day} from a fresh process failed:\n{fresh.stdout[-3000:]}\n{fresh.stderr[-5000:]}"
    )
    assert f"{STORAGE_PREFIX}/application_scores/{recent.extra_day}.parquet" in set(
        stack.keys(f"{STORAGE_PREFIX}/application_scores/")
    )
    assert _model_files(stack.claims_home) == [] and _model_files(moved) == []
    lap("fresh_process_score", now)

    timings["whole_test"] = round(time.perf_counter() - began + stack.timings["stack_up"], 1)
    print(f"\nproduction end to end, wall seconds: {json.dumps(timings)}")
    print(f"  world {stack.world.first_day}..{stack.world.last_day}, trained {recent.training_months}, "
          f"schedule at {stack.nightly_scoring_time} UTC, 30-day backfill {recent.backfill_days[0]}..{yesterday}")  # fmt: skip
    assert not problems, "\n".join(problems)
