"""What the platform relies on of Dagster's private APIs (``claims_platform.adapters.dagster_internals``):
an upgrade that changes one fails here, by name."""

import inspect
import socket
import time

import dagster as dg
import pytest
from upath import UPath

from claims_platform.adapters import dagster_internals as internals


class _TextIOManager(dg.UPathIOManager):
    extension = ".txt"

    def dump_to_path(self, context, obj, path):
        path.write_text(obj)

    def load_from_path(self, context, path):
        return path.read_text()


DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


def test_the_run_tags_are_the_strings_dagster_writes():
    assert internals.PARTITION_RANGE_START_TAG == "dagster/asset_partition_range_start"
    assert internals.PARTITION_RANGE_END_TAG == "dagster/asset_partition_range_end"
    assert (internals.RUN_KEY_TAG, internals.SENSOR_NAME_TAG) == ("dagster/run_key", "dagster/sensor_name")
    assert internals.GRPC_INFO_TAG == ".dagster/grpc_info"


def test_partition_dicts_and_safe_paths_as_upath_io_manager_decides_them(tmp_path):
    assert internals.is_partition_dict_type(dict[str, int]) and not internals.is_partition_dict_type(int)
    root = UPath(tmp_path)
    assert internals.safe_partition_path(root, "2026-01-02") == root / "2026-01-02"
    assert ".." not in internals.safe_partition_path(root, "../up/../x").parts
    assert str(internals.safe_partition_path(root, "/abs")).startswith(str(tmp_path))


def test_upath_io_manager_paths_of_a_partition_range(tmp_path):
    manager = _TextIOManager(base_path=UPath(tmp_path))
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["claims", "a"]), asset_partitions_def=DAYS,
        asset_partition_key_range=dg.PartitionKeyRange("2026-01-02", "2026-01-03"),
    )  # fmt: skip
    paths = internals.upath_partition_paths(manager, context)
    assert {k: str(v) for k, v in paths.items()} == {
        "2026-01-02": str(UPath(tmp_path) / "claims" / "a" / "2026-01-02.txt"),
        "2026-01-03": str(UPath(tmp_path) / "claims" / "a" / "2026-01-03.txt"),
    }
    assert internals.upath_asset_path(manager, context) == UPath(tmp_path) / "claims" / "a"
    assert internals.upath_base_path(manager) == UPath(tmp_path)
    assert internals.upath_backcompat_paths(manager, context) == {}  # one-dimensional keys: none
    # A file left where the partitions' folder goes (the asset was unpartitioned) is cleared first.
    (UPath(tmp_path) / "claims" / "a").parent.mkdir(parents=True, exist_ok=True)
    leftover = UPath(tmp_path) / "claims" / "a.txt"
    leftover.write_text("old")
    internals.upath_clear_unpartitioned(manager, context, UPath(tmp_path) / "claims" / "a")
    unpartitioned = dg.build_output_context(asset_key=dg.AssetKey(["claims", "b"]))
    assert internals.upath_output_path(manager, unpartitioned) == UPath(tmp_path) / "claims" / "b.txt"
    from dagster_aws.s3 import PickledObjectS3IOManager

    class NoS3:  # the IO manager lists the bucket once when built; nothing else is asked of S3 here
        def list_objects(self, **kwargs):
            return {}

    on_s3 = PickledObjectS3IOManager("bucket", NoS3(), s3_prefix="platform")
    assert internals.upath_uri(on_s3, UPath("platform/a/b")) == "s3://bucket/platform/a/b"
    assert issubclass(internals.PickledObjectFilesystemIOManager, dg.UPathIOManager)


class Odd(dg.Config):
    n: int = 1


@dg.asset
def counted(config: Odd) -> int:
    return config.n


def test_a_config_refused_when_the_run_is_planned():
    config_type = counted.op.config_schema.as_field().config_type
    internals.refuse_at_launch(
        config_type, lambda v: [] if v["n"] % 2 else [f"n: must be odd (given {v['n']})"], "counted"
    )
    assert dg.materialize([counted], run_config={"ops": {"counted": {"config": {"n": 3}}}}).success
    with pytest.raises(
        dg.DagsterInvalidConfigError, match=r"run config of counted refused: n: must be odd \(given 2\)"
    ):
        dg.materialize([counted], run_config={"ops": {"counted": {"config": {"n": 2}}}})


def test_a_code_server_that_does_not_answer_is_no_answer_and_quickly():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.perf_counter()
    assert internals.code_server_current_runs(f'{{"host": "127.0.0.1", "port": {port}}}', timeout=2) is None
    assert time.perf_counter() - started < 10
    # The call the answer comes from, with its deadline.
    from dagster._grpc.client import DagsterGrpcClient

    assert list(inspect.signature(DagsterGrpcClient._query).parameters)[:4] == [
        "self",
        "method",
        "request_type",
        "timeout",
    ]
    assert internals.WorkerStatus.FAILED and internals.CheckRunHealthResult(internals.WorkerStatus.RUNNING)


def test_the_command_lines_run_internals_take_what_they_are_given():
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.execution.api import execute_run
    from dagster._core.scheduler.instigation import SensorInstigatorData
    from dagster._core.workspace.context import WorkspaceProcessContext

    create = inspect.signature(dg.DagsterInstance.create_run).parameters
    for name in ("job_name", "run_config", "status", "tags", "execution_plan_snapshot", "job_snapshot",
                 "asset_selection", "asset_check_selection", "remote_job_origin", "job_code_origin", "asset_graph"):  # fmt: skip
        assert name in create, name
    assert "code_server_log_level" in inspect.signature(WorkspaceProcessContext).parameters
    selector = internals.job_selector("loc", "repo", "job", frozenset({dg.AssetKey("a")}))
    assert isinstance(selector, JobSubsetSelector) and selector.job_name == "job"
    assert list(inspect.signature(execute_run).parameters)[:3] == ["job", "dagster_run", "instance"]
    data = SensorInstigatorData(
        min_interval=30, cursor="a", last_sensor_start_timestamp=1.0, sensor_type=None
    )
    assert data._replace(cursor="b").cursor == "b"
