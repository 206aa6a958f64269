"""Run the benchmarks and write bench/results.json and bench/results.md.

Usage: ``python -m bench.run [NAME ...]`` where NAME is a module in bench/ (``source``,
``ingestion``, ``training``, ...). With no NAME every ``bench_*.py`` runs but those in ``BY_NAME_ONLY``
(``quality``, about an hour: ``make bench-quality``), which run when named. Each module exposes
``run() -> list[dict]`` with keys ``name``, ``value``, ``unit`` and ``target`` (text or None).
Results of modules not run this time are kept from the previous file.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
# Modules that run only when named: too long for every `make bench`.
BY_NAME_ONLY = ("quality",)


def _modules(names: list[str]) -> list[str]:
    if names:
        return [n.removeprefix("bench_") for n in names]
    every = (p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    return sorted(name for name in every if name not in BY_NAME_ONLY)


def _markdown(results: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {results['machine']}. Written by `make bench` (`python -m bench.run`).",
        "",
        "| benchmark | measurement | value | unit | target | when |",
        "|---|---|---:|---|---|---|",
    ]
    for module, entry in sorted(results["modules"].items()):
        for m in entry["measurements"]:
            value = m["value"]
            shown = (
                f"{value:,.3f}"
                if isinstance(value, float)
                else f"{value:,}"
                if isinstance(value, int)
                else str(value)
            )
            lines.append(
                f"| {module} | {m['name']} | {shown} | {m['unit']} | {m.get('target') or ''} | {entry['when']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark modules (all by default) and merge their results into the files.

    In an environment and working directory of their own, like the tests': nothing the checkout's
    ``.env`` or ``.local/`` holds (a demo's first day, its instance) changes what is measured.
    """
    import tempfile

    from claims_platform_tests.hermetic import isolate

    names = _modules(list(sys.argv[1:] if argv is None else argv))
    isolate(Path(tempfile.mkdtemp(prefix="claims-bench-")))
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {"modules": {}}
    results["machine"] = (
        f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}"
    )
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        measurements = module.run()
        elapsed = time.perf_counter() - started
        results["modules"][name] = {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(elapsed, 1),
            "measurements": measurements,
        }
        for m in measurements:
            print(
                f"{name:>10} | {m['name']}: {m['value']} {m['unit']} (target {m.get('target')})", flush=True
            )
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    RESULTS_MD.write_text(_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
