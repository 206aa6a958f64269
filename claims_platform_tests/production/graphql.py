"""A small client of `dagster-webserver`'s GraphQL API (POST /graphql): what the UI sends to launch,
re-execute and watch runs and backfills, and to read what they recorded.

Only the queries and mutations the production tests need, with the shapes of dagster-graphql 1.13
(``dagster_graphql/schema/inputs.py``: ``ExecutionParams``, ``LaunchBackfillParams``,
``ReexecutionParams``). Every error comes back as an ``AssertionError`` naming the GraphQL type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests

REPOSITORY = "__repository__"  # the repository name of a `Definitions` object
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
ERROR_FIELDS = """
    ... on PythonError { message stack }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConfigValidationInvalid { errors { message reason } }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on PresetNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
    ... on NoModeProvidedError { message }
"""

LAUNCH_RUN = (
    """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
"""
    + ERROR_FIELDS
    + "  }\n}\n"
)

LAUNCH_BACKFILL = (
    """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
"""
    + ERROR_FIELDS
    + "  }\n}\n"
)

REEXECUTE = (
    """
mutation Reexecute($reexecutionParams: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
"""
    + ERROR_FIELDS
    + "  }\n}\n"
)

RUN_FIELDS = """
  runId jobName status startTime endTime creationTime
  tags { key value }
  assetSelection { path }
"""

RUN = (
    """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {"""
    + RUN_FIELDS
    + """}
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""
)

RUNS = (
    """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results {"""
    + RUN_FIELDS
    + """} }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message }
  }
}
"""
)

EVENTS = """
query Events($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after, limit: 5000) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey timestamp }
        ... on ExecutionStepFailureEvent { error { message className causes { message } } failureMetadata { label } }
        ... on RunFailureEvent { error { message causes { message } } }
        ... on EngineEvent { error { message } }
        ... on MaterializationEvent { assetKey { path } partition }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions error { message } }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

RELOAD = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    ... on PythonError { message }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
  }
}
"""

DAEMONS = """
query Daemons {
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required lastHeartbeatErrors { message } } } }
}
"""

SCHEDULE = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule {
      name cronSchedule executionTimezone
      scheduleState { status ticks(limit: 10) { id status timestamp runIds error { message } skipReason } }
    }
    ... on PythonError { message }
    ... on ScheduleNotFoundError { message }
  }
}
"""

SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      name
      sensorState { status ticks(limit: 20) { id status timestamp runIds error { message } skipReason } }
    }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""

ASSET_PARTITIONS = """
query AssetPartitions($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetMaterializations(limit: 1000) { partition runId timestamp }
      assetChecksOrError { __typename ... on AssetChecks { checks { name executionForLatestMaterialization { status runId evaluation { success severity } } } } }
    }
    ... on AssetNotFoundError { message }
  }
}
"""


def tags_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (tags or {}).items()]


def asset_keys(names: Iterable[str]) -> list[dict[str, list[str]]]:
    return [{"path": [name]} for name in names]


@dataclass
class DagsterGraphQL:
    """The webserver at ``url`` (``http://127.0.0.1:<port>``) and the code location it serves."""

    url: str
    location: str = "claims_platform"
    repository: str = REPOSITORY
    tails: Callable[[], str] = lambda: ""  # the services' log tails, appended to failure messages
    timeout: float = 60.0

    # -- transport --------------------------------------------------------------------------------

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": text, "variables": variables or {}}, timeout=self.timeout
        )
        if response.status_code != 200:
            raise AssertionError(f"GraphQL HTTP {response.status_code}: {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    @staticmethod
    def _expect(result: dict[str, Any], typename: str, what: str) -> dict[str, Any]:
        if result.get("__typename") != typename:
            raise AssertionError(f"{what}: {result.get('__typename')}: {result}")
        return result

    # -- workspace and daemons --------------------------------------------------------------------

    def location_error(self) -> str | None:
        """None once the code location is loaded; else why not (its error, or its load status)."""
        data = self.query(WORKSPACE)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            return str(data)
        for entry in data["locationEntries"]:
            if entry["name"] == self.location:
                loaded = entry["locationOrLoadError"]
                if loaded and loaded["__typename"] == "RepositoryLocation":
                    return None
                return f"{entry['loadStatus']}: {loaded}"
        return f"no location {self.location}"

    def reload_location(self) -> dict[str, Any]:
        return self.query(RELOAD, {"name": self.location})["reloadRepositoryLocation"]

    def wait_for_location(self, seconds: float) -> None:
        """Until the webserver has the code location loaded (reloading it while its code server starts)."""
        deadline = time.monotonic() + seconds
        error = None
        while time.monotonic() < deadline:
            try:
                error = self.location_error()
                if error is None:
                    return
                if "LOADING" not in error:
                    self.reload_location()
            except (requests.RequestException, AssertionError) as problem:
                error = str(problem)
            time.sleep(1)
        raise AssertionError(
            f"the code location did not load within {seconds:.0f} s: {error}\n{self.tails()}"
        )

    def reload_until_loaded(self, seconds: float) -> None:
        """The UI's "Reload" of the code location, repeated until it loads (its code server may be starting)."""
        deadline = time.monotonic() + seconds
        result: Any = None
        while time.monotonic() < deadline:
            try:
                result = self.reload_location()
                loaded = (result.get("locationOrLoadError") or {}).get("__typename")
                if loaded == "RepositoryLocation" or (loaded is None and self.location_error() is None):
                    return
            except (requests.RequestException, AssertionError) as problem:
                result = str(problem)
            time.sleep(1)
        raise AssertionError(
            f"the code location did not reload within {seconds:.0f} s: {result}\n{self.tails()}"
        )

    def unhealthy_daemons(self, wanted: Iterable[str]) -> list[str]:
        statuses = self.query(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        healthy = {s["daemonType"] for s in statuses if s["healthy"]}
        return sorted(set(wanted) - healthy)

    def wait_for_daemons(self, wanted: Iterable[str], seconds: float) -> None:
        wanted = list(wanted)
        deadline = time.monotonic() + seconds
        missing = wanted
        while time.monotonic() < deadline:
            missing = self.unhealthy_daemons(wanted)
            if not missing:
                return
            time.sleep(1)
        raise AssertionError(f"daemons not healthy within {seconds:.0f} s: {missing}\n{self.tails()}")

    # -- launching ----------------------------------------------------------------------------------

    def launch_run(
        self,
        job: str,
        *,
        partition: str | None = None,
        run_config: dict | None = None,
        tags: dict[str, str] | None = None,
        assets: list[str] | None = None,
    ) -> str:
        """Launch (queue) a run of ``job`` as the UI's Launchpad does; returns its id."""
        selector: dict[str, Any] = {
            "repositoryLocationName": self.location,
            "repositoryName": self.repository,
            "jobName": job,
        }
        if assets:
            selector["assetSelection"] = asset_keys(assets)
        all_tags = dict(tags or {})
        if partition:
            all_tags["dagster/partition"] = partition
        params = {
            "selector": selector,
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": tags_list(all_tags)},
        }
        result = self.query(LAUNCH_RUN, {"executionParams": params})["launchRun"]
        return self._expect(result, "LaunchRunSuccess", f"launchRun {job}")["run"]["runId"]

    def launch_backfill(
        self,
        assets: list[str],
        partitions: list[str],
        *,
        tags: dict[str, str] | None = None,
        title: str | None = None,
        run_config: dict | None = None,
    ) -> str:
        """Launch an asset backfill of ``partitions`` of ``assets`` (the UI's "Materialize selected"); its id."""
        params: dict[str, Any] = {
            "assetSelection": asset_keys(assets),
            "partitionNames": partitions,
            "tags": tags_list(tags),
        }
        if title:
            params["title"] = title
        if run_config:
            params["runConfigData"] = run_config
        result = self.query(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
        return self._expect(result, "LaunchBackfillSuccess", f"launchPartitionBackfill {assets}")[
            "backfillId"
        ]

    def reexecute(self, run_id: str, strategy: str = "FROM_FAILURE") -> str:
        """The UI's Re-execute (``FROM_FAILURE``, ``FROM_ASSET_FAILURE`` or ``ALL_STEPS``); the new run's id."""
        params = {"parentRunId": run_id, "strategy": strategy}
        result = self.query(REEXECUTE, {"reexecutionParams": params})["launchRunReexecution"]
        return self._expect(result, "LaunchRunSuccess", f"re-execution of {run_id}")["run"]["runId"]

    # -- reading ------------------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        result = self.query(RUN, {"runId": run_id})["runOrError"]
        run = self._expect(result, "Run", f"run {run_id}")
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return run

    def active_runs(self) -> list[dict]:
        return self.runs(statuses=["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"])

    def runs(
        self, *, tags: dict[str, str] | None = None, job: str | None = None, statuses=None, limit=100
    ) -> list[dict]:
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = tags_list(tags)
        if job:
            run_filter["pipelineName"] = job
        if statuses:
            run_filter["statuses"] = list(statuses)
        result = self.query(RUNS, {"filter": run_filter, "limit": limit})["runsOrError"]
        runs = self._expect(result, "Runs", "runs")["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def events(self, run_id: str) -> list[dict[str, Any]]:
        events, cursor = [], None
        while True:
            result = self.query(EVENTS, {"runId": run_id, "after": cursor})["logsForRun"]
            page = self._expect(result, "EventConnection", f"events of {run_id}")
            events.extend(page["events"])
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def failure_text(self, run_id: str) -> str:
        """Every error message of a run's log (step failures, the run failure, engine events), one per line."""
        lines = []
        for event in self.events(run_id):
            error = event.get("error")
            if error:
                causes = " <- ".join(c["message"].strip() for c in error.get("causes") or [])
                lines.append(
                    f"{event['__typename']} {event.get('stepKey') or ''}: {error['message'].strip()}"
                    + (f" <- {causes}" if causes else "")
                )
            elif event["__typename"] in (
                "RunFailureEvent",
                "ExecutionStepFailureEvent",
                "EngineEvent",
            ) and event.get("message"):
                lines.append(f"{event['__typename']}: {event['message']}")
        return "\n".join(lines)

    def materialized(self, run_id: str) -> dict[str, set[str]]:
        """Asset -> partitions materialized in the run (from its event log)."""
        out: dict[str, set[str]] = {}
        for event in self.events(run_id):
            if event["__typename"] == "MaterializationEvent":
                out.setdefault("/".join(event["assetKey"]["path"]), set()).add(event["partition"])
        return out

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        result = self.query(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        return self._expect(result, "PartitionBackfill", f"backfill {backfill_id}")

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        return self.runs(tags={"dagster/backfill": backfill_id})

    def schedule(self, name: str) -> dict[str, Any]:
        selector = {
            "repositoryLocationName": self.location,
            "repositoryName": self.repository,
            "scheduleName": name,
        }
        return self._expect(self.query(SCHEDULE, {"selector": selector})["scheduleOrError"], "Schedule", name)

    def sensor(self, name: str) -> dict[str, Any]:
        selector = {
            "repositoryLocationName": self.location,
            "repositoryName": self.repository,
            "sensorName": name,
        }
        return self._expect(self.query(SENSOR, {"selector": selector})["sensorOrError"], "Sensor", name)

    def asset(self, name: str) -> dict[str, Any]:
        result = self.query(ASSET_PARTITIONS, {"key": {"path": [name]}})["assetNodeOrError"]
        return self._expect(result, "AssetNode", name)

    # -- waiting ------------------------------------------------------------------------------------

    def wait_run(self, run_id: str, seconds: float, *, expect: str | None = "SUCCESS") -> dict[str, Any]:
        """Until the run finishes; fails (with its errors and the services' logs) on timeout or another status."""
        deadline = time.monotonic() + seconds
        while True:
            run = self.run(run_id)
            if run["status"] in FINISHED:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} ({run['jobName']}) still {run['status']} after {seconds:.0f} s\n"
                    f"{self.failure_text(run_id)}\n{self.tails()}"
                )
            time.sleep(1)
        if expect is not None and run["status"] != expect:
            raise AssertionError(
                f"run {run_id} ({run['jobName']}, tags {run['tags']}) ended {run['status']}, expected {expect}:\n"
                f"{self.failure_text(run_id)}\n{self.tails()}"
            )
        return run

    def wait_for(self, what: str, probe: Callable[[], Any], seconds: float, every: float = 1.0) -> Any:
        """Until ``probe()`` returns something truthy (returned); fails naming ``what``."""
        deadline = time.monotonic() + seconds
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {seconds:.0f} s\n{self.tails()}")
            time.sleep(every)

    def wait_backfill_run(self, backfill_id: str, seconds: float) -> dict[str, Any]:
        """The ONE run of a single-run backfill, once it exists."""
        runs = self.wait_for(
            f"a run of backfill {backfill_id}", lambda: self.backfill_runs(backfill_id), seconds
        )
        return runs[0]
