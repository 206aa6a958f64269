"""`claims-platform demo`: runs linked to the code location, the first day as configuration, quiet output.

The demo's own helpers run a small world in a subprocess, as `make demo` runs: its own ``CLAIMS_HOME``
and ``DAGSTER_HOME``, the definitions imported with that environment, the code location loaded from
``workspace.yaml`` by a code server, and a working directory without a ``.env`` (Dagster's processes
read ``.env`` from theirs, and the repo's may hold a demo's ``CLAIMS_FIRST_DAY``). The UI's view is
read through Dagster's GraphQL API, the way the UI reads it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from claims_platform.cli import demo
from claims_platform.core import project_env, settings

pytestmark = pytest.mark.slow  # the demo's world built and run: `make test`, not `make test-fast`

DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
telemetry:
  enabled: false
"""

# A demo-like sequence on a small world whose first day is the first of last month: ingest every
# day to yesterday as one run and one day again as a partition run, tick the monitoring sensor as
# the daemon would; then what the UI asks the GraphQL API, and a re-execution as its button asks.
DEMO_LIKE = textwrap.dedent(
    """
    import json, sys
    from datetime import date, timedelta
    from claims_platform.core import settings
    from claims_platform.cli import runs
    runs.quiet_output()
    import dagster as dg
    from dagster_graphql.test.utils import execute_dagster_graphql
    from claims_platform.core.alerts import alerts_from_env
    from claims_platform.assembly.monitoring_sensors import monitoring_alert_sensor
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    first, last = settings.FIRST_DAY, date.fromisoformat(sys.argv[1])
    warehouse = Warehouse(settings.default_warehouse_url())
    simulate_range(warehouse, first, last, seed=3)
    warehouse.dispose()
    instance = dg.DagsterInstance.get()
    REPO = {"repositoryLocationName": "claims_platform", "repositoryName": "__repository__"}
    out = {}
    with runs.LocalPlatform(instance, tags={"source": "test"}) as platform:
        ranged = platform.run("daily_ingestion", runs.range_request(first.isoformat(), last.isoformat()))
        single = platform.run("daily_ingestion", dg.RunRequest(partition_key=last.isoformat()))
        out["valid_rows"] = sum(m["valid_rows"] for m in platform.materialized(ranged, "applications").values())
        tick = platform.tick(monitoring_alert_sensor, resources={"alerts": alerts_from_env()})
        out["tick"] = [len(tick.run_requests or []), tick.skip_message]
        runs = {run.run_id: run for run in (ranged, single)}
        out["origins"] = {
            run_id: [run.remote_job_origin.location_name, run.remote_job_origin.repository_origin.repository_name,
                     run.job_code_origin.repository_origin.code_pointer.module]
            for run_id, run in runs.items()
        }
        context = platform.request_context

        def gql(query, **variables):
            result = execute_dagster_graphql(context, query, variables)
            assert not result.errors, result.errors
            return result.data

        # The job page's run list (the UI's query filters by job and the repository tag).
        out["job_runs"] = gql(
            '''query ($filter: RunsFilter!) { pipelineRunsOrError: runsOrError(filter: $filter) {
                 ... on Runs { results { runId status repositoryOrigin { repositoryLocationName repositoryName } } } } }''',
            filter={"pipelineName": "daily_ingestion",
                    "tags": [{"key": ".dagster/repository", "value": "__repository__@claims_platform"}]},
        )["pipelineRunsOrError"]["results"]
        out["pipeline_runs"] = gql(
            '''query ($selector: PipelineSelector!) { pipelineOrError(params: $selector) {
                 ... on Pipeline { runs { runId } } } }''',
            selector={**REPO, "pipelineName": "daily_ingestion"},
        )["pipelineOrError"]["runs"]
        out["schedules"] = {
            s["name"]: s["scheduleState"]["status"]
            for s in gql(
                '''query ($selector: RepositorySelector!) { schedulesOrError(repositorySelector: $selector) {
                     ... on Schedules { results { name scheduleState { status } } } } }''',
                selector=REPO,
            )["schedulesOrError"]["results"]
        }
        out["sensors"] = {
            s["name"]: s["sensorState"]["status"]
            for s in gql(
                '''query ($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector) {
                     ... on Sensors { results { name sensorState { status } } } } }''',
                selector=REPO,
            )["sensorsOrError"]["results"]
        }
        out["applications_partitions"] = gql(
            '''query { assetNodes(assetKeys: [{path: ["applications"]}]) {
                 partitionStats { numMaterialized numPartitions } } }'''
        )["assetNodes"][0]["partitionStats"]
        relaunched = gql(
            '''mutation ($parent: String!) { launchPipelineReexecution(
                 reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
                 __typename ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }''',
            parent=single.run_id,
        )["launchPipelineReexecution"]
        out["reexecution"] = relaunched["__typename"]
        child = instance.get_run_by_id(relaunched["run"]["runId"])
        out["reexecution_run"] = [child.parent_run_id == single.run_id, child.status.value,
                                  child.remote_job_origin.location_name, child.tags.get("dagster/partition")]
        state = instance.get_instigator_state(
            platform.repository.get_sensor(monitoring_alert_sensor.name).get_remote_origin_id(),
            platform.repository.get_sensor(monitoring_alert_sensor.name).selector_id,
        )
        out["monitoring_state"] = [state.status.value, state.instigator_data.cursor]
    print("RESULT " + json.dumps(out, sort_keys=True))
    """
)


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """Run the demo-like sequence in a subprocess; its RESULT line and everything it printed."""
    base = tmp_path_factory.mktemp("demo_like")
    (base / "dagster").mkdir()
    (base / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML.format(home=base / "dagster"))
    today = datetime.now(UTC).date()
    first = demo.target_first_day(today, 1)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_", "AWS_"))
    }
    env.update(
        {
            "DAGSTER_HOME": str(base / "dagster"),
            settings.ENV_HOME: str(base / "claims"),
            settings.ENV_FIRST_DAY: first.isoformat(),
            "DO_NOT_TRACK": "1",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", DEMO_LIKE, (today - timedelta(days=1)).isoformat()],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(result.removeprefix("RESULT ")), printed


def test_demo_runs_are_linked_to_the_code_location(demo_like: tuple[dict, str]) -> None:
    result, _ = demo_like
    assert result["valid_rows"] > 0
    run_ids = set(result["origins"])
    assert len(run_ids) == 2
    # Each run carries the origins a daemon-launched run carries: the location of workspace.yaml and the
    # module its run worker rebuilds the job from.
    assert all(
        origin == ["claims_platform", "__repository__", "claims_platform.definitions"]
        for origin in result["origins"].values()
    )
    # The job page lists them (the UI's query), and each run shows the repository it belongs to.
    listed = {run["runId"]: run for run in result["job_runs"]}
    assert run_ids <= set(listed)
    assert all(
        listed[run_id]["status"] == "SUCCESS"
        and listed[run_id]["repositoryOrigin"]
        == {"repositoryLocationName": "claims_platform", "repositoryName": "__repository__"}
        for run_id in run_ids
    )
    assert run_ids <= {run["runId"] for run in result["pipeline_runs"]}
    # Re-execute, as the UI's button asks: a new run of the same location, queued for the daemon.
    assert result["reexecution"] == "LaunchRunSuccess"
    assert result["reexecution_run"][:3] == [True, "QUEUED", "claims_platform"]


def test_schedules_and_sensors_run_by_default_and_the_monitoring_cursor_is_kept(
    demo_like: tuple[dict, str],
) -> None:
    result, _ = demo_like
    # What the daemon of `make dev` ticks: every schedule and sensor is running without anyone starting it.
    assert result["schedules"] == {
        "monthly_training_schedule": "RUNNING",
        "nightly_scoring_schedule": "RUNNING",
    }
    assert result["sensors"] and set(result["sensors"].values()) == {"RUNNING"}, result["sensors"]
    # The demo's tick left the sensor's cursor in the instance, still running by default: the daemon
    # goes on from it instead of raising the demo's alerts again.
    status, cursor = result["monitoring_state"]
    assert status == "DECLARED_IN_CODE"
    assert json.loads(cursor) == {"drift": [], "drift_retrain": [], "performance": []}
    assert result["tick"][0] == 0 and result["tick"][1]


def test_partitions_start_on_the_first_day_so_nothing_shows_missing(demo_like: tuple[dict, str]) -> None:
    result, _ = demo_like
    stats = result["applications_partitions"]
    # CLAIMS_FIRST_DAY is the first of last month and every day to yesterday was ingested: the UI's bar is full.
    assert stats["numPartitions"] >= 28
    assert stats["numMaterialized"] == stats["numPartitions"]


def test_demo_output_holds_no_library_warning(demo_like: tuple[dict, str]) -> None:
    _, printed = demo_like
    noisy = [line for line in printed.splitlines() if re.search(r"warn", line, re.IGNORECASE)]
    assert noisy == [], "\n".join(noisy[:20])


PARTITION_STARTS = (
    "from claims_platform.core import partitions as p; "
    "print(p.daily_partitions.start.date(), p.monthly_partitions.start.date(), p.scoring_months.start.date())"
)


def _starts(first_day: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != settings.ENV_FIRST_DAY}
    if first_day is not None:
        env[settings.ENV_FIRST_DAY] = first_day
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PARTITION_STARTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_claims_first_day_sets_where_the_partitions_start() -> None:
    assert _starts(None).stdout.split() == ["2025-01-01"] * 3
    assert _starts("2026-03-01").stdout.split() == ["2026-03-01"] * 3
    refused = _starts("2026-03-15")
    assert refused.returncode != 0
    assert "CLAIMS_FIRST_DAY must be the first day of a month" in refused.stderr


def test_first_day_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ENV_FIRST_DAY, "2024-07-01")
    assert settings.first_day_from_env() == date(2024, 7, 1)
    monkeypatch.setenv(settings.ENV_FIRST_DAY, "July")
    with pytest.raises(ValueError, match="CLAIMS_FIRST_DAY must be a date"):
        settings.first_day_from_env()
    monkeypatch.delenv(settings.ENV_FIRST_DAY)
    assert settings.first_day_from_env() == settings.DEFAULT_FIRST_DAY == date(2025, 1, 1)


def test_the_demo_world_starts_six_months_back_unless_the_instance_holds_earlier_days() -> None:
    today = date(2026, 11, 26)
    assert demo.demo_window(today, 6) == demo.DemoWindow(date(2026, 5, 1), date(2026, 11, 25))
    # Run again a month later: the first day stays where the instance's history starts.
    assert demo.demo_window(date(2026, 12, 3), 6, history_start=date(2026, 5, 1)).first_day == date(
        2026, 5, 1
    )
    assert demo.choose_first_day(date(2026, 6, 1), date(2026, 5, 17)) == date(2026, 5, 1)
    # Later history (an earlier, shorter demo) does not shorten the world.
    assert demo.choose_first_day(date(2026, 5, 1), date(2026, 8, 1)) == date(2026, 5, 1)
    assert demo.target_first_day(date(2026, 1, 31), 6) == date(2025, 7, 1)


def test_env_line_is_created_or_replaced_and_other_lines_stay(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    project_env.set_env_line(env_file, "CLAIMS_FIRST_DAY", "2026-05-01")
    assert env_file.read_text() == "CLAIMS_FIRST_DAY=2026-05-01\n"
    env_file.write_text(
        "# my settings\nCLAIMS_ALERT_WEBHOOK_URL=https://hooks.example/x\nexport CLAIMS_FIRST_DAY=2025-01-01\n"
        "# CLAIMS_FIRST_DAY=2020-01-01\nCLAIMS_FIRST_DAY = 2025-02-01\nAWS_REGION=eu-west-2"
    )
    project_env.set_env_line(env_file, "CLAIMS_FIRST_DAY", "2026-06-01")
    assert env_file.read_text().splitlines() == [
        "# my settings",
        "CLAIMS_ALERT_WEBHOOK_URL=https://hooks.example/x",
        "CLAIMS_FIRST_DAY=2026-06-01",
        "# CLAIMS_FIRST_DAY=2020-01-01",
        "AWS_REGION=eu-west-2",
    ]
