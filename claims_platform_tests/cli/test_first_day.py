"""The platform's first day against a user's export, as the Dagster processes will see it (``.env`` included).

Each case is a folder of its own (a working directory, ``CLAIMS_HOME`` and ``DAGSTER_HOME``), driven by
`claims-platform` subprocesses as a user's shell would:

- the state `make demo` leaves (``CLAIMS_FIRST_DAY`` in ``.env``, an instance with history): a 2025 export
  is refused in ONE line saying what to change, and nothing is written;
- a fresh home: the first day moves to the export's month, in ``.env``, and the printed command runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from claims_platform.core import schema
from claims_platform.source.csv_import import write_export
from claims_platform.source.generator import World, simulate_days

pytestmark = (
    pytest.mark.slow
)  # the command line in subprocesses on a fresh home: `make test`, not `make test-fast`

BIN = Path(sys.executable).parent


def _folder(base: Path) -> dict[str, str]:
    (base / "dagster_home").mkdir(parents=True)
    (base / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAIMS_", "MLFLOW_", "DAGSTER_"))}
    env.update(
        {"CLAIMS_HOME": str(base / "home"), "DAGSTER_HOME": str(base / "dagster_home"), "DO_NOT_TRACK": "1"}
    )
    return env


def _cli(base: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "claims-platform"), *argv], cwd=base, env=env, capture_output=True, text=True, timeout=600
    )


def _export(path: Path, first: date, days: int) -> Path:
    applications, outcomes = simulate_days(
        World.from_seed(5), first, date.fromordinal(first.toordinal() + days - 1)
    )
    applications = applications.head(300)
    write_export(
        applications,
        outcomes[outcomes[schema.APPLICATION_ID].isin(applications[schema.APPLICATION_ID])],
        path,
        with_dates=True,
    )
    return path


def _warehouse_rows(base: Path) -> int:
    from claims_platform.source.warehouse import Warehouse

    warehouse = Warehouse(f"sqlite:///{base / 'home' / 'warehouse.db'}")
    try:
        return warehouse.count_applications(date(2000, 1, 1), date(2100, 1, 1))
    finally:
        warehouse.dispose()


def test_after_the_demo_an_earlier_export_is_refused_in_one_line_before_anything_runs(tmp_path: Path) -> None:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    env = _folder(tmp_path)
    # What `make demo` leaves: its first day in the working directory's .env, and partitions from it on.
    (tmp_path / ".env").write_text("# mine\nCLAIMS_FIRST_DAY=2026-06-01\n")
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))
    instance.report_runless_asset_event(dg.AssetMaterialization("applications", partition="2026-06-01"))
    instance.dispose()
    export = _export(tmp_path / "claims_2025.csv", date(2025, 2, 1), 1)

    for argv in (["import-csv", str(export)], ["run", "--csv", str(export)]):
        done = _cli(tmp_path, env, *argv)
        assert done.returncode == 2 and done.stdout == "", done.stderr[-3000:]
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert "starts on 2025-02-01, before the platform's first day 2026-06-01" in done.stderr
        assert "already holds days from 2026-06-01" in done.stderr and "fresh home" in done.stderr
    assert _warehouse_rows(tmp_path) == 0
    assert (tmp_path / ".env").read_text() == "# mine\nCLAIMS_FIRST_DAY=2026-06-01\n"


def test_in_a_fresh_home_the_first_day_moves_to_the_export_and_the_printed_command_runs(
    tmp_path: Path,
) -> None:
    env = _folder(tmp_path)
    export = _export(tmp_path / "claims_2024.csv", date(2024, 11, 29), 1)
    done = _cli(tmp_path, env, "import-csv", str(export), "--no-plan-check")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "first day moved from 2025-01-01 to 2024-11-01 (CLAIMS_FIRST_DAY in ./.env" in done.stdout
    assert (tmp_path / ".env").read_text() == "CLAIMS_FIRST_DAY=2024-11-01\n"
    assert _warehouse_rows(tmp_path) == 300
    command = next(
        line.split() for line in done.stdout.splitlines() if re.match(r"\s+claims-platform ingest ", line)
    )
    ingested = _cli(tmp_path, env, *command[1:])
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    assert re.search(
        r"ingest +2024-11-29\.\.2024-11-29 \(1 day\): 300 rows read, 300 valid", ingested.stdout
    ), ingested.stdout


@pytest.mark.parametrize("content", ["CLAIMS_FIRST_DAY=June\n", "CLAIMS_FIRST_DAY=2026-06-15\n"])
def test_a_broken_first_day_in_env_is_one_line(tmp_path: Path, content: str) -> None:
    env = _folder(tmp_path)
    (tmp_path / ".env").write_text(content)
    done = _cli(tmp_path, env, "simulate", "--start", "2026-06-01", "--end", "2026-06-01")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "CLAIMS_FIRST_DAY" in done.stderr, (
        done.stderr
    )
