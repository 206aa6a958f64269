"""Multi-partition writes are all-or-nothing, on a local folder and on the loopback S3 server.

Each test stores OLD content for some days, then runs a single-run backfill writing NEW content for
more days while a failure is injected into the IO manager (staging or committing a partition, after
k others went through). Afterwards storage must be byte-for-byte what it was, with no temporary left,
Dagster must have recorded no materialization for the failed run, and a re-run must store and record
every day new. Failures are injected by wrapping the IO manager's own methods; storage is real.
"""

import gzip
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from claims_platform.monitoring.reports import RenderedReport
from claims_platform.storage import ObjectIOManager, PartitionedParquetIOManager, PartitionedUPathIOManager
from claims_platform.storage.locations import LocalFiles, S3Objects
from claims_platform.storage.report_io_manager import ReportIOManager
from claims_platform_tests.storage.conftest import StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
DAYS = [f"2025-01-0{day}" for day in range(1, 7)]
# The old run stores the first four days; the last two are new, so a rollback both restores and removes.
OLD_DAYS = DAYS[:4]
ASSET = "daily_figures"
STORE = "store"


class InjectedFailure(RuntimeError):
    """The failure a test injects into the IO manager."""


@dataclass(frozen=True)
class Format:
    """One IO manager: how to configure it, what a day's value is, and where it stores one."""

    name: str
    io_manager: Callable[[StorageBackend], dg.ConfigurableIOManagerFactory]
    value: Callable[[str, str], Any]  # (day, version) -> the asset's value for that day
    files: Callable[[str], list[str]]  # day -> stored files, relative to base_path
    stored_version: Callable[[StorageBackend, str], str]  # what the stored day says its version is


def _parquet_version(backend: StorageBackend, day: str) -> str:
    frame = pd.read_parquet(io.BytesIO(backend.read_bytes(f"{ASSET}/{day}.parquet")))
    assert frame["day"].tolist() == [day] * len(frame)
    return frame["version"].iloc[0]


def _json_version(backend: StorageBackend, day: str) -> str:
    value = backend.read_json(f"{ASSET}/{day}.json")
    assert value["day"] == day
    return value["version"]


def _report_version(backend: StorageBackend, day: str) -> str:
    summary = backend.read_json(f"{ASSET}/{day}/summary.json")
    html = backend.read_bytes(f"{ASSET}/{day}/report.html").decode()
    snapshot = json.loads(gzip.decompress(backend.read_bytes(f"{ASSET}/{day}/snapshot.json.gz")))
    # The three files of a folder must come from the same write.
    assert html == f"<html><body>{day} {summary['version']}</body></html>"
    assert snapshot == {"version": summary["version"]}
    return summary["version"]


PARQUET = Format(
    name="parquet",
    io_manager=lambda backend: PartitionedParquetIOManager(base_path=backend.base_path, s3=backend.s3),
    value=lambda day, version: pd.DataFrame({"day": [day] * 3, "version": version, "n": [1, 2, 3]}),
    files=lambda day: [f"{ASSET}/{day}.parquet"],
    stored_version=_parquet_version,
)
JSON = Format(
    name="json",
    io_manager=lambda backend: ObjectIOManager(base_path=backend.base_path, s3=backend.s3),
    value=lambda day, version: {"day": day, "version": version},
    files=lambda day: [f"{ASSET}/{day}.json"],
    stored_version=_json_version,
)
REPORT = Format(
    name="report",
    io_manager=lambda backend: ReportIOManager(base_path=backend.base_path, s3=backend.s3),
    value=lambda day, version: RenderedReport(
        html=f"<html><body>{day} {version}</body></html>",
        snapshot=json.dumps({"version": version}),
        summary={"day": day, "version": version},
    ),
    files=lambda day: [
        f"{ASSET}/{day}/{name}" for name in ("report.html", "snapshot.json.gz", "summary.json")
    ],
    stored_version=_report_version,
)
FORMATS = [pytest.param(f, id=f.name) for f in (PARQUET, JSON, REPORT)]


def daily_asset(fmt: Format, version: str) -> dg.AssetsDefinition:
    """The daily asset, returning ``version`` content for every partition of its run."""

    @dg.asset(
        name=ASSET,
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key=STORE,
    )
    def daily_figures(context: dg.AssetExecutionContext) -> dict[str, Any]:
        return {day: fmt.value(day, version) for day in context.partition_keys}

    return daily_figures


def backfill(
    fmt: Format, backend: StorageBackend, instance: dg.DagsterInstance, version: str, days: list[str]
) -> dg.ExecuteInProcessResult:
    """A single-run backfill of ``days`` (what the backfill daemon launches), not raising on failure."""
    return dg.materialize(
        [daily_asset(fmt, version)],
        resources={STORE: fmt.io_manager(backend)},
        instance=instance,
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
        raise_on_error=False,
    )


def stored(backend: StorageBackend) -> dict[str, bytes]:
    """Every stored file (temporaries included) with its exact content."""
    return {relative: backend.read_bytes(relative) for relative in backend.stored_files()}


def recorded_days(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The partitions Dagster recorded a materialization of for ``run_id``."""
    records = instance.fetch_materializations(dg.AssetKey(ASSET), limit=1000).records
    return sorted(record.partition_key for record in records if record.run_id == run_id)


def fail_after(
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    method: str,
    k: int,
    *,
    fails: Callable[..., bool] | None = None,
) -> list[Any]:
    """Make the (k+1)-th call of ``owner.method`` raise once k calls went through; returns their arguments.

    The failing call waits for k others to finish, so "after k" holds even on the thread pool. With
    ``fails``, only calls for which it returns True are counted and can fail.
    """
    original = getattr(owner, method)
    passed: list[Any] = []
    counted = 0
    state = threading.Condition()

    def wrapper(self, *args, **kwargs):
        nonlocal counted
        if fails is not None and not fails(*args, **kwargs):
            return original(self, *args, **kwargs)
        with state:
            index = counted
            counted += 1
        if index == k:
            with state:
                if not state.wait_for(lambda: len(passed) >= k, timeout=30):
                    raise AssertionError(f"only {len(passed)} of {k} calls went through before the failure")
            raise InjectedFailure(f"{method} failed after {k} call(s)")
        result = original(self, *args, **kwargs)
        with state:
            passed.append(args)
            state.notify_all()
        return result

    monkeypatch.setattr(owner, method, wrapper)
    return passed


def assert_failed_with_injected_failure(result: dg.ExecuteInProcessResult) -> None:
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    causes = []
    while error is not None:
        causes.append(error.cls_name)
        error = error.cause
    assert "InjectedFailure" in causes


def assert_rerun_stores_and_records_everything_new(
    fmt: Format, backend: StorageBackend, instance: dg.DagsterInstance
) -> None:
    rerun = backfill(fmt, backend, instance, "new", DAYS)
    assert rerun.success
    assert recorded_days(instance, rerun.run_id) == DAYS
    assert backend.stored_files() == sorted(file for day in DAYS for file in fmt.files(day))
    assert {day: fmt.stored_version(backend, day) for day in DAYS} == dict.fromkeys(DAYS, "new")


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("phase", ["stage_partition", "commit_partition"])
@pytest.mark.parametrize("k", [0, 3, len(DAYS) - 1])
def test_failure_after_k_partitions_keeps_every_partition_old_and_unrecorded(
    fmt: Format,
    phase: str,
    k: int,
    backend: StorageBackend,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
):
    assert backfill(fmt, backend, instance, "old", OLD_DAYS).success
    old = stored(backend)
    assert sorted(old) == sorted(file for day in OLD_DAYS for file in fmt.files(day))

    with monkeypatch.context() as patch:
        passed = fail_after(patch, PartitionedUPathIOManager, phase, k)
        failed = backfill(fmt, backend, instance, "new", DAYS)

    assert_failed_with_injected_failure(failed)
    # The failure really came after k partitions were staged (or committed, then rolled back).
    assert len(passed) >= k
    assert stored(backend) == old  # exactly the old files and bytes: nothing new, no temporaries
    assert recorded_days(instance, failed.run_id) == []
    assert_rerun_stores_and_records_everything_new(fmt, backend, instance)


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_partition_run_is_all_or_nothing_too(
    fmt: Format, backend: StorageBackend, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    day = OLD_DAYS[1]
    assert backfill(fmt, backend, instance, "old", OLD_DAYS).success
    old = stored(backend)

    with monkeypatch.context() as patch:
        fail_after(patch, PartitionedUPathIOManager, "commit_partition", 0)
        failed = backfill(fmt, backend, instance, "new", [day])

    assert_failed_with_injected_failure(failed)
    assert stored(backend) == old
    assert recorded_days(instance, failed.run_id) == []
    rerun = backfill(fmt, backend, instance, "new", [day])
    assert rerun.success
    assert recorded_days(instance, rerun.run_id) == [day]
    assert fmt.stored_version(backend, day) == "new"


def test_report_folder_half_committed_gets_all_its_old_files_back(
    backend: StorageBackend, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    # The third day's report.html and snapshot.json.gz are already replaced when its summary fails.
    assert backfill(REPORT, backend, instance, "old", OLD_DAYS).success
    old = stored(backend)
    store = LocalFiles if backend.name == "local" else S3Objects

    with monkeypatch.context() as patch:
        fail_after(
            patch,
            store,
            "replace",
            0,
            fails=lambda source, path: (
                path.as_posix().endswith(f"{DAYS[2]}/summary.json") and ".staging" in source.name
            ),
        )
        failed = backfill(REPORT, backend, instance, "new", DAYS)

    assert_failed_with_injected_failure(failed)
    assert stored(backend) == old
    assert recorded_days(instance, failed.run_id) == []
    assert_rerun_stores_and_records_everything_new(REPORT, backend, instance)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpartitioned_output_keeps_its_old_content_on_failure(
    fmt: Format, backend: StorageBackend, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    def whole_asset(version: str) -> dg.AssetsDefinition:
        @dg.asset(name=ASSET, io_manager_key=STORE)
        def figures() -> Any:
            return fmt.value("2025-01-01", version)

        return figures

    def run(version: str) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [whole_asset(version)],
            resources={STORE: fmt.io_manager(backend)},
            instance=instance,
            raise_on_error=False,
        )

    assert run("old").success
    old = stored(backend)

    with monkeypatch.context() as patch:
        fail_after(patch, PartitionedUPathIOManager, "commit_partition", 0)
        assert_failed_with_injected_failure(run("new"))

    assert stored(backend) == old
    assert run("new").success
    assert stored(backend) != old
    assert sorted(stored(backend)) == sorted(old)  # same files, no temporaries


def test_partition_whose_rollback_fails_keeps_its_backup(
    backend: StorageBackend, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    # Deleting the only copy of a partition's old content would be worse than leaving a stray file.
    assert backfill(PARQUET, backend, instance, "old", OLD_DAYS).success
    old = stored(backend)
    unlucky = f"{DAYS[1]}.parquet"

    with monkeypatch.context() as patch:
        fail_after(patch, PartitionedUPathIOManager, "commit_partition", len(DAYS) - 1)
        fail_after(
            patch, PartitionedUPathIOManager, "rollback_partition", 0, fails=lambda w: w.path.name == unlucky
        )
        failed = backfill(PARQUET, backend, instance, "new", DAYS)

    assert_failed_with_injected_failure(failed)  # the commit's failure, not the rollback's
    assert recorded_days(instance, failed.run_id) == []
    now = stored(backend)
    (backup,) = [name for name in now if name.endswith(".backup")]
    assert backup.startswith(f"{ASSET}/.{unlucky}.")
    assert now[backup] == old[f"{ASSET}/{unlucky}"]
    assert not any(name.endswith(".staging") for name in now)
    # Every other partition is back to its old content (or absent, as before).
    assert {name: data for name, data in now.items() if unlucky not in name} == {
        name: data for name, data in old.items() if unlucky not in name
    }
    logs = [entry.user_message for entry in instance.all_logs(failed.run_id)]
    assert any("Could not restore the old content" in message for message in logs)
