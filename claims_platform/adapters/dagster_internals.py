"""Dagster's private APIs (and its integrations') the platform relies on, and nothing else (pinned by tests).

Dagster 1.13 keeps these under ``dagster._...``. Each name here says why no public API serves; the
test of this module (``claims_platform_tests/adapters/test_dagster_internals.py``) pins what each one
is relied on for, so that an upgrade that renames or changes one fails THERE, by name, instead of at
a distance in an IO manager, a sensor or the demo.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster._config.errors import PostProcessingError
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    GRPC_INFO_TAG,
    RUN_KEY_TAG,
    SENSOR_NAME_TAG,
)
from dagster._core.storage.upath_io_manager import escape_dotdot_segments, escape_leading_slash, is_dict_type

__all__ = [
    "GRPC_INFO_TAG",
    "PARTITION_RANGE_END_TAG",
    "PARTITION_RANGE_START_TAG",
    "RUN_KEY_TAG",
    "SENSOR_NAME_TAG",
    "CheckRunHealthResult",
    "PickledObjectFilesystemIOManager",
    "WorkerStatus",
    "code_server_current_runs",
    "create_run",
    "execute_run_in_process",
    "is_partition_dict_type",
    "job_selector",
    "open_workspace",
    "refuse_at_launch",
    "safe_partition_path",
    "store_sensor_cursor",
    "upath_asset_path",
    "upath_backcompat_paths",
    "upath_base_path",
    "upath_clear_unpartitioned",
    "upath_output_path",
    "upath_partition_paths",
    "upath_uri",
]

# The tags of a run over a partition range (what a single-run backfill and a ranged RunRequest carry).
# Public only as strings in the docs: one constant, here, for every module that reads or writes them.
PARTITION_RANGE_START_TAG = ASSET_PARTITION_RANGE_START_TAG
PARTITION_RANGE_END_TAG = ASSET_PARTITION_RANGE_END_TAG


# ------------------------------------------------------------------------------ IO managers


def is_partition_dict_type(typing_type: Any) -> bool:
    """Whether an input's annotation asks for ``dict[partition key, value]``: ``UPathIOManager`` decides
    how to load several partitions with this helper, and the platform's IO managers must decide alike."""
    return is_dict_type(typing_type)


def safe_partition_path(base_path: Any, partition: str) -> Any:
    """``base_path / partition`` as ``UPathIOManager`` makes it safe (no ``..`` segment, no leading ``/``):
    the platform's folders per partition must sit where Dagster's own IO managers would put them."""
    return base_path / escape_dotdot_segments(escape_leading_slash(partition))


def upath_partition_paths(manager: Any, context: Any) -> dict[str, Any]:
    """Partition key -> path of each partition an output or input covers: ``UPathIOManager``'s own mapping
    (``_get_paths_for_partitions``), which the all-or-nothing writer needs before it writes anything."""
    return manager._get_paths_for_partitions(context)


def upath_asset_path(manager: Any, context: Any) -> Any:
    """The asset's folder (``_get_path_without_extension``): where its partitions' files live."""
    return manager._get_path_without_extension(context)


def upath_clear_unpartitioned(manager: Any, context: Any, path: Any) -> None:
    """What ``UPathIOManager`` does when an asset becomes partitioned (``_handle_transition_to_partitioned_asset``):
    an old unpartitioned file where the partitions' folder goes is removed first."""
    manager._handle_transition_to_partitioned_asset(context, path)


def upath_backcompat_paths(manager: Any, context: Any) -> dict[str, Any]:
    """Where very old Dagster versions wrote multi-dimensional partitions (``_get_multipartition_backcompat_paths``):
    a load looks there too, as ``UPathIOManager.load_input`` does."""
    return manager._get_multipartition_backcompat_paths(context)


def upath_base_path(manager: Any) -> Any:
    """The IO manager's root (``_base_path``, set by ``UPathIOManager.__init__``; no public accessor)."""
    return manager._base_path


def upath_output_path(manager: Any, context: Any) -> Any:
    """The path of an unpartitioned output (``_get_path``), as the pickled IO managers compute it."""
    return manager._get_path(context)


def upath_uri(manager: Any, path: Any) -> str:
    """A path as dagster-aws's pickled S3 IO manager names it in messages and metadata (``_uri_for_path``:
    ``s3://bucket/key``); the JSON IO manager on S3 must name its objects alike."""
    return manager._uri_for_path(path)


# ----------------------------------------------------------------------------- launch-time config


def refuse_at_launch(config_type: Any, problems_of: Callable[[Any], list[str]], where: str) -> None:
    """Make Dagster refuse a run config value when it PLANS a run, with the problems ``problems_of`` finds.

    Dagster validates a ``dg.Config``'s pydantic rules only when the step builds its config, after the
    run started; the one hook that runs at planning (the launchpad, a schedule or sensor request,
    ``materialize``) is a config type's ``post_process`` (what resolves ``EnvVar``), and its refusal is
    a ``PostProcessingError``. No public API offers either.
    """

    def refuse_invalid(value: Any) -> Any:
        problems = problems_of(value)
        if problems:
            raise PostProcessingError(
                f"run config of {where} refused: "
                + "; ".join(problems)
                + f" (set under ops: {where}: config)"
            )
        return value

    config_type.post_process = refuse_invalid


# ------------------------------------------------------------------------------------ run launcher


def code_server_current_runs(grpc_info: str, timeout: float) -> list[str] | None:
    """The ids of the runs the code server named by a run's ``dagster/grpc_info`` tag executes; None when it
    does not answer (unreachable, restarting, or too old to know the call).

    ``DagsterGrpcClient.get_current_runs()`` takes no timeout, and a health check must not hang on a
    lost machine: this is the same call through the client's ``_query`` with a deadline. Only gRPC's
    errors, as the client reports them (``DagsterUserCodeUnreachableError``), mean "no answer"; anything
    else (a renamed method) raises.
    """
    from dagster._core.errors import DagsterUserCodeUnreachableError
    from dagster._grpc.__generated__ import dagster_api_pb2
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import GetCurrentRunsResult
    from dagster._serdes import deserialize_value

    address = json.loads(grpc_info)
    client = DagsterGrpcClient(
        port=address.get("port"), socket=address.get("socket"), host=address.get("host"),
        use_ssl=bool(address.get("use_ssl", False)),
    )  # fmt: skip
    try:
        reply = client._query("GetCurrentRuns", dagster_api_pb2.Empty, timeout=timeout)
    except DagsterUserCodeUnreachableError:
        return None
    return list(deserialize_value(reply.serialized_current_runs, GetCurrentRunsResult).current_runs)


# ------------------------------------------------------------ the command line's runs (cli/runs.py)


def open_workspace(instance: Any, workspace_file: Path) -> Any:
    """A workspace process context over ``workspace_file``: it starts the code location's code server as
    ``dagster dev`` does. The command line creates and executes its runs in that code location so that
    they are the daemon's runs exactly (origins, snapshots, tags); Dagster's public launch paths are the
    daemon and the GraphQL API of a running webserver."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    return WorkspaceProcessContext(
        instance, WorkspaceFileTarget(paths=[str(workspace_file)]), code_server_log_level="CRITICAL"
    )


def job_selector(location: str, repository: str, job_name: str, asset_selection: frozenset | None) -> Any:
    """The selector of a job (or an asset subset of it) in a code location (``JobSubsetSelector``)."""
    from dagster._core.definitions.selector import JobSubsetSelector

    return JobSubsetSelector(
        location_name=location,
        repository_name=repository,
        job_name=job_name,
        op_selection=None,
        asset_selection=asset_selection,
    )


def create_run(
    instance: Any, job_name: str, remote_job: Any, plan: Any, asset_graph: Any, *,
    run_config: dict, tags: dict, asset_selection: frozenset | None,
) -> Any:  # fmt: skip
    """A NOT_STARTED run of ``remote_job`` in the instance, as the daemon creates a sensor's or schedule's
    run (``DagsterInstance.create_run``, whose keyword arguments are Dagster's internals).

    Why no public launch path: Dagster's (the daemon, the GraphQL API of a webserver, ``dagster job
    launch``) hand the run to the instance's run launcher, which starts a run worker process per run that
    imports the code location and its libraries again. Measured: a 3-day ingestion run took 23.7 s
    launched that way against 2.3 s executed in the command's own process (medians of 3, interleaved,
    load 5 on 2 cores, 2026-12-07); the demo's dozen runs would take minutes more, past its 5-minute
    target. ``LocalPlatform(launch=True)`` is that path, for whoever wants it."""
    from dagster import DagsterRunStatus

    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=run_config,
        status=DagsterRunStatus.NOT_STARTED,
        tags=tags,
        root_run_id=None,
        parent_run_id=None,
        step_keys_to_execute=None,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        job_snapshot=remote_job.job_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        asset_selection=asset_selection,
        asset_check_selection=None,
        resolved_op_selection=None,
        op_selection=None,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_graph=asset_graph,
    )


def execute_run_in_process(instance: Any, run: Any) -> None:
    """Execute a created run in this process, as ``dagster api execute_run`` does in a run worker: the job
    rebuilt from the run's code origin (``execute_run`` and ``recon_job_from_origin``)."""
    from dagster._core.execution.api import execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin

    execute_run(recon_job_from_origin(run.job_code_origin), run, instance)


def store_sensor_cursor(instance: Any, remote_sensor: Any, state: Any, cursor: str | None) -> None:
    """Keep a sensor's cursor in the instance, as the daemon keeps it after a tick (``dagster sensor cursor
    --set`` does the same, but marks a sensor without state as started by hand): a sensor without state is
    recorded DECLARED_IN_CODE, running by default, as the daemon records it on its first tick."""
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        SensorInstigatorData,
    )
    from dagster._time import get_current_timestamp

    if state is None:
        instance.add_instigator_state(
            InstigatorState(
                remote_sensor.get_remote_origin(),
                InstigatorType.SENSOR,
                InstigatorStatus.DECLARED_IN_CODE,
                SensorInstigatorData(
                    min_interval=remote_sensor.min_interval_seconds,
                    cursor=cursor,
                    last_sensor_start_timestamp=get_current_timestamp(),
                    sensor_type=remote_sensor.sensor_type,
                ),
            )
        )
    else:
        instance.update_instigator_state(state.with_data(state.instigator_data._replace(cursor=cursor)))
