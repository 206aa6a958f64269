"""A run launcher for code servers that lets run monitoring see a dead run.

Dagster's ``DefaultRunLauncher`` starts each run as a process of the code server (gRPC) that loaded
it, but cannot tell run monitoring whether that process is still alive: a run whose code server was
restarted or lost (container replaced, machine gone) would stay STARTED for ever. This launcher asks
the code server recorded on the run (Dagster's ``dagster/grpc_info`` tag) which runs it executes; a
run it does not know is reported failed, so the daemon marks it failed and run retries re-execute
it. A code server that does not answer is not evidence of a dead run: the run is left alone (the
instance's ``max_runtime_seconds`` still bounds it).

A run process killed while its code server lives is marked failed by the code server itself.
"""

from __future__ import annotations

from dagster import DefaultRunLauncher

from claims_platform.adapters.dagster_internals import (
    GRPC_INFO_TAG,
    CheckRunHealthResult,
    WorkerStatus,
    code_server_current_runs,
)

HEALTH_CHECK_TIMEOUT_SECONDS = 10


def worker_status(run_id: str, current_runs: list[str] | None) -> CheckRunHealthResult:
    """The health of run ``run_id`` given the runs its code server executes (None: no answer)."""
    if current_runs is None:
        return CheckRunHealthResult(WorkerStatus.RUNNING, "its code server did not answer; assumed alive")
    if run_id in current_runs:
        return CheckRunHealthResult(WorkerStatus.RUNNING)
    return CheckRunHealthResult(
        WorkerStatus.FAILED, "its code server does not execute it: the run's process is gone"
    )


class CodeServerRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` + a worker health check that asks the run's code server."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        info = run.tags.get(GRPC_INFO_TAG)
        return worker_status(
            run.run_id, code_server_current_runs(info, HEALTH_CHECK_TIMEOUT_SECONDS) if info else None
        )
