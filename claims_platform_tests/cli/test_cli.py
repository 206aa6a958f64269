"""The command line, called in process: results on stdout, user errors as one line on stderr with status 2."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from claims_platform.cli import main as cli
from claims_platform.core import schema, settings
from claims_platform.source.csv_import import write_export
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.scenarios import count_defects
from claims_platform.source.warehouse import Warehouse

FIRST = settings.FIRST_DAY


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


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """Run ``argv``; it must fail with status 2 and ONE line on stderr holding ``expected``."""
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["simulate", "--start", "2025-01-03", "--end", "2025-01-01"],
            "--end 2025-01-01 is before --start 2025-01-03",
        ),
        (
            ["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--from", "2025-01-01"],
            "--from needs --scenario",
        ),
        (
            ["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--scenario", "nope"],
            "invalid choice: 'nope'",
        ),
        (["simulate", "--end", "2025-01-01"], "the following arguments are required: --start"),
        (
            ["simulate", "--start", "2025-13-01", "--end", "2025-01-01"],
            "not a date (YYYY-MM-DD): '2025-13-01'",
        ),
        (
            ["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--label-lag-days", "-1"],
            "must be 0 or more, got -1",
        ),
        (
            ["demo", "--months", "six"],
            "claims-platform demo: error: argument --months: invalid int value: 'six'",
        ),
        (["nope"], "claims-platform: error: argument COMMAND: invalid choice: 'nope'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv and argv[0] == "simulate":
        argv = [*argv, "--warehouse-url", f"sqlite:///{tmp_path / 'w.db'}"]
    one_line_error(capsys, argv, expected)


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = "import sys; from claims_platform.cli import main as cli; cli.build_parser(); print(sorted(m for m in ('pandas', 'numpy', 'sqlalchemy', 'dagster') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert cli.main(["--help"]) == 0


def test_parser_has_a_command_per_function() -> None:
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == set(cli.COMMANDS)


# ----------------------------------------------------------------------------------------- import-csv
@pytest.fixture(scope="module")
def export_10k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 rows in the seed's format, as the issue's user had."""
    applications, outcomes = simulate_days(World.from_seed(3), FIRST, FIRST + timedelta(days=8))
    applications = applications.head(10_000)
    path = tmp_path_factory.mktemp("export") / "claims.csv"
    write_export(
        applications,
        outcomes[outcomes[schema.APPLICATION_ID].isin(applications[schema.APPLICATION_ID])],
        path,
    )
    return path


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    applications, outcomes = simulate_days(World.from_seed(3), FIRST, FIRST)
    path = tmp_path_factory.mktemp("small") / "export.csv"
    write_export(applications.head(600), outcomes.head(600), path)
    return path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'w.db'}"


def rows_in(url: str) -> int:
    warehouse = Warehouse(url)
    warehouse.create_tables()
    try:
        return len(warehouse.read_applications_between(date(2000, 1, 1), date(2100, 1, 1)))
    finally:
        warehouse.dispose()


def test_import_csv_of_10000_rows_with_the_defaults_trains_and_scores(
    export_10k: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["import-csv", str(export_10k), "--warehouse-url", url]) == 0
    out = capsys.readouterr().out
    assert f"read {export_10k}: 10,000 rows (ids claims:<index>, from its index column)" in out
    assert "days: 2025-01-01..2025-05-31 (151 days with rows), 66–67 rows/day" in out
    assert "trainable months: 2025-03, 2025-04, 2025-05" in out
    assert "scoreable days: 2025-04-01..2025-05-31 (61 days)" in out
    assert "2025-04: 30 days, scored by the champion decided for 2025-03" in out
    # The next commands: the whole run, or its steps one by one, each on the warehouse imported into.
    where = f"--warehouse-url {url}"
    assert f"claims-platform run {where}" in out
    assert f"claims-platform ingest --days 2025-01-01..2025-05-31 {where}" in out
    assert f"claims-platform train --months 2025-03..2025-05 {where}" in out
    assert f"claims-platform score --days 2025-04-01..2025-05-31 {where}" in out
    assert f"claims-platform report --days 2025-04-01..2025-05-31 {where}" in out
    assert f"claims-platform measure --months 2025-04..2025-05 {where}" in out
    assert "dagster asset materialize" not in out
    assert rows_in(url) == 10_000
    warehouse = Warehouse(url)
    assert warehouse.days_present()[0] == FIRST and warehouse.days_present()[-1] == date(2025, 5, 31)
    warehouse.dispose()


def test_import_csv_twice_replaces_the_batch(
    small_export: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["import-csv", str(small_export), "--warehouse-url", url, "--no-plan-check"]
    assert cli.main([*base, "--days", "3"]) == 0
    assert cli.main([*base, "--start", "2025-03-01", "--days", "5"]) == 0
    out = capsys.readouterr().out
    assert "(batch 'export', replacing its 600 earlier rows)" in out
    assert (
        "the batch's earlier rows were also on 2025-01-01..2025-01-03 (3 days) that now hold none of it"
        in out
    )
    assert (
        "claims-platform ingest --days 2025-01-01..2025-03-05" in out
    )  # the vacated days are ingested again
    assert rows_in(url) == 600
    warehouse = Warehouse(url)
    assert warehouse.days_present() == [date(2025, 3, 1) + timedelta(days=i) for i in range(5)]
    loaded = warehouse.loaded_days(date(2025, 3, 1), date(2025, 3, 5))
    # The same file and options again: the warehouse holds exactly these rows, so nothing is written (their
    # load time, which the late-data sensor watches, stays).
    assert cli.main([*base, "--start", "2025-03-01", "--days", "5"]) == 0
    assert "unchanged: " in capsys.readouterr().out
    assert warehouse.loaded_days(date(2025, 3, 1), date(2025, 3, 5)).equals(loaded)
    warehouse.dispose()


def test_import_csv_without_index_column_says_how_ids_are_made(
    small_export: Path, tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(small_export, index_col=0, dtype=str, keep_default_na=False)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    argv = [
        "import-csv",
        str(tmp_path / "plain.csv"),
        "--warehouse-url",
        url,
        "--days",
        "2",
        "--no-plan-check",
    ]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "no index column: ids are plain:<file line>" in captured.out
    assert captured.err.startswith("warning: no month of this import would be trainable")


def test_import_csv_dry_run_writes_nothing(
    small_export: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["import-csv", str(small_export), "--warehouse-url", url, "--dry-run", "--no-plan-check"])
        == 0
    )
    assert "dry run: nothing written" in capsys.readouterr().out
    assert rows_in(url) == 0


def test_import_csv_lists_every_problem_and_writes_nothing(
    small_export: Path, tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(
        ["import-csv", str(small_export), "--warehouse-url", url, "--no-plan-check", "--batch", "earlier"]
    )
    capsys.readouterr()
    frame = pd.read_csv(small_export, index_col=0, dtype=str, keep_default_na=False)
    for row in range(25):
        frame.iloc[row, frame.columns.get_loc("credit_score_2")] = "n/a"
    frame.to_csv(tmp_path / "bad.csv")
    assert cli.main(["import-csv", str(tmp_path / "bad.csv"), "--warehouse-url", url]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and "Traceback" not in err
    assert (
        lines[0]
        == f"claims-platform import-csv: error: {tmp_path / 'bad.csv'} refused: 25 problems found, nothing was written"
    )
    assert lines[1] == "  line 2, column 'credit_score_2': a number (value 'n/a')"
    assert (
        lines[20].startswith("  line 21,") and lines[21] == "  ... and 5 more problems" and len(lines) == 22
    )
    assert rows_in(url) == 600


def test_import_csv_suggests_keep_invalid_for_contract_rules_only(
    small_export: Path, tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(small_export, index_col=0, dtype=str, keep_default_na=False)
    frame.iloc[4, frame.columns.get_loc("location")] = "?"
    frame.to_csv(tmp_path / "odd.csv")
    assert cli.main(["import-csv", str(tmp_path / "odd.csv"), "--warehouse-url", url, "--no-plan-check"]) == 2
    err = capsys.readouterr().err
    assert "refused: 1 problem found" in err.splitlines()[0] and "--keep-invalid imports these rows" in err
    assert rows_in(url) == 0
    argv = [
        "import-csv",
        str(tmp_path / "odd.csv"),
        "--warehouse-url",
        url,
        "--no-plan-check",
        "--keep-invalid",
    ]
    assert cli.main(argv) == 0
    assert "kept 1 rows that break data-contract rules" in capsys.readouterr().out
    assert rows_in(url) == 600


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing file", "nope.csv: no such file"),
        ("a directory", "is a directory, not a CSV file"),
        ("empty file", "refused: 1 problem found"),
        ("header only", "no rows to import"),
        ("--daily-volume 0", "argument --daily-volume: must be 1 or more, got 0"),
        ("--days 0", "argument --days: must be 1 or more, got 0"),
        ("--days x", "argument --days: not a whole number: 'x'"),
        ("--label-lag-days -5", "argument --label-lag-days: must be 0 or more, got -5"),
        ("--start 31/12/2025", "argument --start: not a date (YYYY-MM-DD): '31/12/2025'"),
        ("--batch a:b", "batch name 'a:b' is not allowed"),
        ("--days 2 --daily-volume 5", "argument --daily-volume: not allowed with argument --days"),
        ("--days 3", "no month would be trainable"),
        ("no file argument", "the following arguments are required: file"),
        ("bad warehouse url", "cannot open the warehouse"),
    ],
)
def test_import_csv_user_errors_are_one_line_and_write_nothing(
    case: str, expected: str, small_export: Path, tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(
        ["import-csv", str(small_export), "--warehouse-url", url, "--no-plan-check"]
    )  # an earlier import
    capsys.readouterr()
    before = rows_in(url)
    file, options, warehouse_url = str(small_export), [], url
    if case == "missing file":
        file = str(tmp_path / "nope.csv")
    elif case == "a directory":
        file = str(tmp_path)
    elif case == "empty file":
        (tmp_path / "export.csv").write_text("")
        file = str(tmp_path / "export.csv")
    elif case == "header only":
        (tmp_path / "export.csv").write_text(small_export.read_text().splitlines()[0] + "\n")
        file = str(tmp_path / "export.csv")
    elif case == "bad warehouse url":
        warehouse_url = "nosuchdb://x"
    elif case != "no file argument":
        options = case.split()
    argv = [
        "import-csv",
        *([file] if case != "no file argument" else []),
        *options,
        "--warehouse-url",
        warehouse_url,
    ]
    err = one_line_error(capsys, argv, expected)
    assert err.startswith("claims-platform import-csv: error: ")
    assert rows_in(url) == before == 600


def test_export_report_inlines_the_shared_library_into_one_file(tmp_path: Path, monkeypatch, capsys) -> None:
    from claims_platform.core.settings import ENV_STORAGE_URL

    storage = tmp_path / "storage"
    day = storage / "applications_drift_report" / "2025-06-01"
    day.mkdir(parents=True)
    (day / "report.html").write_text(
        '<html><script src="../_shared/evidently-x.js"></script><p>drift</p></html>'
    )
    (day.parent / "_shared").mkdir()
    (day.parent / "_shared" / "evidently-x.js").write_text("window.drawDashboard = () => 1;")
    monkeypatch.setenv(ENV_STORAGE_URL, str(storage))
    out = tmp_path / "one.html"
    assert cli.main(["export-report", "2025-06-01", "--out", str(out)]) == 0
    assert out.read_text() == "<html><script>window.drawDashboard = () => 1;</script><p>drift</p></html>"
    assert cli.main(["export-report", "2025-06-02"]) == 2
    assert cli.main(["export-report", "June"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "no applications_drift_report report for 2025-06-02" in errors[0]
    assert "neither a day" in errors[1]
