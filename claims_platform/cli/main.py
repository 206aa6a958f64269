"""claims-platform: the claims platform from the command line (simulate, import, run, serve, demo).

Every command first reads the working directory's ``.env`` as Dagster's processes do
(:mod:`claims_platform.core.project_env`), so it sees the settings the runs it makes will see.
Heavy libraries (pandas, numpy, SQLAlchemy, Dagster) are imported inside the command functions so
that ``claims-platform --help`` starts fast. To add a subcommand, register its parser in
:func:`build_parser` and its function in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from claims_platform.cli.errors import UserError
from claims_platform.core import settings


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


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate the last months and run the platform on them through Dagster."""
    from claims_platform.cli.demo import main as run_demo

    return run_demo(months=args.months, seed=args.seed)


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``name`` of ``claims_platform.cli.<module>``, imported when it runs."""

    def command(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"claims_platform.cli.{module}"), name)(args)

    return command


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "simulate": cmd_simulate,
    "import-csv": _lazy("import_command", "cmd_import_csv"),
    "run": _lazy("run_command", "cmd_run"),
    "ingest": _lazy("run_command", "cmd_ingest"),
    "train": _lazy("run_command", "cmd_train"),
    "score": _lazy("run_command", "cmd_score"),
    "report": _lazy("run_command", "cmd_report"),
    "measure": _lazy("run_command", "cmd_measure"),
    "serve": _lazy("serve_command", "cmd_serve"),
    "model-card": _lazy("model_card_command", "cmd_model_card"),
    "export-report": _lazy("export_report_command", "cmd_export_report"),
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


def _add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch",
        metavar="NAME",
        help="batch name, letters, digits, _ . - (default: the file's name without extension); ids are <batch>:<index>",
    )
    parser.add_argument(
        "--start",
        type=_date,
        default=None,
        metavar="DATE",
        help=f"application date of the first rows (default: the platform's first day, {settings.FIRST_DAY})",
    )
    spread = parser.add_mutually_exclusive_group()
    spread.add_argument(
        "--days",
        type=_positive_int,
        metavar="N",
        help="spread the rows over exactly N consecutive days (default: chosen, see above)",
    )
    spread.add_argument(
        "--daily-volume",
        type=_positive_int,
        metavar="N",
        help=f"spread the rows at about N a day (default: chosen; {settings.DAILY_VOLUME:,} a day when that can train)",
    )
    parser.add_argument(
        "--keep-invalid",
        action="store_true",
        help="import rows that break data-contract rules (a value out of range, an unknown level, a blank required "
        "value) instead of refusing the file: the platform's ingestion routes them to rejected_applications with "
        "their reasons. Unreadable values (text in a numeric column, a bad label or date) always refuse the file",
    )
    parser.add_argument(
        "--no-plan-check",
        action="store_true",
        help="import even when no month would be trainable (a warning instead of a refusal)",
    )


def _add_trials(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trials",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Optuna trials of a cold-start training (default: the monthly schedule's budget; warm starts keep theirs)",
    )


def _day_range(text: str) -> list[str]:
    from claims_platform.cli.run_command import day_range

    return day_range(text)


def _month_range(text: str) -> list[str]:
    from claims_platform.cli.run_command import month_range

    return month_range(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's name is a key of ``COMMANDS``."""
    parser = _Parser(prog="claims-platform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_simulate, _add_import_csv, _add_run, _add_steps, _add_serve, _add_model_card, _add_export_report, _add_demo
    ):  # fmt: skip
        add(commands)
    return parser


def _add_simulate(commands) -> None:
    """`simulate`: days of the world into the warehouse."""
    from claims_platform.source import SCENARIO_NAMES

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


def _add_import_csv(commands) -> None:
    """`import-csv`: a seed-format export, checked whole, in one transaction."""
    import_csv = commands.add_parser(
        "import-csv",
        help="import a seed-format CSV export into the warehouse (checked as a whole, one transaction)",
        description=(
            "Check a whole export in the seed's format, then import it into the warehouse in ONE transaction: "
            "nothing is written if any problem is found (every problem is listed, with its file line). Ids are "
            "<batch>:<index>; importing the same batch again replaces it (an identical one writes nothing). Without an "
            "application_date column the rows are spread in file order over consecutive days from --start, by default "
            "the first spread that lets the platform train a model and score days with it. Prints which months will "
            "train, which days can be scored, and the commands that do it."
        ),
    )
    import_csv.add_argument(
        "file",
        help="CSV: an unnamed index column, claim_status, the 40 features; optionally application_date",
    )
    _add_import_options(import_csv)
    import_csv.add_argument("--dry-run", action="store_true", help="check and plan only; write nothing")
    _add_warehouse(import_csv)


def _add_run(commands) -> None:
    """`run`: from a file (or the warehouse) to answers, every step that is missing or stale."""
    run = commands.add_parser(
        "run",
        help="from a file (or the warehouse) to answers: import, ingest, train, score, report drift, measure",
        description=(
            "Import --csv FILE (as import-csv does), then run the platform over every day the warehouse holds, as "
            "backfills of the code location that `make dev` shows: ingestion, the monthly chain of every trainable "
            "month, the models in force, scoring, Evidently's drift reports, and the performance of every month whose "
            "outcomes are known. Only what is missing or stale runs: again on the same file, nothing runs. Prints "
            "what each step produced."
        ),
    )
    run.add_argument(
        "--csv", metavar="FILE", help="an export in the seed's format to import first (see import-csv)"
    )
    _add_import_options(run)
    _add_trials(run)
    _add_warehouse(run)


def _add_steps(commands) -> None:
    """`ingest`, `train`, `score`, `report`, `measure`: one step of `run` over the days or months given."""
    for name, unit, what in (
        (
            "ingest",
            "days",
            "ingest the days whose partitions do not hold what the warehouse holds (daily_ingestion, one run)",
        ),
        (
            "train",
            "months",
            "train and decide the months not decided, or whose window changed since (monthly_training, in order)",
        ),
        (
            "score",
            "days",
            "put the decided models in force and score the days not scored since their ingestion (nightly_scoring, one run)",
        ),
        (
            "report",
            "days",
            "Evidently's drift reports of the scored days that have none since their scores (drift_reports, one run)",
        ),
        (
            "measure",
            "months",
            "measure each scored month whose outcomes are all known (measure_model_performance, a run per month)",
        ),
    ):
        step = commands.add_parser(
            name, help=what, description=what[0].upper() + what[1:] + "; then print what it produced."
        )
        if unit == "days":
            step.add_argument(
                "--days",
                type=_day_range,
                required=True,
                metavar="FIRST..LAST",
                help="YYYY-MM-DD..YYYY-MM-DD, or one day",
            )
        else:
            step.add_argument(
                "--months",
                type=_month_range,
                required=True,
                metavar="FIRST..LAST",
                help="YYYY-MM..YYYY-MM, or one month",
            )
        if name == "train":
            _add_trials(step)
        step.add_argument(
            "--warehouse-url", default=None, metavar="URL",
            help=f"SQLAlchemy URL of the warehouse (default: ${settings.ENV_WAREHOUSE_URL} or a local SQLite file)",
        )  # fmt: skip


def _add_serve(commands) -> None:
    """`serve`: the registered champion over HTTP."""
    serve = commands.add_parser(
        "serve",
        help="serve the registered champion over HTTP (mlflow models serve), strict about every value",
        description=(
            "Serve a version of the registered model (by default the one with the alias `champion`) with `mlflow models "
            "serve` on the platform's tracking store: POST CSV or JSON to /invocations; a row that breaks the data "
            "contract is refused with HTTP 400 naming its row, column and rule."
        ),
    )
    serve.add_argument(
        "--version", type=_positive_int, default=None, help="a version number instead of the champion"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_positive_int, default=5001, help="port (default: %(default)s)")


def _add_model_card(commands) -> None:
    """`model-card`: a registered version's model card."""
    card = commands.add_parser(
        "model-card",
        help="print a registered version's model card (written at training, completed by its champion decision)",
    )
    card.add_argument(
        "version", type=_positive_int, metavar="VERSION", help="the registered version's number"
    )
    card.add_argument(
        "--html", action="store_true", help="print the self-contained HTML page instead of Markdown"
    )


def _add_export_report(commands) -> None:
    """`export-report`: a stored Evidently report as one standalone HTML file."""
    export = commands.add_parser(
        "export-report",
        help="write a stored Evidently report as one standalone HTML file (opens offline; to mail or attach)",
        description=(
            "Stored reports refer to Evidently's script bundle, kept once beside them; this writes one with the "
            "bundle inlined: a day's drift report (YYYY-MM-DD) or a month's performance report (YYYY-MM)."
        ),
    )
    export.add_argument(
        "when", metavar="DAY|MONTH", help="YYYY-MM-DD (drift report) or YYYY-MM (performance report)"
    )
    export.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="where to write it (default: <report>-<when>.html; - for stdout)",
    )


def _add_demo(commands) -> None:
    """`demo`: the last months simulated and run through the platform."""
    from claims_platform.cli.demo import DEMO_MONTHS

    demo = commands.add_parser(
        "demo", help="simulate the last months and run the platform on them (embedded defaults)"
    )
    demo.add_argument(
        "--months",
        type=int,
        default=DEMO_MONTHS,
        help="months to simulate before today (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=settings.DEFAULT_WORLD_SEED, help="world seed (default: %(default)s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or user error, printed on stderr)."""
    from claims_platform.core import project_env

    try:
        project_env.load_env_file()  # before the parser: its defaults name the first day
    except ValueError as error:
        print(
            f"claims-platform: error: {error} (in {project_env.shown(project_env.env_file())} or the environment)",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error, already printed on one line (2)
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return COMMANDS[args.command](args)
    except UserError as error:
        from claims_platform.core.redaction import redact_url

        # A database error's first line may quote the URL it could not reach.
        print(f"{parser.prog} {args.command}: error: {redact_url(str(error))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
