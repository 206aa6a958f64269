"""Ingestion (read from the warehouse + validate + store as Parquet) through Dagster: one day and a year as one run.

With ``BENCH_BASELINE=<checkout>`` (e.g. a ``git worktree`` of an earlier commit) it also times the
year as one run with that checkout's code and with this one, alternately, each in a fresh process on
the same warehouse, and reports both medians and their ratio (``python -m bench.bench_ingestion
--compare <checkout> [rounds]`` runs only that).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

YEAR = (date(2025, 1, 1), date(2025, 12, 31))
REPO = Path(__file__).resolve().parent.parent
ROUNDS = 3


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
        day_rows = sum(
            len(v) for v in one_day.output_for_node("ingest_applications", "applications").values()
        )
        started = time.perf_counter()
        year = world.run_range("daily_ingestion", YEAR[0].isoformat(), YEAR[1].isoformat())
        year_seconds = time.perf_counter() - started
        assert year.success
        results = [
            {
                "name": "ingestion, one day, one run",
                "value": round(day_seconds, 2),
                "unit": "s",
                "target": None,
            },
            {
                "name": "ingestion, one day",
                "value": round(day_rows / day_seconds),
                "unit": "rows/s",
                "target": None,
            },
            {
                "name": "ingestion, 365 days as one run",
                "value": round(year_seconds, 1),
                "unit": "s",
                "target": f"<= 10 s (load {os.getloadavg()[0]:.2f})",
            },
            {
                "name": "ingestion, 365 days as one run",
                "value": round(rows / year_seconds),
                "unit": "rows/s",
                "target": None,
            },
        ]
        if os.environ.get("BENCH_BASELINE"):
            results += compare_with_baseline(Path(home), Path(os.environ["BENCH_BASELINE"]))
    return results


def compare_with_baseline(home: Path, baseline: Path, rounds: int = ROUNDS) -> list[dict]:
    """The year as one run with ``baseline``'s code and with this checkout's, alternately, on ``home``'s warehouse."""
    from bench.compare import compare_year_runs

    return compare_year_runs("ingestion year as one run", __file__, home, baseline, rounds)


def _year_run(root: str, home: str) -> None:
    sys.path.insert(0, root)  # this checkout's claims_platform, not the installed one
    import claims_platform
    from claims_platform_tests.platform_world import PlatformWorld

    world = PlatformWorld(Path(home))
    world.run_range("daily_ingestion", "2025-06-15", "2025-06-15")  # warm: imports, schema build
    started, cpu = time.perf_counter(), time.process_time()
    assert world.run_range("daily_ingestion", YEAR[0].isoformat(), YEAR[1].isoformat()).success
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "code": claims_platform.__file__}))


def _compare(baseline: str, rounds: int = ROUNDS) -> None:
    sys.path.insert(0, str(REPO))
    from claims_platform_tests.platform_world import PlatformWorld

    with tempfile.TemporaryDirectory() as home:
        PlatformWorld(Path(home)).simulate(*YEAR)
        for measurement in compare_with_baseline(Path(home), Path(baseline), rounds):
            print(measurement)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--year-run"]:
        _year_run(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["--compare"]:
        _compare(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else ROUNDS)
    else:
        for measurement in run():
            print(measurement)
