"""Reading an export in the seed's CSV format: every problem found with its file line, column, rule and value
(the first step of an import; :mod:`claims_platform.source.csv_import` has the whole)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from os import PathLike
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings

EXPORT_COLUMNS: tuple[str, ...] = (schema.CLAIM_STATUS, *schema.FEATURES)
DATE_COLUMN = schema.APPLICATION_DATE  # optional: each row's application date, YYYY-MM-DD
INDEX = "index"  # how problems name the unnamed index column
MAX_LISTED_PROBLEMS = 20
_NUMBER = re.compile(r"\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|infinity|nan)\s*", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


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


def parse(source: str | PathLike | IO[str]) -> tuple[str, ParsedExport]:
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
    name, parsed = parse(source)
    if parsed.problems:
        raise ExportFormatError(parsed.problems, name)
    export = parsed.export[list(EXPORT_COLUMNS)].copy()
    export[schema.CLAIM_STATUS] = export[schema.CLAIM_STATUS].astype(np.int64)
    return export
