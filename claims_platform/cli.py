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

from claims_platform import settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate ``--start``..``--end`` into the warehouse, one idempotent day at a time."""
    import time

    from claims_platform.source.scenarios import get_scenario
    from claims_platform.source.simulate import simulate_range
    from claims_platform.source.warehouse import Warehouse

    if args.end < args.start:
        raise SystemExit(f"--end {args.end} is before --start {args.start}")
    if args.from_date is not None and args.scenario is None:
        raise SystemExit("--from needs --scenario")
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


def cmd_import_csv(args: argparse.Namespace) -> int:
    """Import a seed-format CSV export into the warehouse from ``--start``."""
    from claims_platform.source.csv_import import ExportFormatError, import_csv
    from claims_platform.source.warehouse import Warehouse

    warehouse = Warehouse(args.warehouse_url)
    try:
        summary = import_csv(
            args.file,
            args.start,
            warehouse,
            daily_volume=args.daily_volume,
            label_lag_days=args.label_lag_days,
            progress=lambda d: _progress(f"import {d.day}: {len(d.applications)} applications"),
        )
    except ExportFormatError as error:
        # A bad file is the user's to fix: a one-line message, not a traceback.
        raise SystemExit(f"{args.file}: {error}") from error
    finally:
        warehouse.dispose()
    _progress(
        f"imported {summary.rows} applications over {summary.days} days ({summary.first_day}..{summary.last_day})"
    )
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
        help=f"SQLAlchemy URL of the warehouse (default: ${settings.ENV_WAREHOUSE_URL} or a local SQLite file)",
    )
    parser.add_argument(
        "--label-lag-days",
        type=int,
        default=settings.LABEL_LAG_DAYS,
        help="days from application to known outcome (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's name is a key of ``COMMANDS``."""
    from claims_platform.source import SCENARIO_NAMES

    parser = argparse.ArgumentParser(prog="claims-platform", description=__doc__.splitlines()[0])
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

    import_csv = commands.add_parser("import-csv", help="import a seed-format CSV export into the warehouse")
    import_csv.add_argument("file", help="CSV: unnamed index column, claim_status, the 40 features")
    import_csv.add_argument("--start", type=_date, required=True, help="application date of the first rows")
    import_csv.add_argument(
        "--daily-volume", type=int, default=settings.DAILY_VOLUME, help="rows per day (default: %(default)s)"
    )
    _add_warehouse(import_csv)

    demo = commands.add_parser("demo", help="simulate the last months and run the platform on them (embedded defaults)")
    demo.add_argument("--months", type=int, default=6, help="months to simulate before today (default: %(default)s)")
    demo.add_argument(
        "--seed", type=int, default=settings.DEFAULT_WORLD_SEED, help="world seed (default: %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
