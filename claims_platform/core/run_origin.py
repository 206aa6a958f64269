"""What launched a Dagster run, read from its tags (pure): for audit records and alerts alike.

Open-source Dagster sets no `user` tag, so a person who launches a run by hand is only known when
they say so (a `requested_by` in run config); schedules, sensors, backfills and re-executions tag
their runs themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

LAUNCHER_TAGS = (
    ("dagster/schedule_name", "schedule"),
    ("dagster/sensor_name", "sensor"),
    ("dagster/backfill", "backfill"),
    ("dagster/parent_run_id", "re-execution of run"),
)
MANUAL = "manual launch (no requester given in run config)"


def launched_by(tags: Mapping[str, str], requested_by: str | None = None) -> str:
    """The requester given in run config, else what the run's tags say launched it, else ``MANUAL``."""
    if requested_by:
        return f"requested by {requested_by}"
    launchers = [f"{label} {tags[tag]}" for tag, label in LAUNCHER_TAGS if tags.get(tag)]
    return ", ".join(launchers) or MANUAL
