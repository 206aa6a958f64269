"""Nightly scoring: one day in process, a nightly run as the daemon launches it, a year as one backfill.

The world: 2025-01-01..2026-02-28 simulated and ingested; one model trained on March 2025's
window and registered (the first champion of a chain started that month). `model_in_force` for the
scored months is seeded with that decision's record through the real object IO manager (training
twelve models would measure training, not scoring).

With ``BENCH_BASELINE=<checkout>`` (e.g. a ``git worktree`` of an earlier commit) it also times the
365 days as one run with that checkout's code and with this one, alternately, each in a fresh process
on the same world, and reports both medians and their ratio (``python -m bench.bench_scoring
--compare <checkout> [rounds]`` runs only that).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SCORED = ("2025-03-01", "2026-02-28")  # 365 days
SCORING_ASSETS = [dg.AssetKey("application_scores"), dg.AssetKey("reserve_forecast")]
NIGHTLY_SELECTION = "applications,rejected_applications,application_scores,reserve_forecast"
ROUNDS = 3


def _seed_model_in_force(world, record: dict) -> None:
    from claims_platform.core.partitions import scoring_months
    from claims_platform_tests.dagster_helpers import materialize_range

    @dg.asset(
        name="model_in_force",
        partitions_def=scoring_months,
        io_manager_key="object_io_manager",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def seeded(context: dg.AssetExecutionContext) -> dict[str, dict]:
        return {key: record for key in context.partition_keys}

    materialize_range(
        [seeded], "2025-03-01", "2026-02-01", resources=world.resources, instance=world.instance
    )


def _scores_range(world, first: str, last: str) -> float:
    from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
    from claims_platform_tests.platform_world import QUIET

    job = world.defs.resolve_implicit_global_asset_job_def()
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=world.instance,
        asset_selection=SCORING_ASSETS,
        tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last},
        run_config=QUIET,
    )
    assert result.success
    return time.perf_counter() - started


def _subprocess_seconds(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=env["DAGSTER_HOME"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def _build_world(home: Path):
    """Simulate, ingest, train March 2025's model and seed it as the model in force; ``(world, record)``."""
    from claims_platform.models.assets import model_in_force_record
    from claims_platform_tests.platform_world import PlatformWorld

    world = PlatformWorld(home)
    world.simulate(pd.Timestamp("2025-01-01").date(), pd.Timestamp(SCORED[1]).date())
    assert world.run_range("daily_ingestion", "2025-01-01", SCORED[1]).success
    decision = world.train("2025-03-01").output_for_node("champion_decision")
    record = model_in_force_record(decision, "2025-03-01")
    _seed_model_in_force(world, {**record, "reason": "seeded by the benchmark"})
    return world, record


def compare_with_baseline(home: Path, baseline: Path, rounds: int = ROUNDS) -> list[dict]:
    """The 365 days as one run with ``baseline``'s code and with this checkout's, alternately, on ``home``'s world."""
    from bench.compare import compare_year_runs

    return compare_year_runs("365 days scored as one run", __file__, home, baseline, rounds)


def _year_run(root: str, home: str) -> None:
    sys.path.insert(0, root)  # this checkout's claims_platform, not the installed one
    import claims_platform
    from claims_platform_tests.platform_world import PlatformWorld

    world = PlatformWorld(Path(home))
    _scores_range(world, "2025-06-20", "2025-06-20")  # warm: imports, the model's files
    cpu = time.process_time()
    seconds = _scores_range(world, *SCORED)
    print(
        json.dumps(
            {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "code": claims_platform.__file__}
        )
    )


def _compare(baseline: str, rounds: int = ROUNDS) -> None:
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        _build_world(home)
        for measurement in compare_with_baseline(home, Path(baseline), rounds):
            print(measurement)


# Rows per call at 1x (a night) and 100x (a night of 120,000 applications), and the throughput test's rows.
AGAINST_LIGHTGBM_ROWS = {"1x": 1_200, "100x": 120_000, "1M rows": 1_000_000}
AGAINST_LIGHTGBM_ROUNDS = 7


def against_lightgbm(scorer, policy, pool: pd.DataFrame) -> list[dict]:
    """The platform's scoring (rows as stored -> features -> booster -> calibrator -> decision and risk band)
    against LightGBM's own ``Booster.predict`` of the same booster on the same rows' feature matrix, built
    beforehand (LightGBM's floor: what any platform using this model pays). Interleaved, medians of
    AGAINST_LIGHTGBM_ROUNDS, at 1x, 100x and a million rows."""
    from claims_platform.core.policy import risk_band
    from claims_platform.training.runtime import prepare_features

    results = []
    for label, n in AGAINST_LIGHTGBM_ROWS.items():
        rows = pool.iloc[np.arange(n) % len(pool)].reset_index(drop=True)
        features = prepare_features(rows, scorer.spec)
        times: dict[str, list[float]] = {"platform": [], "lightgbm": []}
        for _ in range(AGAINST_LIGHTGBM_ROUNDS):
            started = time.perf_counter()
            scorer.booster.predict(features, raw_score=True)
            times["lightgbm"].append(time.perf_counter() - started)
            started = time.perf_counter()
            p = scorer.predict(rows)
            policy.decide(p), risk_band(p)
            times["platform"].append(time.perf_counter() - started)
        platform, lightgbm = (statistics.median(times[k]) for k in ("platform", "lightgbm"))
        results += [
            {
                "name": f"scoring {n:,} rows ({label}): the platform / LightGBM's own predict",
                "value": round(platform / lightgbm, 3),
                "unit": "x",
                "target": f"<= 1.3; {platform * 1000:.1f} ms against {lightgbm * 1000:.1f} ms, medians of "
                f"{AGAINST_LIGHTGBM_ROUNDS} interleaved",
            },
            {
                "name": f"scoring {n:,} rows ({label}): the platform's throughput / LightGBM's",
                "value": round(lightgbm / platform, 3),
                "unit": "-",
                "target": f">= 0.9; {n / platform:,.0f} rows/s against {n / lightgbm:,.0f}",
            },
        ]
    results.append(
        {
            "name": "load average after the comparison",
            "value": os.getloadavg()[0],
            "unit": "-",
            "target": "1-minute, 2 cores",
        }
    )
    return results


def run() -> list[dict]:
    """Build the world once, then take every scoring measurement on it."""
    from claims_platform.core.policy import DecisionPolicy, risk_band
    from claims_platform.models.loading import load_scorer_cached

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        world, record = _build_world(home)
        scorer = load_scorer_cached(record["model_uri"])
        policy = DecisionPolicy.from_dict(record["policy"])

        # 1. One day in process.
        day_path = home / "storage" / "applications" / "2025-06-20.parquet"
        day = pd.read_parquet(day_path)
        scorer.predict(day)  # warm
        core, whole = [], []
        for _ in range(20):
            started = time.perf_counter()
            p = scorer.predict(day)
            policy.decide(p), risk_band(p)
            core.append(time.perf_counter() - started)
            started = time.perf_counter()
            frame = pd.read_parquet(day_path)
            p = scorer.predict(frame)
            pd.DataFrame({"p": p, "decision": policy.decide(p), "band": risk_band(p)}).to_parquet(
                Path(tmp) / "out.parquet"
            )
            whole.append(time.perf_counter() - started)
        results += [
            {
                "name": f"score one day ({len(day)} rows): predict + decide",
                "value": round(statistics.median(core) * 1000, 1),
                "unit": "ms",
                "target": "<= 50 ms",
            },
            {
                "name": "one day: read + score + write",
                "value": round(statistics.median(whole) * 1000, 1),
                "unit": "ms",
                "target": None,
            },
        ]

        # 2. A whole nightly run as a subprocess (as the daemon launches it) vs a trivial one-asset run.
        env = {
            **os.environ,
            "CLAIMS_HOME": str(home),
            "DAGSTER_HOME": str(Path(tmp) / "dagster_home"),
            "DO_NOT_TRACK": "1",
        }
        Path(env["DAGSTER_HOME"]).mkdir()
        dagster = str(Path(sys.executable).parent / "dagster")
        nightly = [
            dagster,
            "asset",
            "materialize",
            "-m",
            "claims_platform.definitions",
            "--select",
            NIGHTLY_SELECTION,
            "--partition",
            "2025-06-21",
        ]
        trivial = [
            dagster,
            "asset",
            "materialize",
            "-m",
            "bench.trivial_defs",
            "--select",
            "trivial",
            "--partition",
            "2025-06-21",
        ]
        nightly_s = min(_subprocess_seconds(nightly, env) for _ in range(3))
        trivial_s = min(_subprocess_seconds(trivial, env) for _ in range(3))
        strict_s = min(
            _subprocess_seconds(trivial, {**env, "BENCH_TRIVIAL_IN_PROCESS": "1"}) for _ in range(3)
        )
        results += [
            {
                "name": "nightly scoring run (subprocess)",
                "value": round(nightly_s, 2),
                "unit": "s",
                "target": None,
            },
            {
                "name": "trivial one-asset run, Dagster's default executor (subprocess)",
                "value": round(trivial_s, 2),
                "unit": "s",
                "target": None,
            },
            {
                "name": "nightly / trivial",
                "value": round(nightly_s / trivial_s, 2),
                "unit": "x",
                "target": "<= 1.5",
            },
            {
                "name": "trivial one-asset run, in-process executor (subprocess)",
                "value": round(strict_s, 2),
                "unit": "s",
                "target": None,
            },
            {
                "name": "nightly / trivial in-process",
                "value": round(nightly_s / strict_s, 2),
                "unit": "x",
                "target": "<= 1.5",
            },
        ]

        # 3. A year of daily scoring partitions as one run vs one run per partition, each run a
        #    subprocess as the daemon launches it (a multi-run backfill launches one per day).
        rows = sum(
            len(pd.read_parquet(p))
            for p in sorted((home / "storage" / "applications").glob("*.parquet"))
            if SCORED[0] <= p.stem <= SCORED[1]
        )
        scoring = [
            dagster,
            "asset",
            "materialize",
            "-m",
            "claims_platform.definitions",
            "--select",
            "application_scores,reserve_forecast",
        ]
        year_s = _subprocess_seconds([*scoring, "--partition-range", f"{SCORED[0]}...{SCORED[1]}"], env)
        days = pd.date_range("2025-04-01", periods=10).strftime("%Y-%m-%d")
        per_run = [_subprocess_seconds([*scoring, "--partition", d], env) for d in days]
        extrapolated = statistics.mean(per_run) * 365
        in_process_year = _scores_range(world, *SCORED)
        in_process_day = statistics.mean(_scores_range(world, d, d) for d in days)
        results += [
            {
                "name": f"365 days ({rows:,} applications) scored as one run (subprocess)",
                "value": round(year_s, 1),
                "unit": "s",
                "target": "<= 60 s",
            },
            {
                "name": "one run per day (subprocess, mean of 10) x 365",
                "value": round(extrapolated, 1),
                "unit": "s",
                "target": None,
            },
            {
                "name": "one run vs run per partition",
                "value": round(extrapolated / year_s, 1),
                "unit": "x",
                "target": ">= 20x",
            },
            {
                "name": "365 days as one run, in process",
                "value": round(in_process_year, 1),
                "unit": "s",
                "target": None,
            },
            {
                "name": "one day, in process (mean of 10)",
                "value": round(in_process_day, 2),
                "unit": "s",
                "target": None,
            },
        ]

        # 4. Throughput on a million rows.
        pool = pd.concat(
            [pd.read_parquet(p) for p in sorted((home / "storage" / "applications").glob("*.parquet"))[:900]],
            ignore_index=True,
        )
        million = pool.iloc[np.arange(1_000_000) % len(pool)].reset_index(drop=True)
        started = time.perf_counter()
        p = scorer.predict(million)
        policy.decide(p)
        seconds = time.perf_counter() - started
        results.append(
            {
                "name": "scoring throughput, 1,000,000 rows",
                "value": round(len(million) / seconds),
                "unit": "rows/s",
                "target": None,
            }
        )

        # 4b. Scoring against LightGBM's own predict of the same booster on the same rows, side by side.
        results += against_lightgbm(scorer, policy, pool)

        # 5. Before / after a change: the same year with a baseline checkout's code, side by side.
        if os.environ.get("BENCH_BASELINE"):
            results += compare_with_baseline(home, Path(os.environ["BENCH_BASELINE"]))
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--year-run"]:
        _year_run(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["--compare"]:
        _compare(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else ROUNDS)
    else:
        for measurement in run():
            print(measurement)
