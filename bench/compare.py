"""Side-by-side timing of a year-long run with an earlier checkout's code and with this one.

Each measurement is a fresh process (``<bench module> --year-run <checkout> <home>``) on the same
state, alternating between the two checkouts, so machine load hits both alike; the medians, their
ratio and the CPU-time ratio (less at the mercy of other work on a shared 2-core machine) are reported.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def year_run_in(script: str, root: Path, home: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``script``'s year run with the code at ``root``, in a fresh process."""
    done = subprocess.run(
        [sys.executable, script, "--year-run", str(root), str(home)], capture_output=True, text=True, cwd=root
    )
    if done.returncode != 0:
        raise RuntimeError(f"year run with {root} failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    if not measured["code"].startswith(str(root)):
        raise RuntimeError(f"year run meant for {root} imported {measured['code']}")
    return measured["seconds"], measured["cpu_seconds"]


def compare_year_runs(what: str, script: str, home: Path, baseline: Path, rounds: int) -> list[dict]:
    """Measurements of ``what`` (e.g. "ingestion year as one run") with ``baseline``'s code and this checkout's."""
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label, root in (("before", baseline), ("after", REPO)):
            wall, used = year_run_in(script, root, home)
            seconds[label].append(wall)
            cpu[label].append(used)
    before, after = statistics.median(seconds["before"]), statistics.median(seconds["after"])
    cpu_before, cpu_after = statistics.median(cpu["before"]), statistics.median(cpu["after"])
    return [
        {"name": f"{what}, {baseline.name} code (median of {rounds}, fresh process)",
         "value": round(before, 1), "unit": "s", "target": None, "runs": [round(s, 1) for s in seconds["before"]]},
        {"name": f"{what}, this code (median of {rounds}, fresh process)",
         "value": round(after, 1), "unit": "s", "target": None, "runs": [round(s, 1) for s in seconds["after"]]},
        {"name": f"{what}: this code / baseline", "value": round(after / before, 2), "unit": "x", "target": "<= 1.1"},
        {"name": f"{what}, CPU time: baseline {cpu_before:.1f} s, this code {cpu_after:.1f} s (medians)",
         "value": round(cpu_after / cpu_before, 2), "unit": "x", "target": "<= 1.1",
         "runs": {"before": [round(s, 1) for s in cpu["before"]], "after": [round(s, 1) for s in cpu["after"]]}},
    ]  # fmt: skip
