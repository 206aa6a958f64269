"""Runs of the code location ``claims_platform``, made from the command line as the daemon and the UI make them.

:class:`LocalPlatform` loads the location of ``workspace.yaml`` (a code server, as `make dev` starts
it) and creates each run from the location's remote job, so the UI lists it under its job, the
timeline shows it, and Re-execute works. `claims-platform demo` and `claims-platform run` use it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from claims_platform.core import settings

# The code location as `make dev` loads it (workspace.yaml).
LOCATION = "claims_platform"
WORKSPACE_FILE = settings.REPO_ROOT / "workspace.yaml"
# Runs log every event to the instance (the UI shows them); on the terminal the commands print their own
# account. The first months' training failures, expected, would otherwise print as errors.
RUN_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class PlatformRunError(Exception):
    """A run did not succeed (or the location did not load): the message says why and where to look."""


# Library notices about the platform's own code, which a user cannot act on (message prefixes):
# MLflow's schema inference hints that integer columns cannot hold missing values whenever a frame
# with int columns is logged as a dataset (the registered model's signature is typed from the data
# contract instead), and MLflow registers its local-file dataset source twice, so every local
# dataset "can be interpreted in multiple ways: LocalArtifactDatasetSource, LocalArtifactDatasetSource".
LIBRARY_NOTICES = (
    "Hint: Inferred schema contains integer column",
    "The specified dataset source can be interpreted in multiple ways",
)


def quiet_output() -> None:
    """Keep notices a user cannot act on off the terminal (the runs' logs keep every event).

    Dagster's beta and preview notices concern the platform's code, not the user, and so do
    ``LIBRARY_NOTICES``; MLflow's INFO logging and download progress bars would bury the summary.
    """
    import warnings

    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    for message in LIBRARY_NOTICES:
        warnings.filterwarnings("ignore", message=re.escape(message), category=UserWarning)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def quiet_mlflow() -> None:
    """MLflow prints every registration ("Registered model ... already exists", "Created version N"):
    the commands' own lines name each version. (Imports MLflow: call it when training is next.)

    Entered for the rest of the process: MLflow's own silent mode (what ``autolog(silent=True)``
    enters), counted, so a module MLflow imports later (``mlflow.types.responses`` mutes itself while
    it loads) does not switch the prints back on when it is done. MLflow's warnings are untouched.
    """
    from mlflow.utils.autologging_utils import MlflowEventsAndWarningsBehaviorGlobally

    MlflowEventsAndWarningsBehaviorGlobally(
        disable_event_logs=True, disable_warnings=False, reroute_warnings=False
    ).__enter__()


def open_instance():
    """The Dagster instance of ``DAGSTER_HOME``: by default the repo root, whose ``dagster.yaml`` `make dev` uses too."""
    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT))
    return DagsterInstance.get()


def history_start(instance) -> date | None:
    """The earliest day or month the instance has materialized `applications` or `champion_decision` for."""
    from dagster import AssetKey

    keys = [
        key
        for asset in ("applications", "champion_decision")
        for key in instance.get_materialized_partitions(AssetKey(asset))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", key)
    ]
    return date.fromisoformat(min(keys)) if keys else None


class LocalPlatform:
    """The code location ``claims_platform`` of ``workspace.yaml``, loaded as `make dev` loads it, and
    runs made in it.

    Each run is created in the instance from the location's REMOTE job, with the call the daemon
    makes for a sensor's or a schedule's run request and the UI's Launch makes
    (``instance.create_run`` with the remote job's snapshot, its execution plan from the code server,
    and the run's ``remote_job_origin`` and ``job_code_origin``), so the run carries the
    ``.dagster/repository`` tag and origin the UI needs: the job's page lists it, the timeline
    shows it, Re-execute works. The run is then executed in THIS process (``execute_run``: what a
    run worker does with it), or with ``launch=True`` launched by the instance's run launcher into a
    run worker process of its own, as the daemon's run queue does (slower: each worker imports the
    code location and the libraries again).
    """

    def __init__(
        self,
        instance,
        *,
        tags: dict[str, str],
        workspace_file: Path = WORKSPACE_FILE,
        location: str = LOCATION,
        launch: bool = False,
    ):
        self.instance = instance
        self.tags = tags
        self.workspace_file = workspace_file
        self.location = location
        self.launch = launch
        self._context = None
        self._loader = None

    def open(self) -> LocalPlatform:
        """Start the location's code server (a subprocess, as `dagster dev` does) and load the definitions."""
        from claims_platform.adapters import dagster_internals  # Dagster's internals, imported when used

        # The code server's own notices (its start, beta warnings at import) are not the user's.
        self._context = dagster_internals.open_workspace(self.instance, self.workspace_file)
        request = self._context.create_request_context()
        error = request.get_code_location_error(self.location)
        if error is not None:
            raise PlatformRunError(
                f"the code location {self.location} of {self.workspace_file} did not load:\n{error.to_string()}"
            )
        self.request_context = request
        self.code_location = request.get_code_location(self.location)
        (self.repository,) = self.code_location.get_repositories().values()

        from claims_platform.definitions import defs

        self.defs = defs
        self._loader = defs.get_asset_value_loader(self.instance)
        self._loader.__enter__()
        return self

    def close(self) -> None:
        if self._loader is not None:
            self._loader.__exit__(None, None, None)
            self._loader = None
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def __enter__(self) -> LocalPlatform:
        try:
            return self.open()
        except BaseException:
            self.close()  # the code server, if it started
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------------------

    def run(self, job_name: str, request, *, sensor_name: str | None = None):
        """Create a run of ``job_name`` for ``request`` (a ``dg.RunRequest``) in the code location, execute
        it, and return the finished ``DagsterRun``; raises :class:`PlatformRunError` when it did not succeed.

        ``sensor_name``: the sensor that asked for it; the run is tagged with it and the request's run
        key, as the daemon tags a sensor's runs (so the daemon will not ask for it again).
        """
        from dagster import DagsterRunStatus

        from claims_platform.adapters import dagster_internals  # Dagster's internals, imported when used

        if request.partition_key is not None and not request.has_resolved_partition():
            request = request.with_resolved_tags_and_config(self._job_def(job_name), [], self.instance)
        selection = frozenset(request.asset_selection) if request.asset_selection else None
        remote_job = self.code_location.get_job(
            dagster_internals.job_selector(self.location, self.repository.name, job_name, selection)
        )
        run_config = {**RUN_CONSOLE, **(request.run_config or {})}
        plan = self.code_location.get_execution_plan(
            remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        tags = {**(remote_job.run_tags or {}), **self.tags, **request.tags}
        if sensor_name:
            tags[dagster_internals.SENSOR_NAME_TAG] = sensor_name
        if sensor_name and request.run_key:
            tags[dagster_internals.RUN_KEY_TAG] = request.run_key
        with _one_planned_event_per_asset():
            run = dagster_internals.create_run(
                self.instance, job_name, remote_job, plan, self.repository.asset_graph,
                run_config=run_config, tags=tags, asset_selection=selection,
            )  # fmt: skip
        finished = self._launch(run) if self.launch else self._execute(run)
        if finished.status != DagsterRunStatus.SUCCESS:
            raise PlatformRunError(self._failure(finished))
        return finished

    def _job_def(self, job_name: str):
        if job_name == "__ASSET_JOB":
            return self.defs.resolve_implicit_global_asset_job_def()
        return self.defs.resolve_job_def(job_name)

    def _execute(self, run):
        from claims_platform.adapters import dagster_internals

        # What `dagster api execute_run` does in a run worker: the job rebuilt from the run's code origin.
        dagster_internals.execute_run_in_process(self.instance, run)
        return self.instance.get_run_by_id(run.run_id)

    def _launch(self, run):
        self.instance.launch_run(run.run_id, self.request_context)
        while True:
            current = self.instance.get_run_by_id(run.run_id)
            if current.is_finished:
                return current
            time.sleep(0.5)

    def _failure(self, run) -> str:
        from dagster import DagsterEventType

        errors = [
            f"  {entry.step_key}: {entry.dagster_event.step_failure_data.error.message.strip().splitlines()[0]}"
            for entry in self.instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
            if entry.dagster_event.step_failure_data.error
        ]
        return "\n".join(
            [
                f"run {run.run_id} of {run.job_name} ended {run.status.value}",
                *errors,
                f"its log: make dev, then http://127.0.0.1:3000/runs/{run.run_id}",
            ]
        )

    # -- what the runs recorded -------------------------------------------------------------------

    def materialized(self, run, asset: str) -> dict[str, dict[str, Any]]:
        """Partition key -> metadata of each materialization of ``asset`` in ``run`` (what the UI shows)."""
        from dagster import AssetKey, DagsterEventType

        out = {}
        for entry in self.instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.asset_materialization
            if materialization is not None and materialization.asset_key == AssetKey(asset):
                out[materialization.partition] = {k: v.value for k, v in materialization.metadata.items()}
        return out

    def stored(self, asset: str, partition_key: str):
        """The stored value of one partition of ``asset``, read through its IO manager."""
        from dagster import AssetKey

        # The loader logs each load at DEBUG on a console logger of its own (a run logs to its event log).
        with _muted():
            return self._loader.load_asset_value(AssetKey(asset), partition_key=partition_key)

    def stored_range(self, asset: str, first: str, last: str) -> dict[str, Any]:
        """Partition key -> stored value of every partition of ``asset`` from ``first`` to ``last`` (one load)."""
        from dagster import AssetKey, PartitionKeyRange

        with _muted():
            return self._loader.load_asset_value(
                AssetKey(asset), partition_key_range=PartitionKeyRange(first, last)
            )

    # -- sensors ----------------------------------------------------------------------------------

    def tick(self, sensor_def, resources: dict | None = None):
        """Evaluate a sensor once as the daemon would, from its cursor in the instance; keep its new cursor
        there, so the daemon's next tick goes on from it. Returns the evaluation (run requests, skip message)."""
        from dagster import build_sensor_context

        remote = self.repository.get_sensor(sensor_def.name)
        state = self.instance.get_instigator_state(remote.get_remote_origin_id(), remote.selector_id)
        cursor = (
            state.instigator_data.cursor if state is not None and state.instigator_data is not None else None
        )
        context = build_sensor_context(
            instance=self.instance,
            cursor=cursor,
            sensor_name=sensor_def.name,
            resources=resources,
            definitions=self.defs,
        )
        # The daemon keeps a tick's log with the tick; here it would interleave with the progress lines
        # (an alert it sends is in the summary, and at the webhook when one is configured).
        with _muted():
            result = sensor_def.evaluate_tick(context)
        if result.cursor != cursor:
            self._store_cursor(remote, state, result.cursor)
        return result

    def _store_cursor(self, remote, state, cursor: str | None) -> None:
        """What `dagster sensor cursor --set` does, but a sensor without state stays DECLARED_IN_CODE (running
        by default) as the daemon itself records it on its first tick."""
        from claims_platform.adapters import dagster_internals  # Dagster's internals, imported when used

        dagster_internals.store_sensor_cursor(self.instance, remote, state, cursor)


@contextmanager
def _one_planned_event_per_asset() -> Iterator[None]:
    """Meanwhile, a run over a partition range records ONE "materialization planned" event per asset.

    By default Dagster records one per partition (the demo's backfills planned ~900, each its own
    ~20 ms write to the SQLite event log), so that a failed run marks each partition failed.
    ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` is Dagster's opt-in to one event carrying the
    range: a failed run stops the command with its error, but its partitions would show as missing
    rather than failed. Only the command line's own runs: the daemon's runs (``make dev``, production)
    keep Dagster's default.
    """
    name = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


@contextmanager
def _muted() -> Iterator[None]:
    """No log record below ERROR from any logger meanwhile (Dagster's console loggers included)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def range_request(first: str, last: str, **kwargs):
    """A run request for partitions ``first``..``last`` as ONE run (what a single-run backfill makes)."""
    from dagster import RunRequest

    from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

    tags = {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last, **kwargs.pop("tags", {})}
    return RunRequest(tags=tags, **kwargs)
