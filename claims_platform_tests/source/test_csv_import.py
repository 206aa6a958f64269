"""Importing an export in the seed's CSV format: checked as a whole, written in one transaction, planned."""

from __future__ import annotations

import io
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from claims_platform.core import schema, settings
from claims_platform.core.months import add_months
from claims_platform.source import csv_import
from claims_platform.source.csv_check import default_batch_name
from claims_platform.source.csv_import import write_export
from claims_platform.source.csv_parse import (
    EXPORT_COLUMNS,
    MAX_LISTED_PROBLEMS,
    BeforeFirstDayError,
    CsvImportError,
    ExportFormatError,
    ImportOptionError,
    ImportPlanError,
    read_export,
)
from claims_platform.source.csv_plan import spread_over_days
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.warehouse import Warehouse
from claims_platform.training.dataset import label_applications, training_window
from claims_platform.training.import_plan import plan_import
from claims_platform.training.split import out_of_time_split

# The importer is handed the training rules' planner by its caller, as the command line does.
import_csv = partial(csv_import.import_csv, planner=plan_import)
prepare_import = partial(csv_import.prepare_import, planner=plan_import)

FIRST = settings.FIRST_DAY


def make_export(path: Path, days: int = 2, *, with_dates: bool = False, rows: int | None = None):
    """A seed-format CSV made from simulated days; returns what was written."""
    applications, outcomes = simulate_days(World.from_seed(7), FIRST, FIRST + timedelta(days=days - 1))
    if rows is not None:
        applications = applications.head(rows)
        outcomes = outcomes[outcomes[schema.APPLICATION_ID].isin(applications[schema.APPLICATION_ID])]
    write_export(applications, outcomes, path, with_dates=with_dates)
    return applications.reset_index(drop=True), outcomes.reset_index(drop=True)


@pytest.fixture(scope="module")
def export_10k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10,000-row export, as the issue's user had."""
    path = tmp_path_factory.mktemp("export") / "claims_2024.csv"
    make_export(path, days=9, rows=10_000)
    return path


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "export.csv"
    make_export(path, days=2)
    return path


@pytest.fixture
def warehouse(tmp_path: Path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.create_tables()
    yield warehouse
    warehouse.dispose()


def stored_rows(warehouse: Warehouse) -> tuple[int, int]:
    """(applications, outcomes) in the whole warehouse."""
    applications = warehouse.read_applications_between(date(2000, 1, 1), date(2100, 1, 1))
    return len(applications), len(warehouse.read_outcomes(date(2200, 1, 1)))


def edit(path: Path, target: Path, changes: dict[tuple[int, str], str]) -> Path:
    """Copy an export with some fields changed: {(data row, column): text}."""
    frame = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    for (row, column), text in changes.items():
        frame.iloc[row, frame.columns.get_loc(column)] = text
    frame.to_csv(target)
    return target


def line_of(row: int) -> int:
    """The file line of data row ``row`` in a file without blank or multi-line records."""
    return row + 2


# ----------------------------------------------------------------------------------------- format
def test_export_format_matches_the_seed(tmp_path: Path) -> None:
    make_export(tmp_path / "export.csv", days=1)
    lines = (tmp_path / "export.csv").read_text().splitlines()
    assert lines[0] == "," + ",".join(EXPORT_COLUMNS)  # unnamed index column first
    assert lines[1].startswith("0,")
    assert ",," in lines[1] or ",," in lines[2]  # blanks for missing family_history_3 / employment_type


def test_read_export_types_like_the_generator(small_export: Path) -> None:
    applications, outcomes = simulate_days(World.from_seed(7), FIRST, FIRST + timedelta(days=1))
    export = read_export(small_export)
    assert tuple(export.columns) == EXPORT_COLUMNS
    pd.testing.assert_frame_equal(
        export[list(schema.FEATURES)], applications[list(schema.FEATURES)], check_exact=True
    )
    assert (export[schema.CLAIM_STATUS].to_numpy() == outcomes[schema.CLAIM_STATUS].to_numpy()).all()


def test_days_are_spread_evenly() -> None:
    assert np.bincount(spread_over_days(2_500, 3)).tolist() == [833, 834, 833]
    assert spread_over_days(5, 5).tolist() == [0, 1, 2, 3, 4]


def test_batch_names() -> None:
    assert default_batch_name("/data/Claims export (2024).csv") == "Claims_export_2024"
    assert default_batch_name("x/ü.csv") == "import"
    with pytest.raises(ImportOptionError, match="batch name 'a b' is not allowed"):
        prepare_import(io.StringIO("x"), batch="a b")


# ----------------------------------------------------------------------------------------- the round trip
def test_import_round_trip(small_export: Path, warehouse: Warehouse) -> None:
    applications, outcomes = simulate_days(World.from_seed(7), FIRST, FIRST + timedelta(days=1))
    start = date(2025, 6, 1)
    summary = import_csv(
        small_export, warehouse, start=start, days=3, label_lag_days=10, require_trainable=False
    )
    assert (summary.rows, summary.days, summary.written, summary.replaced) == (
        len(applications),
        3,
        len(applications),
        0,
    )
    assert (summary.first_day, summary.last_day) == (start, start + timedelta(days=2))
    stored = warehouse.read_applications_between(start, summary.last_day)
    assert (
        np.bincount(spread_over_days(len(applications), 3)).tolist()
        == stored[schema.APPLICATION_DATE].value_counts().sort_index().tolist()
    )
    # Ids are <batch>:<index of the export>, and file order is kept: the features come back row for row.
    by_index = stored.set_index(schema.APPLICATION_ID).loc[[f"export:{i}" for i in range(len(applications))]]
    pd.testing.assert_frame_equal(
        by_index[list(schema.FEATURES)].reset_index(drop=True),
        applications[list(schema.FEATURES)],
        check_exact=True,
    )
    known = warehouse.read_outcomes(date(2030, 1, 1)).set_index(schema.APPLICATION_ID).loc[by_index.index]
    assert (known[schema.CLAIM_STATUS].to_numpy() == outcomes[schema.CLAIM_STATUS].to_numpy()).all()
    assert ((known[schema.KNOWN_DATE] - by_index[schema.APPLICATION_DATE]) == timedelta(days=10)).all()


def test_reimport_replaces_the_batch_even_on_other_days(
    small_export: Path, warehouse: Warehouse, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_bytes(small_export.read_bytes())
    import_csv(other, warehouse, days=2, require_trainable=False)  # another batch stays untouched
    first = import_csv(small_export, warehouse, start=date(2025, 2, 1), days=4, require_trainable=False)
    before = stored_rows(warehouse)
    again = import_csv(small_export, warehouse, start=date(2025, 5, 1), days=7, require_trainable=False)
    assert stored_rows(warehouse) == before == (2 * first.rows, 2 * first.rows)
    assert again.replaced == first.rows
    assert again.vacated_days == tuple(date(2025, 2, 1) + timedelta(days=i) for i in range(4))
    assert warehouse.read_applications_between(date(2025, 2, 1), date(2025, 2, 28)).empty
    assert len(warehouse.read_applications_between(date(2025, 5, 1), date(2025, 5, 7))) == first.rows
    assert (
        len(warehouse.read_applications_between(FIRST, FIRST + timedelta(days=1))) == first.rows
    )  # batch "other"


def test_an_export_without_index_column_gets_line_numbers_as_ids(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    text = tmp_path / "x.csv"
    make_export(text, days=1, rows=50)
    lines = text.read_text().splitlines()
    (tmp_path / "plain.csv").write_text("\n".join(line.split(",", 1)[1] for line in lines) + "\n")
    summary = import_csv(tmp_path / "plain.csv", warehouse, days=1, require_trainable=False)
    assert not summary.prepared.has_index
    ids = warehouse.read_applications(FIRST)[schema.APPLICATION_ID]
    assert sorted(ids) == sorted(f"plain:{line}" for line in range(2, 52))


# ----------------------------------------------------------------------------------------- dates
def test_a_date_column_is_honoured(tmp_path: Path, warehouse: Warehouse) -> None:
    applications, _ = make_export(tmp_path / "dated.csv", days=3, with_dates=True)
    summary = import_csv(tmp_path / "dated.csv", warehouse, require_trainable=False)
    assert summary.prepared.has_dates and "application_date column" in summary.prepared.spread
    assert warehouse.days_present() == [FIRST, FIRST + timedelta(days=1), FIRST + timedelta(days=2)]
    stored = warehouse.read_applications_between(FIRST, FIRST + timedelta(days=2)).set_index(
        schema.APPLICATION_ID
    )
    expected = applications[schema.APPLICATION_DATE].to_numpy()
    assert (
        stored.loc[[f"dated:{i}" for i in range(len(applications))], schema.APPLICATION_DATE].to_numpy()
        == expected
    ).all()
    with pytest.raises(ImportOptionError, match="has an application_date column"):
        prepare_import(tmp_path / "dated.csv", start=date(2025, 3, 1))


def test_bad_dates_are_problems_with_their_lines(tmp_path: Path) -> None:
    make_export(tmp_path / "dated.csv", days=1, with_dates=True, rows=30)
    bad = edit(
        tmp_path / "dated.csv",
        tmp_path / "bad.csv",
        {
            (2, "application_date"): "2025-02-30",
            (4, "application_date"): "03/01/2025",
            (7, "application_date"): "",
        },
    )
    with pytest.raises(ExportFormatError) as caught:
        prepare_import(bad)
    found = {(p.line, p.column, p.rule) for p in caught.value.problems}
    assert found == {
        (line_of(2), "application_date", "a date YYYY-MM-DD"),
        (line_of(4), "application_date", "a date YYYY-MM-DD"),
        (line_of(7), "application_date", "required: a date YYYY-MM-DD"),
    }


def test_days_before_the_first_day_refuse_the_file_once_naming_the_earliest(tmp_path: Path) -> None:
    make_export(tmp_path / "dated.csv", days=1, with_dates=True, rows=30)
    early = edit(
        tmp_path / "dated.csv",
        tmp_path / "early.csv",
        {(6, "application_date"): "2024-12-31", (9, "application_date"): "2024-11-30"},
    )
    with pytest.raises(BeforeFirstDayError) as caught:
        prepare_import(early)
    assert (caught.value.earliest, caught.value.first_day, caught.value.dated_by) == (
        date(2024, 11, 30),
        FIRST,
        "application_date",
    )
    assert caught.value.wanted_first_day == date(2024, 11, 1)
    assert "its days start 2024-11-30" in str(caught.value) and "\n" not in str(caught.value)
    make_export(tmp_path / "plain.csv", days=1, rows=30)
    with pytest.raises(BeforeFirstDayError, match="--start") as caught:
        prepare_import(tmp_path / "plain.csv", start=FIRST - timedelta(days=1))
    assert caught.value.earliest == FIRST - timedelta(days=1)


# ----------------------------------------------------------------------------------------- problems
def test_every_problem_is_reported_with_its_line(small_export: Path, tmp_path: Path) -> None:
    age = schema.COLUMNS_BY_NAME["age"]
    changes = {
        (3, "income"): "lots",
        (5, "age"): "20.5",
        (6, "age"): f"{age.high + 1:g}",
        (7, schema.CLAIM_STATUS): "2",
        (8, "marital_status"): "Z",
        (9, "occupation"): "",
        (10, "age"): "forty",
        (10, "location"): "?",
    }
    bad = edit(small_export, tmp_path / "bad.csv", changes)
    lines = bad.read_text().splitlines(keepends=True)
    lines.insert(4, "\n")  # a blank line: later records move one line down
    lines.append("1,2,3\n")  # a short record
    bad.write_text("".join(lines))
    with pytest.raises(ExportFormatError) as caught:
        prepare_import(bad)
    error = caught.value
    shift = 1  # the blank line
    found = {(p.line, p.column, p.value, p.keepable): p.rule for p in error.problems}
    assert set(found) == {
        (line_of(3) + shift, "income", "lots", False),
        (line_of(5) + shift, "age", "20.5", False),  # an integer column cannot hold it: never kept
        (line_of(6) + shift, "age", f"{age.high + 1:g}", True),
        (line_of(7) + shift, schema.CLAIM_STATUS, "2", False),
        (line_of(8) + shift, "marital_status", "Z", True),
        (line_of(9) + shift, "occupation", "", True),
        (line_of(10) + shift, "age", "forty", False),
        (line_of(10) + shift, "location", "?", True),
        (len(lines), None, None, False),
    }
    # Rules of the file's own reading are this module's; the others are the contract's, named by it.
    assert found[(line_of(3) + shift, "income", "lots", False)] == "a number"
    assert found[(line_of(10) + shift, "age", "forty", False)] == "a number"
    assert found[(line_of(7) + shift, schema.CLAIM_STATUS, "2", False)].startswith("0 or 1")
    assert (
        found[(line_of(6) + shift, "age", f"{age.high + 1:g}", True)] == f"in range {age.low:g}..{age.high:g}"
    )
    assert (
        found[(len(lines), None, None, False)]
        == f"expected {len(EXPORT_COLUMNS) + 1} fields as in the header, found 3"
    )
    assert [p.line for p in error.problems] == sorted(p.line for p in error.problems)
    first_line, *listed = str(error).splitlines()
    assert first_line == f"{bad} refused: 9 problems found, nothing was written"
    assert f"line {line_of(3) + shift}, column 'income': a number (value 'lots')" in listed[0]


def test_the_report_lists_the_first_problems_and_counts_the_rest(small_export: Path, tmp_path: Path) -> None:
    bad = edit(small_export, tmp_path / "bad.csv", {(row, "credit_score_1"): f"x{row}" for row in range(25)})
    with pytest.raises(ExportFormatError) as caught:
        prepare_import(bad)
    lines = str(caught.value).splitlines()
    assert "25 problems found" in lines[0]
    assert len(lines) == 1 + MAX_LISTED_PROBLEMS + 1 and lines[-1] == "  ... and 5 more problems"
    assert [line.split(",")[0].strip() for line in lines[1:-1]] == [f"line {line_of(r)}" for r in range(20)]


def test_quoted_records_over_several_lines_keep_physical_line_numbers(
    small_export: Path, tmp_path: Path
) -> None:
    bad = edit(small_export, tmp_path / "bad.csv", {(1, "location"): "A\nB", (3, "occupation"): "Q"})
    with pytest.raises(ExportFormatError) as caught:
        prepare_import(bad)
    assert [(p.line, p.column) for p in caught.value.problems] == [
        (line_of(1), "location"),
        (line_of(3) + 1, "occupation"),
    ]


def test_index_values_must_be_present_and_unique(small_export: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(small_export, dtype=str, keep_default_na=False)
    frame.iloc[5, 0] = "3"
    frame.iloc[8, 0] = ""
    frame.to_csv(tmp_path / "dup.csv", index=False)
    (tmp_path / "dup.csv").write_text("," + (tmp_path / "dup.csv").read_text().split(",", 1)[1])
    with pytest.raises(ExportFormatError) as caught:
        prepare_import(tmp_path / "dup.csv")
    assert [str(p) for p in caught.value.problems] == [
        f"line {line_of(5)}, index column: unique: also on line {line_of(3)} (value '3')",
        f"line {line_of(8)}, index column: required: each row needs its index value (it becomes the id) (blank)",
    ]


def test_header_problems_name_the_columns() -> None:
    columns = [c for c in EXPORT_COLUMNS if c != "age"] + ["shoe_size"]
    text = ",".join(["", *columns]) + "\n" + ",".join(["0", *["1"] * len(columns)]) + "\n"
    with pytest.raises(
        ExportFormatError, match=r"missing columns \['age'\]; unknown columns \['shoe_size'\]; expected"
    ):
        prepare_import(io.StringIO(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file: no header line and no rows"),
        ("\n\n", "empty file: no header line and no rows"),
        ("," + ",".join(EXPORT_COLUMNS) + "\n", "no rows to import: the file holds only its header line"),
    ],
)
def test_empty_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ExportFormatError, match=message):
        prepare_import(io.StringIO(text))


def test_text_that_is_not_utf8_is_a_problem_with_its_line(small_export: Path, tmp_path: Path) -> None:
    data = small_export.read_bytes().split(b"\n")
    data[3] = data[3].replace(b",", b",\xff", 1)
    (tmp_path / "latin.csv").write_bytes(b"\n".join(data))
    with pytest.raises(ExportFormatError, match="line 4: not UTF-8 text"):
        prepare_import(tmp_path / "latin.csv")


def test_keep_invalid_imports_rows_that_break_only_contract_rules(
    small_export: Path, tmp_path: Path, warehouse: Warehouse
) -> None:
    weight = schema.COLUMNS_BY_NAME["weight_kg"]
    bad = edit(
        small_export,
        tmp_path / "bad.csv",
        {(2, "weight_kg"): f"{weight.low - 1:g}", (4, "marital_status"): "Z"},
    )
    with pytest.raises(ExportFormatError) as caught:
        import_csv(bad, warehouse, require_trainable=False)
    assert caught.value.keepable_only and stored_rows(warehouse) == (0, 0)
    summary = import_csv(bad, warehouse, keep_invalid=True, require_trainable=False)
    assert summary.prepared.invalid_rows == 2 and summary.written == summary.rows
    stored = warehouse.read_applications_between(date(2000, 1, 1), date(2100, 1, 1)).set_index(
        schema.APPLICATION_ID
    )
    assert stored.loc["bad:2", "weight_kg"] == weight.low - 1 and stored.loc["bad:4", "marital_status"] == "Z"
    # An unreadable value is never kept.
    worse = edit(bad, tmp_path / "worse.csv", {(6, "age"): "old"})
    with pytest.raises(ExportFormatError) as caught:
        import_csv(worse, warehouse, keep_invalid=True, require_trainable=False)
    assert not caught.value.keepable_only and len(caught.value.problems) == 3


# ----------------------------------------------------------------------------------------- nothing written
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad value", ExportFormatError),
        ("header only", ExportFormatError),
        ("empty file", ExportFormatError),
        ("missing file", CsvImportError),
        ("bad batch", ImportOptionError),
        ("start before the first day", BeforeFirstDayError),
        ("negative label lag", ImportOptionError),
        ("no days", ImportOptionError),
        ("no daily volume", ImportOptionError),
        ("nothing trainable", ImportPlanError),
    ],
)
def test_a_refused_import_writes_nothing(
    case: str, expected: type, small_export: Path, tmp_path: Path, warehouse: Warehouse
) -> None:
    import_csv(
        small_export, warehouse, days=2, require_trainable=False
    )  # an earlier import of the same batch
    other = tmp_path / "export.csv"
    kwargs: dict = {"require_trainable": True}
    if case == "bad value":
        edit(small_export, other, {(0, "age"): "x"})
    elif case == "header only":
        other.write_text(small_export.read_text().splitlines()[0] + "\n")
    elif case == "empty file":
        other.write_text("")
    elif case == "missing file":
        other = tmp_path / "nope.csv"
    else:
        other.write_bytes(small_export.read_bytes())
        kwargs.update(
            {
                "bad batch": {"batch": "my batch"},
                "start before the first day": {"start": FIRST - timedelta(days=1)},
                "negative label lag": {"label_lag_days": -1},
                "no days": {"days": 0},
                "no daily volume": {"daily_volume": 0},
                "nothing trainable": {"days": 10},
            }[case]
        )
    before = stored_rows(warehouse)
    with pytest.raises(expected):
        import_csv(other, warehouse, **kwargs)
    assert stored_rows(warehouse) == before != (0, 0)


def test_a_failed_write_leaves_the_earlier_import(
    small_export: Path, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_csv(small_export, warehouse, days=2, require_trainable=False)
    before = stored_rows(warehouse)
    original = Warehouse._bulk_insert

    def fail_on_outcomes(self, conn, table, columns):
        if table is self.outcomes:
            raise RuntimeError("disk full")
        return original(self, conn, table, columns)

    monkeypatch.setattr(Warehouse, "_bulk_insert", fail_on_outcomes)
    with pytest.raises(RuntimeError, match="disk full"):
        import_csv(small_export, warehouse, start=date(2025, 3, 1), days=5, require_trainable=False)
    assert stored_rows(warehouse) == before
    assert warehouse.days_present() == [FIRST, FIRST + timedelta(days=1)]


# ----------------------------------------------------------------------------------------- the plan
def test_the_default_spread_of_10000_rows_trains_and_scores(export_10k: Path) -> None:
    prepared = prepare_import(export_10k)
    plan = prepared.plan
    assert prepared.first_day == FIRST and prepared.rows == 10_000
    assert plan.trainable_months and plan.scoreable_days
    # Two months are scored: one candidate failing its quality gate still leaves a model to score with.
    assert len(plan.scoring) >= 2
    first = plan.trainable_months[0]
    assert all(s.decided_in >= first for s in plan.scoring) and plan.scoring[0].decided_in == first
    assert plan.scoring[0].days[0] == add_months(first, 1)

    # The plan is right: the training set of the first trainable month splits, the month before's does not.
    def split(month: date):
        window = training_window(month, settings.TRAINING_WINDOW_MONTHS, earliest=FIRST)
        labelled = label_applications(prepared.applications, prepared.outcomes, window)
        return out_of_time_split(labelled.rows)

    assert len(split(first).holdout) >= 50
    with pytest.raises(ValueError):
        split(add_months(first, -1))


def test_natural_spread_is_kept_when_it_trains_and_scores() -> None:
    # 1,200 a day for 6 months of rows: the first spread tried already scores two months.
    from claims_platform.source.csv_plan import choose_spread

    n = 1_200 * 181
    rng = np.random.default_rng(0)
    chosen = choose_spread(
        n, FIRST, None, None, np.ones(n, bool), (rng.random(n) < 0.15).astype(int), 30, plan_import
    )
    assert chosen.how == f"at about {settings.DAILY_VOLUME:,} a day" and int(chosen.offsets[-1]) == 180


def _rows_for(days: int, per_day: int, start: date = FIRST, seed: int = 0):
    rng = np.random.default_rng(seed)
    dates = [start + timedelta(days=i) for i in range(days) for _ in range(per_day)]
    ids = [f"r{i}" for i in range(len(dates))]
    labels = (rng.random(len(dates)) < 0.15).astype(np.int64)
    applications = pd.DataFrame({schema.APPLICATION_ID: ids, schema.APPLICATION_DATE: dates})
    outcomes = pd.DataFrame(
        {
            schema.APPLICATION_ID: ids,
            schema.CLAIM_STATUS: labels,
            schema.KNOWN_DATE: [d + timedelta(days=30) for d in dates],
        }
    )
    return applications, outcomes


@pytest.mark.parametrize(("days", "per_day"), [(120, 83), (120, 4), (75, 40), (200, 3), (59, 100), (95, 1)])
def test_the_plan_agrees_with_the_training_split(days: int, per_day: int) -> None:
    applications, outcomes = _rows_for(days, per_day)
    frame = applications.assign(claim=outcomes[schema.CLAIM_STATUS])
    plan = plan_import(
        frame.groupby(schema.APPLICATION_DATE).size().to_dict(),
        frame.groupby(schema.APPLICATION_DATE)["claim"].sum().to_dict(),
        30,
    )
    for month in plan.months:
        window = training_window(month.month, settings.TRAINING_WINDOW_MONTHS, earliest=FIRST)
        rows = label_applications(applications, outcomes, window).rows
        try:
            out_of_time_split(rows)
            splits = True
        except ValueError:
            splits = False
        assert month.trainable == splits, (month, len(rows))


def test_the_plan_names_the_scoring_months_and_their_models() -> None:
    days = [FIRST + timedelta(days=i) for i in range(151)]  # January to May
    plan = plan_import(dict.fromkeys(days, 80), dict.fromkeys(days, 12))
    assert [m.strftime("%Y-%m") for m in plan.trainable_months] == ["2025-03", "2025-04", "2025-05"]
    assert [(s.month.month, s.decided_in.month, len(s.days)) for s in plan.scoring] == [
        (4, 3, 30),
        (5, 4, 31),
    ]
    assert plan.training_months == (date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1))
    # A longer label lag delays everything by a month.
    late = plan_import(dict.fromkeys(days, 80), dict.fromkeys(days, 12), label_lag_days=45)
    assert [m.strftime("%Y-%m") for m in late.trainable_months] == ["2025-04", "2025-05"]
    assert "labelled" in late.months[2].reason
