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

from dataclasses import dataclass
from datetime import date, timedelta
from os import PathLike
from typing import IO

import numpy as np
import pandas as pd

from claims_platform.core import schema, settings
from claims_platform.source.csv_check import (
    BATCH_SEPARATOR,
    check_batch_name,
    check_options,
    contract_problems,
    default_batch_name,
    sort_problems,
)
from claims_platform.source.csv_parse import (
    DATE_COLUMN,
    BeforeFirstDayError,
    ExportFormatError,
    ImportOptionError,
    ImportPlanError,
    parse,
)
from claims_platform.source.csv_plan import ImportPlan, Planner, choose_spread, day_counts
from claims_platform.source.warehouse import Warehouse


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
    check_options(start, days, daily_volume, label_lag_days)
    name, parsed = parse(source)
    batch = check_batch_name(batch) if batch is not None else default_batch_name(name)
    if parsed.fatal:
        raise ExportFormatError(parsed.problems, name)
    if parsed.has_dates and (start is not None or days is not None or daily_volume is not None):
        raise ImportOptionError(
            f"{name} has an {DATE_COLUMN} column, which dates every row: --start, --days and --daily-volume do not apply"
        )
    first = start or settings.FIRST_DAY
    applications, invalid = _checked_rows(parsed, name, batch, first, keep_invalid)
    # The file is sound; whether the platform can hold its days is the platform's setting, told in one line.
    earliest = min(applications[schema.APPLICATION_DATE], default=first)
    if earliest < settings.FIRST_DAY:
        raise BeforeFirstDayError(name, earliest, "--start" if start is not None else DATE_COLUMN)
    claims = parsed.export[schema.CLAIM_STATUS].to_numpy(dtype=np.int64)
    plan, how = _dated(
        parsed, applications, ~invalid, claims, first, days, daily_volume, label_lag_days, planner
    )
    return PreparedImport(
        source_name=name,
        batch=batch,
        has_index=parsed.has_index,
        has_dates=parsed.has_dates,
        applications=applications,
        outcomes=_outcomes(applications, claims, label_lag_days),
        invalid_rows=int(invalid.sum()),
        worst_invalid_share=_worst_day_share(invalid, list(applications[schema.APPLICATION_DATE])),
        spread=how,
        label_lag_days=label_lag_days,
        plan=plan,
    )


def _outcomes(applications: pd.DataFrame, claims: np.ndarray, label_lag_days: int) -> pd.DataFrame:
    """The rows' outcomes, each known ``label_lag_days`` after its application."""
    return pd.DataFrame(
        {
            schema.APPLICATION_ID: applications[schema.APPLICATION_ID],
            schema.CLAIM_STATUS: claims,
            schema.KNOWN_DATE: [
                d + timedelta(days=label_lag_days) for d in applications[schema.APPLICATION_DATE]
            ],
        }
    )


def _worst_day_share(invalid: np.ndarray, row_dates: list[date]) -> float:
    """The largest share of invalid rows on any one day (0 for no rows)."""
    if not row_dates:
        return 0.0
    return float(pd.Series(invalid).groupby(pd.Series(row_dates, dtype=object)).mean().max())


def _checked_rows(
    parsed, name: str, batch: str, start: date, keep_invalid: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    """The export's rows with their ids and (given, or provisional) days, held to the data contract: every
    problem refuses the file, unless ``keep_invalid`` and each one only breaks a contract rule."""
    n = len(parsed.text)
    if parsed.has_dates:
        known = [d for d in parsed.dates or [] if d is not None]
        placeholder = min(known) if known else settings.FIRST_DAY
        row_dates = [d if d is not None else placeholder for d in parsed.dates or []]
    else:
        row_dates = [start] * n  # the contract does not depend on the day; the spread comes after
    ids = [f"{batch}{BATCH_SEPARATOR}{i}" for i in parsed.index]
    applications = pd.DataFrame({schema.APPLICATION_ID: ids, schema.APPLICATION_DATE: row_dates})
    applications = pd.concat([applications, parsed.export[list(schema.FEATURES)]], axis=1)
    contract, invalid = contract_problems(parsed, applications) if n else ([], np.zeros(0, dtype=bool))
    problems = sort_problems(parsed.problems + contract, parsed.columns)
    if problems and not (keep_invalid and all(p.keepable for p in problems)):
        raise ExportFormatError(problems, name)
    return applications, invalid


def _dated(parsed, applications, valid, claims, start, days, daily_volume, label_lag_days, planner: Planner):
    """The plan of the import and how its rows got their days: from its date column, or spread in file
    order (``applications``' days are set to the spread)."""
    if parsed.has_dates:
        rows, claimed = day_counts(list(applications[schema.APPLICATION_DATE]), valid, claims)
        return planner(rows, claimed, label_lag_days), f"from its {DATE_COLUMN} column"
    spread = choose_spread(
        len(applications), start, days, daily_volume, valid, claims, label_lag_days, planner
    )
    applications[schema.APPLICATION_DATE] = [start + timedelta(days=int(o)) for o in spread.offsets]
    return spread.plan, f"spread in file order {spread.how}"


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
