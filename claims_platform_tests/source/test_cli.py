"""The command line, called in process."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from claims_platform import cli, schema
from claims_platform.source.csv_import import write_export
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.scenarios import count_defects
from claims_platform.source.warehouse import Warehouse


def test_simulate_writes_days_with_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    argv = ["simulate", "--start", "2025-01-01", "--end", "2025-01-03", "--warehouse-url", url, "--seed", "5"]
    assert cli.main([*argv, "--scenario", "data_quality", "--from", "2025-01-03"]) == 0
    err = capsys.readouterr().err
    assert "simulate 2025-01-03 (3/3)" in err and "[data_quality]" in err and "over 3 days" in err
    warehouse = Warehouse(url)
    assert warehouse.days_present() == [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)]
    assert count_defects(warehouse.read_applications(date(2025, 1, 2))) == {}
    assert count_defects(warehouse.read_applications(date(2025, 1, 3)))
    expected, _ = simulate_days(World.from_seed(5), date(2025, 1, 1), date(2025, 1, 2))
    stored = warehouse.read_applications_between(date(2025, 1, 1), date(2025, 1, 2))
    assert stored[schema.APPLICATION_ID].tolist() == expected[schema.APPLICATION_ID].tolist()
    warehouse.dispose()


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(SystemExit, match="is before --start"):
        cli.main(["simulate", "--start", "2025-01-03", "--end", "2025-01-01", "--warehouse-url", url])
    with pytest.raises(SystemExit, match="--from needs --scenario"):
        cli.main(["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--from", "2025-01-01"])
    with pytest.raises(SystemExit):  # argparse: not a scenario
        cli.main(["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--scenario", "nope"])


def test_import_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    applications, outcomes = simulate_days(World.from_seed(3), date(2025, 1, 1), date(2025, 1, 2))
    write_export(applications, outcomes, tmp_path / "export.csv")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert (
        cli.main(
            ["import-csv", str(tmp_path / "export.csv"), "--start", "2024-03-01", "--warehouse-url", url]
        )
        == 0
    )
    assert f"imported {len(applications)} applications over 2 days" in capsys.readouterr().err
    warehouse = Warehouse(url)
    assert warehouse.days_present() == [date(2024, 3, 1), date(2024, 3, 2)]
    warehouse.dispose()


def test_import_csv_reports_a_bad_header(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(",claim_status,age\n0,1,40\n")
    with pytest.raises(SystemExit, match=r"bad.csv: not a claims export: missing columns \['height_cm'"):
        cli.main(
            ["import-csv", str(tmp_path / "bad.csv"), "--start", "2024-03-01", "--warehouse-url", "sqlite://"]
        )


def test_parser_has_a_command_per_function() -> None:
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == set(cli.COMMANDS)
