"""Bring your own data: import an export in the seed's CSV format into the warehouse, all or nothing.

The seed's format is an unnamed index column, ``claim_status``, then the 40 feature columns (blank
fields for missing values); an optional ``application_date`` column (``YYYY-MM-DD``) gives each row
its day. Columns may come in any order.

An import is checked as a WHOLE before anything is written (:func:`prepare_import`). Every problem is
collected with its file line (the physical line the record starts on; the header is line 1), column,
rule and value: an unreadable CSV, wrong columns, a value that is not a number in a numeric column, a
label other than 0/1, a blank or repeated index value, a bad date, and every rule of the data contract
(:func:`claims_platform.core.contract.validate_applications`, on the rows with their ids and dates).
Any problem refuses the file; with ``keep_invalid`` the rows that break only contract rules are
imported on purpose, and the platform's ingestion routes them to ``rejected_applications`` with their
reasons (a value that cannot be stored at all — text in a numeric column — always refuses).

Ids are stable: ``<batch>:<index>``, from the export's index column (or the file line when there is
none) and a batch name that defaults to the file's stem. The write is ONE transaction
(:meth:`Warehouse.write_batch`) that first deletes every earlier row of the batch, so importing a file
again — even on other days — replaces it.

Without a date column the rows are spread in file order over consecutive days from ``start`` (the
platform's first day by default). The default spread is the first of these whose plan
(:mod:`claims_platform.training.import_plan`) scores two months — so that one month's candidate failing
its quality gate still leaves a model to score with — else one month: about ``settings.DAILY_VOLUME``
rows a day; else whole months, from ``start`` to the end of the month 3, 4, … months later.
``days`` or ``daily_volume`` choose the spread explicitly.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from os import PathLike
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings
from claims_platform.core.months import add_months
from claims_platform.source.warehouse import Warehouse

EXPORT_COLUMNS: tuple[str, ...] = (schema.CLAIM_STATUS, *schema.FEATURES)
DATE_COLUMN = schema.APPLICATION_DATE  # optional: each row's application date, YYYY-MM-DD
INDEX = "index"  # how problems name the unnamed index column
MAX_LISTED_PROBLEMS = 20
BATCH_NAME = re.compile(r"[A-Za-z0-9_.-]+")
BATCH_SEPARATOR = ":"
# Whole-month spreads tried by default: from the start to the end of the month this many months later.
WHOLE_MONTH_SPREADS = range(3, settings.TRAINING_WINDOW_MONTHS + 1)

_NUMBER = re.compile(r"\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|infinity|nan)\s*", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ImportPlan(Protocol):
    """What the importer asks of a plan of what the platform can do with an import: the training rules
    live above the world outside (``claims_platform.training.import_plan`` makes one), so the caller
    hands the importer its :data:`Planner`."""

    @property
    def scoring(self) -> Sequence[object]: ...  # the months whose days a trained model would score
    @property
    def useful(self) -> bool: ...  # a model can be trained, and it will have imported days to score
    @property
    def trainable_months(self) -> Sequence[date]: ...
    def why_not_trainable(self) -> str: ...
    def requirements(self) -> str: ...


# rows per day, claims per day (valid rows only), label lag in days -> the plan
Planner = Callable[[Mapping[date, int], Mapping[date, int], int], ImportPlan]


# ------------------------------------------------------------------------------------------ problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with an export, where the user can find it."""

    line: int | None  # physical line of the file (header = 1); None for the file as a whole
    column: str | None
    rule: str
    value: str | None = None  # the text as in the file ("" for a blank field)
    keepable: bool = False  # breaks a data-contract rule only: ``keep_invalid`` imports the row anyway

    def __str__(self) -> str:
        where = "file" if self.line is None else f"line {self.line}"
        if self.column == INDEX:
            where += ", index column"
        elif self.column is not None:
            where += f", column {self.column!r}"
        if self.value is None:
            value = ""
        elif self.value.strip() == "":
            value = " (blank)"
        else:
            value = f" (value {_shorten(self.value)!r})"
        return f"{where}: {self.rule}{value}"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CsvImportError(ValueError):
    """The import cannot go ahead; the message says why and what to do. Nothing was written."""


class ImportOptionError(CsvImportError):
    """An option of the import is invalid (a bad batch name, a start before the platform's first day, ...)."""


class ExportFormatError(CsvImportError):
    """The file cannot be imported as it is: every problem found, the first ones listed in the message."""

    def __init__(self, problems: Sequence[Problem], source_name: str = "the export") -> None:
        self.source_name = source_name
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.report())

    @property
    def keepable_only(self) -> bool:
        """Every problem is a contract rule that ``keep_invalid`` would let through."""
        return all(p.keepable for p in self.problems)

    def headline(self) -> str:
        n = len(self.problems)
        return f"{self.source_name} refused: {n} problem{'s' if n != 1 else ''} found, nothing was written"

    def report(self, limit: int = MAX_LISTED_PROBLEMS) -> str:
        """The headline, then the first ``limit`` problems, one a line, and how many more there are.

        A single problem is told on the headline's line.
        """
        if len(self.problems) == 1:
            return f"{self.headline()} — {self.problems[0]}"
        lines = [self.headline(), *(f"  {p}" for p in self.problems[:limit])]
        more = len(self.problems) - limit
        if more > 0:
            lines.append(f"  ... and {more} more problem{'s' if more != 1 else ''}")
        return "\n".join(lines)


class BeforeFirstDayError(CsvImportError):
    """The export's days start before the platform's first day, where no partition could ever hold them."""

    def __init__(self, source_name: str, earliest: date, dated_by: str) -> None:
        self.source_name, self.earliest, self.dated_by = source_name, earliest, dated_by
        self.first_day = settings.FIRST_DAY
        super().__init__(
            f"{source_name}: its days start {earliest} ({'its ' + DATE_COLUMN + ' column' if dated_by == DATE_COLUMN else dated_by}), "
            f"before the platform's first day {self.first_day} ({settings.ENV_FIRST_DAY}), where the partitions start"
        )

    @property
    def wanted_first_day(self) -> date:
        """The first day that would hold the export: the first of its earliest month."""
        return self.earliest.replace(day=1)


class ImportPlanError(CsvImportError):
    """The import would give the platform nothing to train on."""


# ------------------------------------------------------------------------------------------ reading
def _source_name(source: str | PathLike | IO[str]) -> str:
    if isinstance(source, str | PathLike):
        return str(source)
    return str(getattr(source, "name", "the export"))


def _read_text(source: str | PathLike | IO[str]) -> tuple[str | None, Problem | None]:
    """The file's text, or the problem that stops it being read as text."""
    if not isinstance(source, str | PathLike):
        return source.read(), None
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CsvImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CsvImportError(f"{path}: is a directory, not a CSV file") from None
    except OSError as error:
        raise CsvImportError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return None, Problem(
            line, None, f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the export as UTF-8 CSV"
        )


def _records(text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, fields) of every non-blank record; a CSV error ends the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problems.append(Problem(previous + 1, None, f"unreadable CSV: {error}"))
            return
        start, previous = previous + 1, reader.line_num
        if fields:
            yield start, fields


@dataclass
class ParsedExport:
    """An export as read: typed values, where each row came from, and the problems found so far."""

    has_index: bool
    has_dates: bool
    columns: tuple[str, ...]  # the file's columns in file order (without the index column)
    text: pd.DataFrame  # the fields as read (object), one row per well-formed record
    lines: np.ndarray  # file line of each row
    index: list[str]  # each row's index value (the file line when there is no index column)
    export: pd.DataFrame  # claim_status (float, NaN where unreadable) then the features, typed
    dates: list[date | None] | None  # from the date column (None where unreadable)
    problems: list[Problem] = field(default_factory=list)
    unreadable: set[tuple[int, str]] = field(default_factory=set)  # (row, column) already reported
    unstorable: set[tuple[int, str]] = field(default_factory=set)  # (row, column) the warehouse cannot hold
    identity_rows: set[int] = field(default_factory=set)  # rows whose index or date is blank, repeated or bad
    fatal: bool = False  # the rows could not be read at all (no header, wrong columns, no rows)


def _expected_text() -> str:
    return (
        f"expected an unnamed index column, then {', '.join(EXPORT_COLUMNS)} "
        f"(any order; an {DATE_COLUMN} column YYYY-MM-DD is optional)"
    )


def parse_export(text: str) -> ParsedExport:
    """Read an export's text; every problem is collected in ``problems``, nothing is raised."""
    problems: list[Problem] = []
    records = list(_records(text, problems))
    empty = ParsedExport(
        False, False, (), pd.DataFrame(), np.zeros(0, int), [], pd.DataFrame(), None, problems, fatal=True
    )
    if not records:
        if not problems:
            problems.append(Problem(None, None, "empty file: no header line and no rows"))
        return empty
    header_line, header = records[0]
    header = [h.strip() for h in header]
    has_index = header[0] == ""
    names = header[1:] if has_index else header
    missing = [c for c in EXPORT_COLUMNS if c not in names]
    unknown = [c for c in names if c not in EXPORT_COLUMNS and c != DATE_COLUMN]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if missing or unknown or repeated:
        rule = (
            f"not a claims export: missing columns {missing or 'none'}; unknown columns {unknown or 'none'}"
        )
        if repeated:
            rule += f"; repeated columns {repeated}"
        problems.append(Problem(header_line, None, f"{rule}; {_expected_text()}"))
        return empty
    rows, lines = [], []
    for line, fields in records[1:]:
        if len(fields) != len(header):
            problems.append(
                Problem(line, None, f"expected {len(header)} fields as in the header, found {len(fields)}")
            )
        else:
            rows.append(fields)
            lines.append(line)
    if not records[1:] and not problems:
        problems.append(Problem(None, None, "no rows to import: the file holds only its header line"))
        return empty
    table = (
        pd.DataFrame(rows, columns=header, dtype=object)
        if rows
        else pd.DataFrame(columns=header, dtype=object)
    )
    parsed = ParsedExport(
        has_index=has_index,
        has_dates=DATE_COLUMN in names,
        columns=tuple(names),
        text=table[list(names)],
        lines=np.asarray(lines, dtype=np.int64),
        index=[],
        export=pd.DataFrame(index=table.index),
        dates=None,
        problems=problems,
    )
    _read_index(parsed, table[""] if has_index else None)
    _read_values(parsed)
    if parsed.has_dates:
        _read_dates(parsed)
    return parsed


def _problem(parsed: ParsedExport, row: int, column: str, rule: str, value: str | None, **kw) -> None:
    parsed.problems.append(Problem(int(parsed.lines[row]), column, rule, value, **kw))


def _read_index(parsed: ParsedExport, index: pd.Series | None) -> None:
    if index is None:
        parsed.index = [str(line) for line in parsed.lines]
        return
    values = index.str.strip()
    first_row: dict[str, int] = {}
    for row, value in enumerate(values):
        if value == "":
            _problem(parsed, row, INDEX, "required: each row needs its index value (it becomes the id)", "")
            parsed.identity_rows.add(row)
        elif value in first_row:
            _problem(parsed, row, INDEX, f"unique: also on line {parsed.lines[first_row[value]]}", value)
            parsed.identity_rows.update((row, first_row[value]))
        else:
            first_row[value] = row
    parsed.index = values.tolist()


def _numbers(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, unreadable) of a column of text: blanks are NaN, numbers exact (Python's own parser)."""
    blank = text == ""
    filled = np.where(blank, "nan", text)
    try:  # the clean case, vectorised: one float() per cell in C
        return filled.astype(np.float64), np.zeros(len(text), dtype=bool)
    except ValueError:
        pass
    filled = np.array(["nan" if t.strip() == "" else t for t in text], dtype=object)  # blank with spaces too
    readable = np.array([bool(_NUMBER.fullmatch(t)) for t in filled], dtype=bool)
    values = np.full(len(text), np.nan)
    values[readable] = filled[readable].astype(np.float64)
    return values, ~readable


def _read_values(parsed: ParsedExport) -> None:
    """Numbers as float64, categorical levels as text, blank fields as missing."""
    for name in (schema.CLAIM_STATUS, *schema.FEATURES):
        text = parsed.text[name]
        column = schema.COLUMNS_BY_NAME.get(name)
        if column is not None and column.kind == "category":
            parsed.export[name] = text.where(text != "", None)
            continue
        values, unreadable = _numbers(text.to_numpy(dtype=object))
        if name == schema.CLAIM_STATUS:
            for row in np.flatnonzero(~np.isin(values, (0.0, 1.0))):
                _problem(parsed, row, name, "0 or 1 (the outcome: 1 = claim)", text.iat[row])
        else:
            for row in np.flatnonzero(unreadable):
                _problem(parsed, row, name, "a number", text.iat[row])
                parsed.unreadable.add((int(row), name))
            if column is not None and column.kind == "int":
                # An integer column cannot hold 20.5 or inf: the contract names the rule, the row cannot be kept.
                with np.errstate(invalid="ignore"):
                    odd = ~np.isnan(values) & (np.isinf(values) | (values != np.round(values)))
                parsed.unstorable.update((int(row), name) for row in np.flatnonzero(odd))
        parsed.export[name] = values
    dtypes = {
        name: dtype
        for name, dtype in schema.FEATURE_DTYPES.items()
        if dtype == "int64"
        and not np.isnan(parsed.export[name]).any()
        and (parsed.export[name] == np.round(parsed.export[name])).all()
    }
    parsed.export = parsed.export.astype(dtypes)


def _read_dates(parsed: ParsedExport) -> None:
    text = parsed.text[DATE_COLUMN].str.strip()
    well_formed = text.str.fullmatch(_ISO_DATE).fillna(False).to_numpy(dtype=bool)
    stamps = pd.to_datetime(text.where(well_formed), format="%Y-%m-%d", errors="coerce")
    dates: list[date | None] = []
    for row, stamp in enumerate(stamps):
        if pd.isna(stamp):
            rule = "required: a date YYYY-MM-DD" if text.iat[row] == "" else "a date YYYY-MM-DD"
            _problem(parsed, row, DATE_COLUMN, rule, parsed.text[DATE_COLUMN].iat[row])
            parsed.identity_rows.add(row)
            dates.append(None)
        else:
            dates.append(stamp.date())
    parsed.dates = dates


def _parse(source: str | PathLike | IO[str]) -> tuple[str, ParsedExport]:
    """The source's name and its parsed text; a file that cannot be read at all raises at once."""
    name = _source_name(source)
    text, problem = _read_text(source)
    if problem is not None:
        raise ExportFormatError([problem], name)
    return name, parse_export(text)


def read_export(source: str | PathLike | IO[str]) -> pd.DataFrame:
    """Read and type an export: ``claim_status`` (int64) then ``schema.FEATURES``, file order kept.

    Raises :class:`ExportFormatError` listing every problem that stops the file being read (columns,
    unreadable values, labels, index values, dates). Values outside the schema's ranges are kept:
    judging them is the data contract's job (:func:`prepare_import` does that too).
    """
    name, parsed = _parse(source)
    if parsed.problems:
        raise ExportFormatError(parsed.problems, name)
    export = parsed.export[list(EXPORT_COLUMNS)].copy()
    export[schema.CLAIM_STATUS] = export[schema.CLAIM_STATUS].astype(np.int64)
    return export


# ------------------------------------------------------------------------------------------ batches
def check_batch_name(name: str) -> str:
    """``name`` if it is a valid batch name (letters, digits, ``_ . -``), else :class:`ImportOptionError`."""
    if not BATCH_NAME.fullmatch(name or ""):
        raise ImportOptionError(
            f"batch name {name!r} is not allowed: use letters, digits, '_', '.' and '-' only (ids are <batch>:<index>)"
        )
    return name


def default_batch_name(source_name: str) -> str:
    """The file's stem with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    stem = Path(source_name).stem if source_name != "the export" else "import"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_")
    return name or "import"


# ------------------------------------------------------------------------------------------ the contract
def _contract_problems(parsed: ParsedExport, applications: pd.DataFrame) -> tuple[list[Problem], np.ndarray]:
    """Every contract rule the rows break, at their file lines (values as in the file), and which rows break one."""
    from claims_platform.core.contract import (
        REASON_PATTERN,
        REJECTION_REASON,
        ROW_NUMBER,
        validate_applications,
    )

    dates = applications[schema.APPLICATION_DATE]
    result = validate_applications(applications, min(dates), max(dates))
    problems: list[Problem] = []
    reported: set[tuple[int, str]] = set()
    rejected = np.zeros(len(applications), dtype=bool)
    rejected[result.rejected[ROW_NUMBER].to_numpy(dtype=np.int64)] = True
    for row, reason in zip(result.rejected[ROW_NUMBER], result.rejected[REJECTION_REASON], strict=True):
        row = int(row)
        line = int(parsed.lines[row])
        matches = list(REASON_PATTERN.finditer(str(reason)))
        if not matches:
            problems.append(Problem(line, None, str(reason), keepable=True))
            continue
        for match in matches:
            column, rule, value = match["column"], match["rule"], match["value"]
            if (row, column) in parsed.unreadable:
                continue  # reported as "a number" already; its NaN is no second problem
            if row in parsed.identity_rows and column in (schema.APPLICATION_ID, schema.APPLICATION_DATE):
                continue  # an index or date problem of this row, reported already
            if column in parsed.text.columns:
                value = parsed.text[column].iat[row]
            unstorable = (row, column) in parsed.unstorable
            reported.add((row, column))
            problems.append(Problem(line, column, rule, value, keepable=not unstorable))
    for row, column in sorted(parsed.unstorable - reported):
        problems.append(
            Problem(
                int(parsed.lines[row]),
                column,
                "a whole number (an integer column)",
                parsed.text[column].iat[row],
            )
        )
    return problems, rejected


def _sort_problems(problems: list[Problem], columns: Sequence[str]) -> list[Problem]:
    order = {c: i for i, c in enumerate(columns)}
    return sorted(
        problems,
        key=lambda p: (p.line or 0, -1 if p.column == INDEX else order.get(p.column or "", len(order))),
    )


# ------------------------------------------------------------------------------------------ spreading
def spread_over_days(n_rows: int, days: int) -> np.ndarray:
    """Day offset of each row, in file order: ``days`` consecutive days of nearly equal size."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    bounds = np.linspace(0, n_rows, days + 1).round().astype(np.int64)
    return np.repeat(np.arange(days, dtype=np.int64), np.diff(bounds))


def _spread_candidates(
    n_rows: int, start: date, days: int | None, daily_volume: int | None
) -> Iterator[tuple[int, str]]:
    """(number of days, how it was chosen) in order of preference."""
    if days is not None:
        yield days, f"over --days {days}"
        return
    if daily_volume is not None:
        yield math.ceil(n_rows / daily_volume), f"at about {daily_volume:,} a day (--daily-volume)"
        return
    yield math.ceil(n_rows / settings.DAILY_VOLUME), f"at about {settings.DAILY_VOLUME:,} a day"
    for months in WHOLE_MONTH_SPREADS:
        end = add_months(start.replace(day=1), months + 1) - timedelta(days=1)
        n_days = (end - start).days + 1
        if n_days > n_rows:
            return
        yield n_days, f"over whole months to {end}"


@dataclass(frozen=True)
class _Spread:
    offsets: np.ndarray
    start: date
    how: str
    plan: ImportPlan


def _day_counts(days: Sequence[date] | np.ndarray, mask: np.ndarray, claims: np.ndarray):
    frame = pd.DataFrame({"day": np.asarray(days, dtype=object)[mask], "claims": claims[mask]})
    grouped = frame.groupby("day")["claims"]
    return grouped.size().to_dict(), grouped.sum().astype(int).to_dict()


def _choose_spread(
    n_rows: int,
    start: date,
    days: int | None,
    daily_volume: int | None,
    valid: np.ndarray,
    claims: np.ndarray,
    label_lag_days: int,
    planner: Planner,
) -> _Spread:
    """The first candidate spread whose plan scores two months, else one, else the first candidate.

    Two scored months make the default robust: a month can be trainable and its candidate still fail
    the quality gate (small holdouts make calibration noisy), and the next month's model then scores.
    """
    tried: list[_Spread] = []
    for n_days, how in _spread_candidates(n_rows, start, days, daily_volume):
        offsets = spread_over_days(n_rows, n_days)
        first = np.bincount(offsets[valid], minlength=n_days)
        claimed = np.bincount(offsets[valid], weights=claims[valid], minlength=n_days).astype(int)
        day_of = [start + timedelta(days=i) for i in range(n_days)]
        plan = planner(
            dict(zip(day_of, first.tolist(), strict=True)),
            dict(zip(day_of, claimed.tolist(), strict=True)),
            label_lag_days,
        )
        tried.append(_Spread(offsets, start, how, plan))
        if len(plan.scoring) >= 2:
            break
    chosen = next(
        (t for t in tried if len(t.plan.scoring) >= 2), next((t for t in tried if t.plan.useful), tried[0])
    )
    natural = tried[0]
    if chosen is not natural:
        span = int(natural.offsets[-1]) + 1
        why = f"{natural.how} the rows would fill {span} day{'s' if span != 1 else ''}"
        why += (
            ", too few to train a model and then score days with it"
            if not natural.plan.useful
            else (", enough to score one month only")
        )
        chosen = _Spread(chosen.offsets, start, f"{chosen.how} ({why})", chosen.plan)
    return chosen


# ------------------------------------------------------------------------------------------ the import
@dataclass(frozen=True)
class PreparedImport:
    """An import checked as a whole, with its rows, ids, days, outcomes and plan: ready to write."""

    source_name: str
    batch: str
    has_index: bool
    has_dates: bool
    applications: pd.DataFrame  # schema.APPLICATION_COLUMNS, file order
    outcomes: pd.DataFrame  # schema.OUTCOME_COLUMNS
    invalid_rows: int  # rows kept although they break contract rules (keep_invalid)
    worst_invalid_share: float  # the largest share of such rows on one day
    spread: str  # how the application dates were given
    label_lag_days: int
    plan: ImportPlan

    @property
    def id_prefix(self) -> str:
        return f"{self.batch}{BATCH_SEPARATOR}"

    @property
    def rows(self) -> int:
        return len(self.applications)

    @property
    def rows_per_day(self) -> pd.Series:
        """Rows of each day with rows, by day."""
        return self.applications[schema.APPLICATION_DATE].value_counts().sort_index()

    @property
    def first_day(self) -> date:
        return min(self.applications[schema.APPLICATION_DATE])

    @property
    def last_day(self) -> date:
        return max(self.applications[schema.APPLICATION_DATE])


def _check_options(
    start: date | None, days: int | None, daily_volume: int | None, label_lag_days: int
) -> None:
    if label_lag_days < 0:
        raise ImportOptionError(f"--label-lag-days must be 0 or more, got {label_lag_days}")
    if days is not None and days < 1:
        raise ImportOptionError(f"--days must be at least 1, got {days}")
    if daily_volume is not None and daily_volume < 1:
        raise ImportOptionError(f"--daily-volume must be at least 1, got {daily_volume}")
    if days is not None and daily_volume is not None:
        raise ImportOptionError("--days and --daily-volume both choose the spread: give one of them")


def prepare_import(
    source: str | PathLike | IO[str],
    *,
    batch: str | None = None,
    start: date | None = None,
    days: int | None = None,
    daily_volume: int | None = None,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
    keep_invalid: bool = False,
    planner: Planner,
) -> PreparedImport:
    """Read and check a whole export, give its rows ids and days, and plan what the platform can do with it
    (``planner``: :func:`claims_platform.training.import_plan.plan_import`, given by the caller).

    Raises :class:`ExportFormatError` with every problem found (nothing may be written), and
    :class:`ImportOptionError` for options that do not fit the file. No database is touched.
    """
    _check_options(start, days, daily_volume, label_lag_days)
    name, parsed = _parse(source)
    batch = check_batch_name(batch) if batch is not None else default_batch_name(name)
    if parsed.fatal:
        raise ExportFormatError(parsed.problems, name)
    if parsed.has_dates and (start is not None or days is not None or daily_volume is not None):
        raise ImportOptionError(
            f"{name} has an {DATE_COLUMN} column, which dates every row: --start, --days and --daily-volume do not apply"
        )
    n = len(parsed.text)
    chosen_start = start
    start = start or settings.FIRST_DAY
    if parsed.has_dates:
        known = [d for d in parsed.dates or [] if d is not None]
        placeholder = min(known) if known else settings.FIRST_DAY
        row_dates = [d if d is not None else placeholder for d in parsed.dates or []]
    else:
        row_dates = [start] * n  # the contract does not depend on the day; the spread comes after
    ids = [f"{batch}{BATCH_SEPARATOR}{i}" for i in parsed.index]
    applications = pd.DataFrame({schema.APPLICATION_ID: ids, schema.APPLICATION_DATE: row_dates})
    applications = pd.concat([applications, parsed.export[list(schema.FEATURES)]], axis=1)
    contract, invalid = _contract_problems(parsed, applications) if n else ([], np.zeros(0, dtype=bool))
    problems = _sort_problems(parsed.problems + contract, parsed.columns)
    if problems and not (keep_invalid and all(p.keepable for p in problems)):
        raise ExportFormatError(problems, name)
    # The file is sound; whether the platform can hold its days is the platform's setting, told in one line.
    earliest = min(row_dates, default=start)
    if earliest < settings.FIRST_DAY:
        raise BeforeFirstDayError(name, earliest, "--start" if chosen_start is not None else DATE_COLUMN)

    valid = ~invalid
    claims = parsed.export[schema.CLAIM_STATUS].to_numpy(dtype=np.int64)
    if parsed.has_dates:
        rows, claimed = _day_counts(row_dates, valid, claims)
        plan = planner(rows, claimed, label_lag_days)
        how = f"from its {DATE_COLUMN} column"
    else:
        spread = _choose_spread(n, start, days, daily_volume, valid, claims, label_lag_days, planner)
        row_dates = [start + timedelta(days=int(o)) for o in spread.offsets]
        applications[schema.APPLICATION_DATE] = row_dates
        plan, how = spread.plan, f"spread in file order {spread.how}"
    share = (
        pd.Series(invalid).groupby(pd.Series(row_dates, dtype=object)).mean() if n else pd.Series(dtype=float)
    )
    outcomes = pd.DataFrame(
        {
            schema.APPLICATION_ID: ids,
            schema.CLAIM_STATUS: claims,
            schema.KNOWN_DATE: [d + timedelta(days=label_lag_days) for d in row_dates],
        }
    )
    return PreparedImport(
        source_name=name,
        batch=batch,
        has_index=parsed.has_index,
        has_dates=parsed.has_dates,
        applications=applications,
        outcomes=outcomes,
        invalid_rows=int(invalid.sum()),
        worst_invalid_share=float(share.max()) if len(share) else 0.0,
        spread=how,
        label_lag_days=label_lag_days,
        plan=plan,
    )


def not_trainable_message(prepared: PreparedImport) -> str:
    """Why nothing the import holds can train a model, and what would change that (one line)."""
    plan = prepared.plan
    return (
        f"{prepared.source_name}: no month would be trainable ({plan.why_not_trainable()}). {plan.requirements()}: "
        "import more rows, spread them over more days (--days N, e.g. three months or more), or give each row its "
        f"real date in an {DATE_COLUMN} column"
    )


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote (nothing on a dry run)."""

    prepared: PreparedImport
    written: int
    replaced: int  # applications of an earlier import of the same batch that were replaced
    dry_run: bool = False
    replaced_days: tuple[date, ...] = ()  # the days those replaced rows were on
    unchanged: bool = False  # the warehouse held exactly this batch already: nothing was written
    other_rows: int = (
        0  # applications of other batches or sources on the import's days (trained and scored with it)
    )

    @property
    def vacated_days(self) -> tuple[date, ...]:
        """Days the batch's earlier rows were on and its new rows are not: their ingested partitions are stale."""
        now = set(self.prepared.rows_per_day.index)
        return tuple(d for d in self.replaced_days if d not in now)

    @property
    def rows(self) -> int:
        return self.prepared.rows

    @property
    def days(self) -> int:
        return len(self.prepared.rows_per_day)

    @property
    def first_day(self) -> date:
        return self.prepared.first_day

    @property
    def last_day(self) -> date:
        return self.prepared.last_day


def import_csv(
    source: str | PathLike | IO[str],
    warehouse: Warehouse,
    *,
    batch: str | None = None,
    start: date | None = None,
    days: int | None = None,
    daily_volume: int | None = None,
    label_lag_days: int = settings.LABEL_LAG_DAYS,
    keep_invalid: bool = False,
    require_trainable: bool = True,
    dry_run: bool = False,
    planner: Planner,
) -> ImportSummary:
    """Check the whole export (:func:`prepare_import`), then replace its batch in ``warehouse`` in ONE transaction.

    With ``require_trainable`` an import that no month could train on raises :class:`ImportPlanError`.
    Any error leaves the warehouse as it was.
    """
    prepared = prepare_import(
        source,
        batch=batch,
        start=start,
        days=days,
        daily_volume=daily_volume,
        label_lag_days=label_lag_days,
        keep_invalid=keep_invalid,
        planner=planner,
    )
    if require_trainable and not prepared.plan.trainable_months:
        raise ImportPlanError(not_trainable_message(prepared))
    others = warehouse.count_applications(
        prepared.first_day, prepared.last_day, excluding_prefix=prepared.id_prefix
    )
    if dry_run:
        return ImportSummary(prepared, written=0, replaced=0, dry_run=True, other_rows=others)
    warehouse.create_tables()
    written = warehouse.write_batch(
        prepared.id_prefix, prepared.applications, prepared.outcomes, keep_if_unchanged=True
    )
    return ImportSummary(
        prepared,
        written.written,
        written.replaced,
        replaced_days=written.replaced_days,
        unchanged=written.unchanged,
        other_rows=others,
    )


def write_export(
    applications: pd.DataFrame,
    outcomes: pd.DataFrame,
    target: str | PathLike | IO[str],
    *,
    with_dates: bool = False,
) -> None:
    """Write applications and their outcomes in the seed's export format (the inverse of :func:`read_export`).

    ``with_dates`` adds the ``application_date`` column, so an import keeps each row's day.
    """
    labels = outcomes.drop_duplicates(schema.APPLICATION_ID).set_index(schema.APPLICATION_ID)[
        schema.CLAIM_STATUS
    ]
    frame = applications[list(schema.FEATURES)].copy()
    frame.insert(0, schema.CLAIM_STATUS, labels.reindex(applications[schema.APPLICATION_ID]).to_numpy())
    if frame[schema.CLAIM_STATUS].isna().any():
        raise ValueError("every application needs an outcome to be exported")
    frame[schema.CLAIM_STATUS] = frame[schema.CLAIM_STATUS].astype(np.int64)
    if with_dates:
        frame.insert(0, DATE_COLUMN, [str(d) for d in applications[schema.APPLICATION_DATE]])
    frame = frame.reset_index(drop=True)
    frame.to_csv(target, index=True)
