"""`claims-platform import-csv`: a seed-format export into the warehouse, and what the platform can do with it.

The import is checked as a whole and written in one transaction (:mod:`claims_platform.source.csv_import`);
this module adds what only the command line knows: the platform's first day as the Dagster processes
will see it (:mod:`claims_platform.cli.first_day`), and the commands that take the imported days through
the platform — `claims-platform run`, or its steps one by one, each of which reports what it made.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import date

from claims_platform.cli.errors import UserError
from claims_platform.cli.first_day import settle_first_day
from claims_platform.core import settings


def shown_url(url: str) -> str:
    """The URL as printed: password, query-string tokens and webhook tokens masked (``***``)."""
    import sqlalchemy as sa

    from claims_platform.core.redaction import redact_url

    try:
        return redact_url(sa.engine.make_url(url).render_as_string(hide_password=True))
    except sa.exc.ArgumentError:
        return "(unreadable URL)"


def days_text(days: Sequence[date]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)} day{'s' if len(days) != 1 else ''})"


def month_range(months: Sequence[date]) -> str:
    return f"{months[0]:%Y-%m}" if len(months) == 1 else f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}"


def import_file(args: argparse.Namespace, progress) -> tuple[object, list[str]]:
    """Import ``args.file`` (import-csv's options) into ``args.warehouse_url`` or the default warehouse.

    Days before the platform's first day move the first day where that is safe (a fresh instance), else
    the import is refused in one line before anything is written. Returns the import's summary and notes.
    """
    import sqlalchemy as sa

    from claims_platform.source.csv_import import import_csv
    from claims_platform.source.csv_parse import CsvImportError, ExportFormatError
    from claims_platform.source.warehouse import Warehouse
    from claims_platform.training.import_plan import plan_import

    url = args.warehouse_url or settings.default_warehouse_url()
    try:
        warehouse = Warehouse(url)
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise UserError(f"cannot open the warehouse {shown_url(url)}: {str(error).splitlines()[0]}") from None
    notes: list[str] = []

    def attempt():
        return import_csv(
            args.file,
            warehouse,
            batch=args.batch,
            start=args.start,
            days=args.days,
            daily_volume=args.daily_volume,
            label_lag_days=args.label_lag_days,
            keep_invalid=args.keep_invalid,
            require_trainable=not args.no_plan_check,
            dry_run=args.dry_run,
            planner=plan_import,
        )

    try:
        summary = _attempt_moving_first_day(attempt, args.dry_run, notes)
    except (ExportFormatError, CsvImportError, sa.exc.SQLAlchemyError) as error:
        raise _user_error(error, url) from None
    finally:
        warehouse.dispose()
    if not summary.prepared.plan.trainable_months:
        progress(
            f"warning: no month of this import would be trainable ({summary.prepared.plan.why_not_trainable()}); "
            "imported anyway (--no-plan-check)"
        )
    return summary, [n for n in notes if n]


def _attempt_moving_first_day(attempt, dry_run: bool, notes: list[str]):
    """The import; when its days start before the platform's first day, that day moved (where safe) and
    the import tried again (a note says so)."""
    from claims_platform.source.csv_parse import BeforeFirstDayError

    try:
        return attempt()
    except BeforeFirstDayError as early:
        remedy = (
            "give its rows later days (--start " + str(early.first_day) + ")"
            if early.dated_by != "application_date"
            else ""
        )
        if dry_run:
            raise UserError(f"{early} (a dry run moves nothing)") from None
        notes.append(settle_first_day(early.earliest, early.source_name, remedy=remedy) or "")
        return attempt()


def _user_error(error: Exception, url: str) -> UserError:
    """The one-line message of an export that cannot be imported, or of a warehouse that refused it."""
    from claims_platform.source.csv_parse import CsvImportError, ExportFormatError

    if isinstance(error, ExportFormatError):
        message = error.report()
        if error.keepable_only:
            message += (
                "\n  every problem is a data-contract rule: --keep-invalid imports these rows anyway, and the "
                "platform's ingestion routes them to rejected_applications with their reasons"
            )
        return UserError(message)
    if isinstance(error, CsvImportError):
        return UserError(str(error))
    return UserError(
        f"writing to the warehouse {shown_url(url)} failed, nothing was written: {str(error).splitlines()[0]}"
    )


def import_lines(summary, warehouse_url: str | None) -> list[str]:
    """What the import read, wrote and planned."""
    target = shown_url(warehouse_url or settings.default_warehouse_url())
    return [
        *_read_lines(summary.prepared),
        *_written_lines(summary, target),
        *_plan_lines(summary.prepared.plan),
    ]


def _read_lines(prepared) -> list[str]:
    """What the export held: rows, ids, rows kept despite the contract, days and outcomes."""
    per_day = prepared.rows_per_day
    ids = (
        f"ids {prepared.batch}:<index>, from its index column"
        if prepared.has_index
        else f"no index column: ids are {prepared.batch}:<file line>"
    )
    lines = [f"read {prepared.source_name}: {prepared.rows:,} rows ({ids})"]
    if prepared.invalid_rows:
        lines.append(
            f"kept {prepared.invalid_rows:,} rows that break data-contract rules (--keep-invalid): the ingestion routes "
            f"them to rejected_applications; the worst day has {prepared.worst_invalid_share:.1%} of such rows"
        )
    lines += [
        f"days: {prepared.first_day}..{prepared.last_day} ({len(per_day)} days with rows), "
        f"{per_day.min():,}–{per_day.max():,} rows/day, {prepared.spread}",
        f"outcomes: known {prepared.label_lag_days} days after each application",
    ]
    return lines


def _written_lines(summary, target: str) -> list[str]:
    """What the import wrote (or, dry or unchanged, why nothing), and other batches on the same days."""
    prepared = summary.prepared
    lines: list[str] = []
    if summary.dry_run:
        lines.append(f"dry run: nothing written to {target}")
    elif summary.unchanged:
        lines.append(
            f"unchanged: {target} holds exactly these {prepared.rows:,} rows of batch '{prepared.batch}' already; nothing written"
        )
    else:
        replaced = f", replacing its {summary.replaced:,} earlier rows" if summary.replaced else ""
        lines.append(
            f"imported {summary.written:,} applications and their outcomes into {target} in one transaction "
            f"(batch '{prepared.batch}'{replaced})"
        )
        if summary.vacated_days:
            lines.append(
                f"  the batch's earlier rows were also on {days_text(summary.vacated_days)} that now hold none of it: "
                "ingesting them again (the next step covers them) drops those rows from their partitions"
            )
    if summary.other_rows:
        lines.append(
            f"note: the warehouse holds {summary.other_rows:,} other applications on these days (other batches, or days "
            "a simulation or `make demo` wrote): the platform trains and scores them with these. For this export alone, "
            f"use a fresh home ({settings.ENV_HOME} and DAGSTER_HOME elsewhere, or remove {settings.local_home()})"
        )
    return lines


def _plan_lines(plan) -> list[str]:
    """Which months will train and which days can be scored, by which month's champion."""
    lines: list[str] = []
    if plan.trainable_months:
        lines.append("trainable months: " + ", ".join(m.strftime("%Y-%m") for m in plan.trainable_months))
        lines.append(
            "  (enough labelled rows for the out-of-time split; each month's candidate must still pass the quality "
            "gate, holdout AUC and calibration, to become champion)"
        )
    else:
        lines.append(f"trainable months: none ({plan.why_not_trainable()})")
    if plan.scoring:
        lines.append(f"scoreable days: {days_text(plan.scoreable_days)}")
        lines += [
            f"  {s.month:%Y-%m}: {len(s.days)} days, scored by the champion decided for {s.decided_in:%Y-%m}"
            for s in plan.scoring
        ]
    elif plan.trainable_months:
        lines.append(
            "scoreable days: none (the champion of month M scores month M+1, and no imported day falls after "
            "a trainable month: import later days, or choose --days)"
        )
    return lines


def next_commands(summary, warehouse_url: str | None) -> list[str]:
    """The commands that take the imported days through the platform (each reports what it made)."""
    plan = summary.prepared.plan
    days = sorted({*summary.prepared.rows_per_day.index, *summary.vacated_days})
    where = (
        f" --warehouse-url {shlex.quote(shown_url(warehouse_url))}"
        if warehouse_url and warehouse_url != settings.default_warehouse_url()
        else ""
    )
    lines = [
        "",
        "next: take the days through the platform (the runs are Dagster's: `make dev` shows them in the UI)",
        f"  claims-platform run{where}      # every step below, in order; only what is missing or stale",
        "  or one step at a time:",
        f"  claims-platform ingest --days {days[0]}..{days[-1]}{where}",
    ]
    if plan.training_months:
        lines.append(f"  claims-platform train --months {month_range(plan.training_months)}{where}")
    if plan.scoring:
        scored = plan.scoreable_days
        lines += [
            f"  claims-platform score --days {scored[0]}..{scored[-1]}{where}",
            f"  claims-platform report --days {scored[0]}..{scored[-1]}{where}",
            f"  claims-platform measure --months {month_range([s.month for s in plan.scoring])}{where}",
        ]
    return lines


def cmd_import_csv(args: argparse.Namespace) -> int:
    """Check a whole seed-format CSV export, then import it into the warehouse in one transaction."""
    summary, notes = import_file(args, progress=lambda message: print(message, file=sys.stderr, flush=True))
    lines = notes + import_lines(summary, args.warehouse_url)
    if not summary.dry_run:
        lines += next_commands(summary, args.warehouse_url)
    print("\n".join(lines))
    return 0
