"""Two monthly runs launched at once end with one champion: the decisions take turns (a Dagster pool).

Two processes run `monthly_training` for the same month against one persistent Dagster instance
whose `champion_chain` pool has one slot, sharing the warehouse, the storage and one MLflow registry
on PostgreSQL (two processes writing one SQLite file would test SQLite's locking, not ours).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import date

import dagster as dg
import pytest
import yaml

from claims_platform.models.assets import CHAMPION_POOL
from claims_platform.models.registry import CHAMPION, ModelRegistry

pytestmark = pytest.mark.integration

RUN_ONE_MONTH = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from claims_platform.definitions import build_definitions, build_resources
    home, tracking_uri, month = sys.argv[1:4]
    defs = build_definitions(build_resources(
        warehouse_url=f"sqlite:///{home}/warehouse.db", storage_url=f"{home}/storage",
        tracking_uri=tracking_uri, artifact_location=f"file://{home}/mlartifacts"))
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}, "ops": {
        "candidate_model": {"config": {"n_trials": 2, "warm_start_trials": 2, "tuning_rows": 5000, "max_boost_rounds": 100}}}}
    result = defs.resolve_job_def("monthly_training").execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key=month, run_config=config, raise_on_error=False)
    print(result.run_id)
    sys.exit(0 if result.success else 1)
    """
)


def _run(home, tracking_uri: str, month: str) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", RUN_ONE_MONTH, str(home), tracking_uri, month],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _step_window(instance: dg.DagsterInstance, run_id: str, step: str) -> tuple[float, float]:
    events = instance.all_logs(run_id)
    times = {
        e.dagster_event.event_type: e.timestamp
        for e in events
        if e.is_dagster_event
        and e.dagster_event.step_key == step
        and e.dagster_event.event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)
    }
    return times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]


def _blocked_runs(instance: dg.DagsterInstance) -> set[str]:
    runs = instance.get_runs(dg.RunsFilter(job_name="monthly_training"))
    return {
        run.run_id
        for run in runs
        if any(
            f"blocked by limit for pool {CHAMPION_POOL}" in (e.message or "")
            for e in instance.all_logs(run.run_id)
        )
    }


def _wait_until_both_are_blocked(instance: dg.DagsterInstance, processes, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_blocked_runs(instance)) < 2:
        ended = [p for p in processes if p.poll() is not None]
        if ended:
            for p in processes:  # the other one waits for the pool for ever: stop it before reading
                if p not in ended:
                    p.kill()
            raise AssertionError(
                f"a run ended before waiting for the pool: {[p.communicate()[1][-2000:] for p in processes]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError("the two runs did not both wait for the champion_chain pool")
        time.sleep(1.0)


def test_two_monthly_runs_at_once_take_turns_and_end_with_one_champion(tmp_path, postgres_url):
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    home = tmp_path
    # The instance: SQLite storage, and one slot in every pool (the champion chain's is the only one).
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"concurrency": {"pools": {"default_limit": 1, "granularity": "op"}}})
    )
    simulate_range(Warehouse(f"sqlite:///{home / 'warehouse.db'}"), date(2025, 1, 1), date(2025, 3, 31))
    registry = ModelRegistry(tracking_uri=postgres_url)
    registry.client().search_registered_models()  # MLflow creates its schema once, not in both runs at once
    from claims_platform.definitions import build_definitions, build_resources
    from claims_platform_tests.dagster_helpers import range_tags

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.get()
        defs = build_definitions(
            build_resources(
                warehouse_url=f"sqlite:///{home}/warehouse.db",
                storage_url=f"{home}/storage",
                tracking_uri=postgres_url,
                artifact_location=f"file://{home}/mlartifacts",
            )
        )
        assert (
            defs.resolve_job_def("daily_ingestion")
            .execute_in_process(
                instance=instance,
                tags=range_tags("2025-01-01", "2025-03-31"),
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            .success
        )

        # Hold the pool's one slot, launch both runs, and let go only once BOTH wait for it: the
        # decisions then contend for real, whatever the two trainings' durations.
        storage = instance.event_log_storage
        storage.set_concurrency_slots(CHAMPION_POOL, 1)
        assert storage.claim_concurrency_slot(CHAMPION_POOL, "held-by-the-test", "hold").is_claimed
        processes = _run(home, postgres_url, "2025-03-01"), _run(home, postgres_url, "2025-03-01")
        try:
            _wait_until_both_are_blocked(instance, processes)
        finally:
            storage.free_concurrency_slot_for_step("held-by-the-test", "hold")
        outputs = [process.communicate(timeout=600) for process in processes]
        assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
        run_ids = [out.strip().splitlines()[-1] for out, _ in outputs]

        # The two decisions did not overlap: one waited for the other to finish.
        (start_a, end_a), (start_b, end_b) = sorted(
            _step_window(instance, r, "champion_decision") for r in run_ids
        )
        assert end_a <= start_b

        # One champion: the alias is the one of the decision stored last, which judged its own candidate.
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("champion_decision"), asset_partitions=["2025-03-01"]
            ),
            limit=1,
        ).records[0]
        decision = latest.asset_materialization.metadata["decision"].value
        assert registry.alias_version(CHAMPION) == decision["champion"]["version"]
        versions = registry.client().search_model_versions(f"name='{registry.model_name}'")
        assert sorted(int(v.version) for v in versions) == [1, 2]
    finally:
        os.environ.pop("DAGSTER_HOME", None)
