"""Simulate a range of days into the warehouse: the one loop the CLI and the demo share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from claims_platform.core import settings
from claims_platform.source.generator import World, iter_days, simulate_day
from claims_platform.source.scenarios import DriftScenario
from claims_platform.source.warehouse import Warehouse


def simulate_range(
    warehouse: Warehouse,
    start: date,
    end: date,
    *,
    seed: int = settings.DEFAULT_WORLD_SEED,
    scenario: DriftScenario | None = None,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
    progress: Callable[[date, int], None] | None = None,
) -> int:
    """Write every day from ``start`` to ``end`` (inclusive) into ``warehouse``; returns rows written.

    Each day is replaced idempotently, so re-running a range is safe. ``progress(day, rows)`` is called
    after each day is written.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    world = World.from_seed(seed)
    warehouse.create_tables()
    total = 0
    for day in iter_days(start, end):
        applications, outcomes = simulate_day(world, day, scenario, label_lag_days=label_lag_days)
        rows = warehouse.write_day(day, applications, outcomes)
        total += rows
        if progress is not None:
            progress(day, rows)
    return total
