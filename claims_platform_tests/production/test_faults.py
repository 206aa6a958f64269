"""Faults on the production profile's real services (issue 11, point 3), one stack for the module.

The world is fixed in the past (January to April 2025): March's candidate becomes the first champion
and scores April. The nightly schedule is set to tick 22 hours away, so only the tests launch runs.

(a) The MLflow tracking server is down when the monthly training runs: the run fails within a minute
    of failure handling, naming the MLflow tracking server; with MLflow back (same store, same port)
    its re-execution completes.
(b) S3 goes down in the middle of a 30-day scoring backfill (the TCP proxy in front of the S3 server
    stops; the server keeps its data): the run fails naming S3; with S3 back a re-execution
    completes, and every partition's objects exist and read, as Dagster recorded them.
(c) The run's process is killed (SIGKILL) in the middle of a backfill: the run is marked failed,
    run retries launch a retry that completes, and no partition is recorded materialized whose
    stored object is missing or unreadable.

SLOW (minutes) and ``integration``: `make test` runs it, on CI too. The tests run in file order
((a) trains the model that (b) and (c) score with).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import time
from datetime import date, timedelta

import pytest
import yaml

from claims_platform_tests.production.conftest import TRAINING_CONFIG, utc_now
from claims_platform_tests.production.graphql import DagsterGraphQL
from claims_platform_tests.production.stack import DEPLOY, STORAGE_PREFIX, Stack, World, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORLD = World(date(2025, 1, 1), date(2025, 4, 30))
TRAINING_MONTH, SCORING_MONTH = "2025-03-01", "2025-04-01"
DAYS = [(date(2025, 4, 1) + timedelta(days=i)).isoformat() for i in range(30)]
SCORING_ASSETS = ["application_scores", "reserve_forecast", "applications_drift", "applications_drift_report"]
RUN_SECONDS = 420
FAILURE_HANDLING_SECONDS = 60
MAX_RUN_RETRIES = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_retries"]["max_retries"]
TIMINGS: dict[str, object] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # A time of day that has just passed: the schedule's next tick is ~a day away.
    past = utc_now() - timedelta(hours=2)
    with running_stack(
        tmp_path_factory.mktemp("production_faults"), WORLD, f"{past.hour:02d}:{past.minute:02d}"
    ) as stack:
        gql = stack.graphql()
        backfill = gql.launch_backfill(["applications", "rejected_applications"], WORLD.days, title="ingest")
        gql.wait_run(gql.wait_backfill_run(backfill, 120)["runId"], RUN_SECONDS)
        yield stack
    print(f"\nproduction faults, wall seconds: {json.dumps(TIMINGS)}")


def _ms(value) -> float:
    return float(value) / 1000.0


def _first_event_time(gql: DagsterGraphQL, run_id: str, step_key: str | None = None) -> float | None:
    """Seconds (epoch) of the first event of ``step_key`` (or of the run) in its log."""
    times = [
        _ms(e["timestamp"]) for e in gql.events(run_id) if step_key is None or e.get("stepKey") == step_key
    ]
    return min(times) if times else None


def _failed_steps(gql: DagsterGraphQL, run_id: str) -> list[str]:
    return sorted(
        {e["stepKey"] for e in gql.events(run_id) if e["__typename"] == "ExecutionStepFailureEvent"}
    )


def _retries(gql: DagsterGraphQL, run_id: str) -> int:
    return sum(e["__typename"] == "ExecutionStepUpForRetryEvent" for e in gql.events(run_id))


def _wait_first_materialization(gql: DagsterGraphQL, run_id: str, seconds: float) -> float:
    """Poll the run's log until its first asset materialization; returns when it was seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = gql.run(run_id)
        if any(e["__typename"] == "MaterializationEvent" for e in gql.events(run_id)):
            return time.time()
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            raise AssertionError(
                f"run {run_id} ended {run['status']} before it materialized anything:\n{gql.failure_text(run_id)}"
            )
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} materialized nothing within {seconds:.0f} s\n{gql.tails()}")


def _object_keys(asset: str, day: str) -> list[str]:
    if asset == "applications_drift_report":
        return [
            f"{STORAGE_PREFIX}/{asset}/{day}/{name}"
            for name in ("report.html", "snapshot.json.gz", "summary.json")
        ]
    if asset == "applications_drift":
        return [f"{STORAGE_PREFIX}/{asset}/{day}.json", f"{STORAGE_PREFIX}/{asset}/{day}.parquet"]
    return [f"{STORAGE_PREFIX}/{asset}/{day}.parquet"]


def _readable(stack: Stack, asset: str, day: str, keys: set[str]) -> str | None:
    """None when the partition's stored object exists and reads; else what is wrong."""
    import pandas as pd

    candidates = [k for k in _object_keys(asset, day) if k in keys]
    if not candidates:
        return f"{asset} {day}: no object (looked for {_object_keys(asset, day)})"
    for key in candidates:
        body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        try:
            if key.endswith(".parquet"):
                pd.read_parquet(io.BytesIO(body))
            elif key.endswith(".json"):
                json.loads(body)
            elif not body.strip():
                return f"{key}: empty"
        except Exception as error:  # noqa: BLE001 - any unreadable object is the finding
            return f"{key}: unreadable ({type(error).__name__}: {error})"
    return None


def _check_recorded_partitions_intact(
    stack: Stack, gql: DagsterGraphQL, run_ids: list[str]
) -> dict[str, set[str]]:
    """Every (asset, partition) these runs recorded materialized has its object in S3, readable."""
    keys = set(stack.keys(f"{STORAGE_PREFIX}/"))
    recorded: dict[str, set[str]] = {}
    for run_id in run_ids:
        for asset, partitions in gql.materialized(run_id).items():
            recorded.setdefault(asset, set()).update(partitions)
    problems = [
        problem
        for asset, partitions in recorded.items()
        if asset in SCORING_ASSETS
        for day in sorted(partitions)
        if (problem := _readable(stack, asset, day, keys))
    ]
    assert not problems, "recorded materialized but missing or unreadable:\n" + "\n".join(problems[:20])
    assert not [k for k in keys if ".staging" in k], "staging temporaries left in S3"
    return recorded


def _check_every_partition(stack: Stack, gql: DagsterGraphQL) -> None:
    keys = set(stack.keys(f"{STORAGE_PREFIX}/"))
    problems = [p for asset in SCORING_ASSETS for day in DAYS if (p := _readable(stack, asset, day, keys))]
    assert not problems, "\n".join(problems[:20])
    for asset in SCORING_ASSETS:
        partitions = {m["partition"] for m in gql.asset(asset)["assetMaterializations"]}
        assert set(DAYS) <= partitions, f"{asset}: no materialization of {sorted(set(DAYS) - partitions)[:5]}"


def _execution_began(gql: DagsterGraphQL, run_id: str) -> float:
    """When the run's process began executing (its "Executing steps" engine event; else its first event)."""
    events = gql.events(run_id)
    began = [_ms(e["timestamp"]) for e in events if (e.get("message") or "").startswith("Executing steps")]
    return min(began or [_ms(e["timestamp"]) for e in events])


def _settled_chain(gql: DagsterGraphQL, root_id: str, quiet_seconds: float = 90) -> list[dict]:
    """The run ``root_id`` and the retries run retries launched for it, once none is in flight and either
    the last is retry number ``run_retries.max_retries`` or no new one has appeared for ``quiet_seconds``."""
    deadline = time.monotonic() + RUN_SECONDS
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        chain = [gql.run(root_id), *gql.runs(tags={"dagster/root_run_id": root_id})]
        if len(chain) != seen:
            seen, quiet_since = len(chain), time.monotonic()
        finished = all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in chain)
        last = max(int(run["tags"].get("dagster/retry_number", "0")) for run in chain)
        if finished and (last >= MAX_RUN_RETRIES or time.monotonic() - quiet_since > quiet_seconds):
            return sorted(chain, key=lambda run: run["creationTime"])
        time.sleep(2)
    raise AssertionError(f"the retries of run {root_id} did not settle within {RUN_SECONDS} s\n{gql.tails()}")


def test_a_mlflow_down_then_back(stack):
    gql = stack.graphql()
    problems: list[str] = []
    stack.stop("mlflow")
    try:
        run_id = gql.launch_run("monthly_training", partition=TRAINING_MONTH, run_config=TRAINING_CONFIG)
        run = gql.wait_run(run_id, RUN_SECONDS, expect="FAILURE")
        text = gql.failure_text(run_id)
        handling = round(run["endTime"] - _execution_began(gql, run_id), 1)
        TIMINGS["a_failure_handling"] = handling
        TIMINGS["a_failed_steps"] = _failed_steps(gql, run_id)
        TIMINGS["a_step_retries"] = _retries(gql, run_id)
        # A failure outside any step (a resource that cannot start) is retried as a whole run by run
        # retries; a step's failure is retried by its retry policy within the run. Either way, all fail.
        chain = _settled_chain(gql, run_id)
        TIMINGS["a_runs_while_down"] = [
            f"{r['runId'][:8]} {r['status']} retry={r['tags'].get('dagster/retry_number', '0')}"
            for r in chain
        ]
        TIMINGS["a_chain_seconds"] = round(max(r["endTime"] for r in chain) - chain[0]["startTime"], 1)
        print(f"\n(a) MLflow down: run {run_id} failed after {handling} s of failure handling (steps failed: "
              f"{TIMINGS['a_failed_steps']}, step retries {TIMINGS['a_step_retries']}); runs: {TIMINGS['a_runs_while_down']}; "
              f"errors:\n{text[:3000]}")  # fmt: skip
        # Checked after MLflow is back and the model trained, so that (b) and (c) run whatever happens here.
        if not all(r["status"] == "FAILURE" for r in chain):
            problems.append(f"a run succeeded while MLflow was down: {chain}")
        if not re.search(r"MLflow", text) or "ModuleNotFoundError" in text:
            problems.append(f"the failure does not name the MLflow tracking server:\n{text}")
        if handling >= FAILURE_HANDLING_SECONDS:
            problems.append(
                f"failure handling took {handling} s (limit {FAILURE_HANDLING_SECONDS} s):\n{text}"
            )
    finally:
        stack.start_mlflow()  # same port, same backend store
    began = time.perf_counter()
    retry = gql.reexecute(chain[-1]["runId"], "FROM_FAILURE")
    gql.wait_run(retry, RUN_SECONDS)
    TIMINGS["a_reexecution"] = round(time.perf_counter() - began, 1)
    decision = json.loads(
        stack.s3()
        .get_object(Bucket=stack.bucket, Key=f"{STORAGE_PREFIX}/champion_decision/{TRAINING_MONTH}.json")[
            "Body"
        ]
        .read()
    )
    assert decision["outcome"] == "first champion", decision
    # The model in force for April, for (b) and (c).
    backfill = gql.launch_backfill(["model_in_force"], [SCORING_MONTH], title="April's model")
    gql.wait_run(gql.wait_backfill_run(backfill, 120)["runId"], RUN_SECONDS)
    assert not problems, "\n".join(problems)


def test_b_s3_down_mid_backfill(stack):
    gql = stack.graphql()
    began = time.perf_counter()
    backfill = gql.launch_backfill(SCORING_ASSETS, DAYS, title="30 days, S3 goes down")
    run_id = gql.wait_backfill_run(backfill, 120)["runId"]
    _wait_first_materialization(gql, run_id, RUN_SECONDS)
    stack.proxy.down()
    down_at = time.time()
    try:
        run = gql.wait_run(run_id, RUN_SECONDS, expect="FAILURE")
        text = gql.failure_text(run_id)
        TIMINGS["b_s3_down_to_run_failed"] = round(run["endTime"] - down_at, 1)
        TIMINGS["b_failed_steps"] = _failed_steps(gql, run_id)
        TIMINGS["b_step_retries"] = _retries(gql, run_id)
        print(f"\n(b) S3 down: run {run_id} failed {TIMINGS['b_s3_down_to_run_failed']} s after S3 went down, "
              f"steps {TIMINGS['b_failed_steps']}; errors:\n{text[:3000]}")  # fmt: skip
        assert re.search(r"\bS3\b", text), f"the failure does not name S3:\n{text}"
        assert TIMINGS["b_s3_down_to_run_failed"] < FAILURE_HANDLING_SECONDS, text
    finally:
        stack.proxy.up()
    _check_recorded_partitions_intact(stack, gql, [run_id])
    retry = gql.reexecute(run_id, "FROM_FAILURE")
    gql.wait_run(retry, RUN_SECONDS)
    TIMINGS["b_total"] = round(time.perf_counter() - began, 1)
    _check_recorded_partitions_intact(stack, gql, [run_id, retry])
    _check_every_partition(stack, gql)


def test_c_run_worker_killed_mid_backfill(stack):
    gql = stack.graphql()
    began = time.perf_counter()
    assert not stack.run_workers(), "a run is still executing"
    backfill = gql.launch_backfill(SCORING_ASSETS, DAYS, title="30 days, the run process is killed")
    run_id = gql.wait_backfill_run(backfill, 120)["runId"]
    _wait_first_materialization(gql, run_id, RUN_SECONDS)
    workers = stack.run_workers()
    assert len(workers) == 1, f"run workers below the code server: {workers}"
    os.kill(workers[0], signal.SIGKILL)
    killed = time.time()
    run = gql.wait_run(run_id, RUN_SECONDS, expect="FAILURE")
    TIMINGS["c_kill_to_run_failed"] = round(time.time() - killed, 1)
    retries = gql.wait_for(
        f"a retry of run {run_id} (run retries)",
        lambda: gql.runs(tags={"dagster/parent_run_id": run_id}),
        180,
        every=2,
    )
    assert len(retries) == 1, retries
    retry = retries[0]
    assert retry["tags"].get("dagster/retry_number") == "1", retry["tags"]
    gql.wait_run(retry["runId"], RUN_SECONDS)
    TIMINGS["c_total"] = round(time.perf_counter() - began, 1)
    print(f"\n(c) SIGKILL: run {run_id} marked {run['status']} {TIMINGS['c_kill_to_run_failed']} s after the kill; "
          f"retry {retry['runId']} succeeded; the run's log:\n{gql.failure_text(run_id)[:2000]}")  # fmt: skip
    _check_recorded_partitions_intact(stack, gql, [run_id, retry["runId"]])
    _check_every_partition(stack, gql)
