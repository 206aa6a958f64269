"""`claims-platform demo`: the platform's main job on embedded defaults, end to end.

Simulates the last months into the warehouse, then materializes the daily `applications`
partitions of those days through Dagster as ONE backfill run, into the same Dagster instance
(`DAGSTER_HOME`) that `make dev` shows, and prints what it did.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

from claims_platform import settings


@dataclass(frozen=True)
class DemoWindow:
    """The days the demo simulates and processes."""

    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def demo_window(today: date, months: int) -> DemoWindow:
    """From the first day of the month ``months`` months before today's month, to yesterday."""
    month_index = today.year * 12 + today.month - 1 - months
    first = date(month_index // 12, month_index % 12 + 1, 1)
    return DemoWindow(max(first, settings.FIRST_DAY), today - timedelta(days=1))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _instance():
    from dagster import DagsterInstance

    # The demo and `make dev` must share one instance: the repo's dagster.yaml, like the Makefile.
    os.environ.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT))
    return DagsterInstance.get()


def run_range(job_name: str, first_key: str, last_key: str, instance):
    """Execute a partitioned job over a partition range as ONE run (a single-run backfill)."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from claims_platform.definitions import defs

    job = defs.resolve_job_def(job_name)
    tags = {ASSET_PARTITION_RANGE_START_TAG: first_key, ASSET_PARTITION_RANGE_END_TAG: last_key, "source": "demo"}
    # The console logger would print every one of the hundreds of per-partition events.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    return job.execute_in_process(instance=instance, tags=tags, run_config=quiet, raise_on_error=True)


def main(months: int = 6, today: date | None = None, seed: int = settings.DEFAULT_WORLD_SEED) -> int:
    """Run the demo; returns a process exit code."""
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    window = demo_window(today or date.today(), months)
    started = time.perf_counter()
    settings.local_home().mkdir(parents=True, exist_ok=True)
    warehouse = Warehouse(settings.default_warehouse_url())
    _log(f"[1/2] simulating {window.days} days {window.first_day}..{window.last_day} into {warehouse.url}")
    simulated = simulate_range(warehouse, window.first_day, window.last_day, seed=seed)

    _log("[2/2] ingesting the days through Dagster as one backfill run")
    instance = _instance()
    result = run_range("daily_ingestion", window.first_day.isoformat(), window.last_day.isoformat(), instance)
    ingest = result.output_for_node("ingest_applications", "applications")
    valid = sum(len(v) for v in ingest.values())
    rejected_frames = result.output_for_node("ingest_applications", "rejected_applications")
    rejected = sum(len(v) for v in rejected_frames.values())

    elapsed = time.perf_counter() - started
    print(
        "\n".join(
            [
                "",
                f"claims_platform demo — done in {elapsed:.0f} s",
                f"  warehouse     {warehouse.url}",
                f"  simulated     {window.days} days, {simulated:,} applications",
                f"  ingested      run {result.run_id[:8]}: {valid:,} valid, {rejected:,} rejected "
                f"({window.first_day}..{window.last_day}, one run)",
                f"  storage       {settings.default_storage_url()}",
                f"  dagster home  {os.environ['DAGSTER_HOME']}",
                "",
                "Open the UI:  make dev   then browse http://127.0.0.1:3000/assets/applications",
            ]
        )
    )
    return 0
