"""Benchmarks of the source system: the simulator's speed and the SQLite warehouse's write speed."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

from claims_platform.core import settings
from claims_platform.source.generator import World, iter_days, simulate_day
from claims_platform.source.warehouse import Warehouse

DAYS = 365


def run() -> list[dict]:
    """Simulator rows/s for one day and for a year; SQLite warehouse write rows/s for a year."""
    world = World.from_seed(settings.DEFAULT_WORLD_SEED)
    first = settings.FIRST_DAY
    last = first + timedelta(days=DAYS - 1)
    simulate_day(world, first)  # warm-up: imports and first-call allocations are not the steady state

    repeats = 20
    started = time.perf_counter()
    rows_one_day = sum(len(simulate_day(world, first + timedelta(days=i))[0]) for i in range(repeats))
    one_day = rows_one_day / (time.perf_counter() - started)

    started = time.perf_counter()
    year = [(day, *simulate_day(world, day)) for day in iter_days(first, last)]
    year_seconds = time.perf_counter() - started
    year_rows = sum(len(applications) for _, applications, _ in year)

    with tempfile.TemporaryDirectory() as folder:
        warehouse = Warehouse(f"sqlite:///{Path(folder) / 'bench.db'}")
        warehouse.create_tables()
        started = time.perf_counter()
        for day, applications, outcomes in year:
            warehouse.write_day(day, applications, outcomes)
        write_seconds = time.perf_counter() - started
        warehouse.dispose()

    return [
        {
            "name": "simulate one day",
            "value": round(one_day),
            "unit": "rows/s",
            "target": ">= 100,000 rows/s",
        },
        {
            "name": f"simulate {DAYS} days",
            "value": round(year_rows / year_seconds),
            "unit": "rows/s",
            "target": ">= 100,000 rows/s",
        },
        {"name": f"simulate {DAYS} days", "value": round(year_seconds, 2), "unit": "s", "target": None},
        {
            "name": f"SQLite write {DAYS} days",
            "value": round(year_rows / write_seconds),
            "unit": "rows/s",
            "target": None,
        },
        {
            "name": f"SQLite write {DAYS} days ({year_rows:,} rows)",
            "value": round(write_seconds, 2),
            "unit": "s",
            "target": "< 60 s",
        },
    ]


if __name__ == "__main__":
    print(run())
