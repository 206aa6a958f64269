"""claims-platform: command line for the claims platform (simulate the source, import data).

Heavy libraries (pandas, numpy, SQLAlchemy) are imported inside the command functions so that
``claims-platform --help`` starts fast. To add a subcommand, register its parser in
:func:`build_parser` and its function in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from claims_platform import settings


class UserError(Exception):
    """A mistake the user can fix: printed without a traceback, exit status 2.

    The message's first line says what is wrong; further lines may list details.
    """


class _Parser(argparse.ArgumentParser):
    """argparse with ONE-line usage errors (``prog: error: message (see prog --help)``), exit status 2.

    Subcommand parsers are made by ``add_subparsers`` with the parent's class, so every subcommand gets it.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole(text, 0)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate ``--start``..``--end`` into the warehouse, one idempotent day at a time."""
    import time

    from claims_platform.source.scenarios import get_scenario
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    if args.from_date is not None and args.scenario is None:
        raise UserError("--from needs --scenario")
    scenario = get_scenario(args.scenario, args.from_date or args.start) if args.scenario else None
    n_days = (args.end - args.start).days + 1

    def progress(day: date, rows: int) -> None:
        on = f" [{scenario.name}]" if scenario is not None and scenario.applies_to(day) else ""
        _progress(f"simulate {day} ({(day - args.start).days + 1}/{n_days}): {rows} applications{on}")

    warehouse = Warehouse(args.warehouse_url)
    began = time.perf_counter()
    try:
        total = simulate_range(
            warehouse,
            args.start,
            args.end,
            seed=args.seed,
            scenario=scenario,
            label_lag_days=args.label_lag_days,
            progress=progress,
        )
    finally:
        warehouse.dispose()
    _progress(f"simulated {total} applications over {n_days} days in {time.perf_counter() - began:.1f}s")
    return 0


def _shown_url(url: str) -> str:
    """The URL as printed: password, query-string tokens and webhook tokens masked (``***``)."""
    import sqlalchemy as sa

    from claims_platform.redaction import redact_url

    try:
        return redact_url(sa.engine.make_url(url).render_as_string(hide_password=True))
    except sa.exc.ArgumentError:
        return "(unreadable URL)"


def _days_text(days: Sequence[date]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)} day{'s' if len(days) != 1 else ''})"


def _next_commands(summary, warehouse_url: str | None) -> list[str]:
    """The commands that take the imported days through the platform, as a Dagster CLI user runs them."""
    import os
    import shlex

    from claims_platform.ingestion.jobs import ingestion_job
    from claims_platform.monitoring.sensors import drift_reports_job
    from claims_platform.scoring.jobs import nightly_scoring_job
    from claims_platform.training.jobs import monthly_training_job

    def materialize(job_or_asset, partitions: str) -> str:
        keys = getattr(getattr(job_or_asset, "selection", None), "selected_keys", None)
        select = ",".join(k.to_user_string() for k in keys) if keys else job_or_asset
        return f"  dagster asset materialize -m claims_platform.definitions --select {select} {partitions}"

    prepared = summary.prepared
    plan = prepared.plan
    # The batch's earlier days too: re-ingesting them drops the rows this import moved away.
    days = sorted({*prepared.rows_per_day.index, *summary.vacated_days})
    lines = ["", "next: run the platform on these days (each command is one Dagster run; the UI, `make dev`, shows them):"]
    if not os.environ.get("DAGSTER_HOME"):
        lines.append(f"  export DAGSTER_HOME={shlex.quote(str(settings.REPO_ROOT))}   # the instance of `make dev` and `make demo`")
    if warehouse_url and warehouse_url != settings.default_warehouse_url():
        lines.append(f"  export {settings.ENV_WAREHOUSE_URL}={shlex.quote(_shown_url(warehouse_url))}   # the warehouse imported into")
    lines += [
        f"  # 1. ingest the imported days (job {ingestion_job.name})",
        materialize(ingestion_job, f"--partition-range {days[0]}...{days[-1]}"),
    ]
    ui = [f"backfill {ingestion_job.name} for {days[0]}..{days[-1]}"]
    if plan.training_months:
        lines.append(f"  # 2. train and decide the champion (job {monthly_training_job.name}), one month at a time, in order")
        lines += [materialize(monthly_training_job, f"--partition {m}") for m in plan.training_months]
        ui.append(f"launch {monthly_training_job.name} for {', '.join(m.strftime('%Y-%m') for m in plan.training_months)} in order")
    if plan.scoring:
        months = [s.month for s in plan.scoring]
        scored = plan.scoreable_days
        lines += [
            "  # 3. the model in force in the scored month(s): the champion decided the month before",
            materialize("model_in_force", f"--partition-range {months[0]}...{months[-1]}"),
            f"  # 4. score the days, forecast the reserve, decide drift (job {nightly_scoring_job.name}), a month a run:",
            "  #    a month whose decision before it found no eligible model (see champion_decision) cannot be scored",
        ]
        lines += [
            materialize(nightly_scoring_job, f"--partition-range {s.days[0]}...{s.days[-1]}") for s in plan.scoring
        ]
        lines += [
            f"  # 5. Evidently's drift reports of the scored days (job {drift_reports_job.name}; the daemon's "
            f"drift_report_sensor runs it after {nightly_scoring_job.name} runs, not after these)",
            materialize(drift_reports_job, f"--partition-range {scored[0]}...{scored[-1]}"),
        ]
        ui += [
            f"materialize model_in_force for {', '.join(m.strftime('%Y-%m') for m in months)}",
            f"backfill {nightly_scoring_job.name} for {scored[0]}..{scored[-1]}",
        ]
    lines.append("  or in the Dagster UI: " + "; then ".join(ui))
    return lines


def _import_report(summary, warehouse_url: str | None) -> list[str]:
    prepared = summary.prepared
    plan = prepared.plan
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
    if summary.dry_run:
        lines.append(f"dry run: nothing written to {_shown_url(warehouse_url or settings.default_warehouse_url())}")
    else:
        replaced = f", replacing its {summary.replaced:,} earlier rows" if summary.replaced else ""
        lines.append(
            f"imported {summary.written:,} applications and their outcomes into "
            f"{_shown_url(warehouse_url or settings.default_warehouse_url())} in one transaction "
            f"(batch '{prepared.batch}'{replaced})"
        )
        if summary.vacated_days:
            lines.append(
                f"  the batch's earlier rows were also on {_days_text(summary.vacated_days)} that now hold none of it: "
                "ingest those days again (step 1 below covers them) so their stored partitions drop those rows"
            )
    if plan.trainable_months:
        lines.append("trainable months: " + ", ".join(m.strftime("%Y-%m") for m in plan.trainable_months))
        lines.append(
            "  (enough labelled rows for the out-of-time split; each month's candidate must still pass the quality "
            "gate, holdout AUC and calibration, to become champion)"
        )
    else:
        lines.append(f"trainable months: none ({plan.why_not_trainable()})")
    if plan.scoring:
        lines.append(f"scoreable days: {_days_text(plan.scoreable_days)}")
        lines += [
            f"  {s.month:%Y-%m}: {len(s.days)} days, scored by the champion decided for {s.decided_in:%Y-%m}"
            for s in plan.scoring
        ]
    elif plan.trainable_months:
        lines.append(
            "scoreable days: none (the champion of month M scores month M+1, and no imported day falls after "
            "a trainable month: import later days, or choose --days)"
        )
    return lines + _next_commands(summary, warehouse_url)


def cmd_import_csv(args: argparse.Namespace) -> int:
    """Check a whole seed-format CSV export, then import it into the warehouse in one transaction."""
    import sqlalchemy as sa

    from claims_platform.source.csv_import import CsvImportError, ExportFormatError, import_csv
    from claims_platform.source.warehouse import Warehouse

    url = args.warehouse_url or settings.default_warehouse_url()
    try:
        warehouse = Warehouse(url)
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise UserError(f"cannot open the warehouse {_shown_url(url)}: {str(error).splitlines()[0]}") from None
    try:
        summary = import_csv(
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
        )
    except ExportFormatError as error:
        message = error.report()
        if error.keepable_only:
            message += (
                "\n  every problem is a data-contract rule: --keep-invalid imports these rows anyway, and the "
                "platform's ingestion routes them to rejected_applications with their reasons"
            )
        raise UserError(message) from None
    except CsvImportError as error:
        raise UserError(str(error)) from None
    except sa.exc.SQLAlchemyError as error:
        raise UserError(
            f"writing to the warehouse {_shown_url(url)} failed, nothing was written: {str(error).splitlines()[0]}"
        ) from None
    finally:
        warehouse.dispose()
    if not summary.prepared.plan.trainable_months:
        _progress(
            f"warning: no month of this import would be trainable ({summary.prepared.plan.why_not_trainable()}); "
            "imported anyway (--no-plan-check)"
        )
    print("\n".join(_import_report(summary, args.warehouse_url)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate the last months and run the platform on them through Dagster."""
    from claims_platform.demo import main as run_demo

    return run_demo(months=args.months, seed=args.seed)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "simulate": cmd_simulate,
    "import-csv": cmd_import_csv,
    "demo": cmd_demo,
}


def _add_warehouse(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse-url",
        default=None,
        metavar="URL",
        help=f"SQLAlchemy URL of the warehouse (default: ${settings.ENV_WAREHOUSE_URL} or a local SQLite file)",
    )
    parser.add_argument(
        "--label-lag-days",
        type=_non_negative_int,
        default=settings.LABEL_LAG_DAYS,
        metavar="DAYS",
        help="days from application to known outcome (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's name is a key of ``COMMANDS``."""
    from claims_platform.source import SCENARIO_NAMES

    parser = _Parser(prog="claims-platform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simulate = commands.add_parser("simulate", help="simulate applications into the warehouse")
    simulate.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    simulate.add_argument("--end", type=_date, required=True, help="last day (inclusive), YYYY-MM-DD")
    simulate.add_argument("--scenario", choices=SCENARIO_NAMES, help="switch on a drift scenario")
    simulate.add_argument(
        "--from", dest="from_date", type=_date, help="day the scenario switches on (default: --start)"
    )
    simulate.add_argument(
        "--seed", type=int, default=settings.DEFAULT_WORLD_SEED, help="world seed (default: %(default)s)"
    )
    _add_warehouse(simulate)

    import_csv = commands.add_parser(
        "import-csv",
        help="import a seed-format CSV export into the warehouse (checked as a whole, one transaction)",
        description=(
            "Check a whole export in the seed's format, then import it into the warehouse in ONE transaction: "
            "nothing is written if any problem is found (every problem is listed, with its file line). Ids are "
            "<batch>:<index>; importing the same batch again replaces it. Without an application_date column the "
            "rows are spread in file order over consecutive days from --start, by default the first spread that "
            "lets the platform train a model and score days with it. Prints which months will train, which days "
            "can be scored, and the commands that do it."
        ),
    )
    import_csv.add_argument(
        "file", help="CSV: an unnamed index column, claim_status, the 40 features; optionally application_date"
    )
    import_csv.add_argument(
        "--batch",
        metavar="NAME",
        help="batch name, letters, digits, _ . - (default: the file's name without extension); ids are <batch>:<index>",
    )
    import_csv.add_argument(
        "--start",
        type=_date,
        default=None,
        metavar="DATE",
        help=f"application date of the first rows (default: the platform's first day, {settings.FIRST_DAY})",
    )
    spread = import_csv.add_mutually_exclusive_group()
    spread.add_argument(
        "--days", type=_positive_int, metavar="N", help="spread the rows over exactly N consecutive days (default: chosen, see above)"
    )
    spread.add_argument(
        "--daily-volume",
        type=_positive_int,
        metavar="N",
        help=f"spread the rows at about N a day (default: chosen; {settings.DAILY_VOLUME:,} a day when that can train)",
    )
    import_csv.add_argument(
        "--keep-invalid",
        action="store_true",
        help="import rows that break data-contract rules (a value out of range, an unknown level, a blank required "
        "value) instead of refusing the file: the platform's ingestion routes them to rejected_applications with "
        "their reasons. Unreadable values (text in a numeric column, a bad label or date) always refuse the file",
    )
    import_csv.add_argument(
        "--no-plan-check",
        action="store_true",
        help="import even when no month would be trainable (a warning instead of a refusal)",
    )
    import_csv.add_argument("--dry-run", action="store_true", help="check and plan only; write nothing")
    _add_warehouse(import_csv)

    from claims_platform.demo import DEMO_MONTHS

    demo = commands.add_parser("demo", help="simulate the last months and run the platform on them (embedded defaults)")
    demo.add_argument("--months", type=int, default=DEMO_MONTHS, help="months to simulate before today (default: %(default)s)")
    demo.add_argument(
        "--seed", type=int, default=settings.DEFAULT_WORLD_SEED, help="world seed (default: %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or user error, printed on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error, already printed on one line (2)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return COMMANDS[args.command](args)
    except UserError as error:
        from claims_platform.redaction import redact_url

        # A database error's first line may quote the URL it could not reach.
        print(f"{parser.prog} {args.command}: error: {redact_url(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
