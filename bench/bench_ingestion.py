"""Ingestion (read from the warehouse + validate + store as Parquet) through Dagster: one day and a year as one run."""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def run() -> list[dict]:
    """Simulate 2025 into a SQLite warehouse, then time the `daily_ingestion` job."""
    from claims_platform_tests.platform_world import PlatformWorld

    with tempfile.TemporaryDirectory() as home:
        world = PlatformWorld(Path(home))
        rows = world.simulate(*YEAR)
        world.run_range("daily_ingestion", "2025-06-15", "2025-06-15")  # warm: imports, schema build
        started = time.perf_counter()
        one_day = world.run_range("daily_ingestion", "2025-06-16", "2025-06-16")
        day_seconds = time.perf_counter() - started
        day_rows = sum(len(v) for v in one_day.output_for_node("ingest_applications", "applications").values())
        started = time.perf_counter()
        year = world.run_range("daily_ingestion", YEAR[0].isoformat(), YEAR[1].isoformat())
        year_seconds = time.perf_counter() - started
        assert year.success
    return [
        {"name": "ingestion, one day, one run", "value": round(day_seconds, 2), "unit": "s", "target": None},
        {"name": "ingestion, one day", "value": round(day_rows / day_seconds), "unit": "rows/s", "target": None},
        {"name": "ingestion, 365 days as one run", "value": round(year_seconds, 1), "unit": "s", "target": None},
        {"name": "ingestion, 365 days as one run", "value": round(rows / year_seconds), "unit": "rows/s", "target": None},
    ]


if __name__ == "__main__":
    for measurement in run():
        print(measurement)
