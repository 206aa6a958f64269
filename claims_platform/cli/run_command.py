"""`claims-platform run` and its steps: the platform over what the warehouse holds, from a file to answers.

``run [--csv FILE] [--warehouse-url URL]`` imports the file (when given), then runs, as backfills of the
code location that `make dev` shows, in order: ingestion of every day, the monthly chain for every
trainable month, the models in force, scoring of every scoreable day, the drift reports, and the
performance of every month whose outcomes are known. Each step runs only what is missing or stale
(:mod:`claims_platform.cli.steps`): on the same file again, nothing runs, and the summary says so.

``ingest``, ``train``, ``score``, ``report`` and ``measure`` are the same steps one at a time, over a
range of days or months; each ends with what it produced.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta

from claims_platform.cli.errors import UserError
from claims_platform.cli.first_day import settle_first_day
from claims_platform.cli.import_command import import_file, import_lines, shown_url
from claims_platform.core import settings

CLI_TAGS = {"source": "cli"}
_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr, with the seconds since the command started."""
    from claims_platform.core.redaction import redact_url

    print(f"{time.perf_counter() - _STARTED:5.0f}s  {redact_url(message)}", file=sys.stderr, flush=True)


# -- ranges ------------------------------------------------------------------------------------------------


def day_range(text: str) -> list[str]:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD..YYYY-MM-DD`` -> every day of it (ISO keys)."""
    first, _, last = text.partition("..")
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a day or a range of days (YYYY-MM-DD..YYYY-MM-DD): {text!r}"
        ) from None
    if end < start:
        raise argparse.ArgumentTypeError(f"the range ends {end}, before it starts {start}")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def month_range(text: str) -> list[str]:
    """``YYYY-MM`` or ``YYYY-MM..YYYY-MM`` -> every month of it (``YYYY-MM-01`` keys)."""
    from claims_platform.core.months import add_months

    first, _, last = text.partition("..")
    try:
        start, end = (date.fromisoformat(f"{m[:7]}-01") for m in (first, last or first))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a month or a range of months (YYYY-MM..YYYY-MM): {text!r}"
        ) from None
    if end < start:
        raise argparse.ArgumentTypeError(f"the range ends {end:%Y-%m}, before it starts {start:%Y-%m}")
    months = [start]
    while months[-1] < end:
        months.append(add_months(months[-1], 1))
    return [m.isoformat() for m in months]


def every_day(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


# -- the platform ------------------------------------------------------------------------------------------


def warehouse_url(args: argparse.Namespace) -> str:
    """The warehouse the command reads, and the code location's runs too (set before the definitions load)."""
    url = args.warehouse_url or settings.default_warehouse_url()
    os.environ[settings.ENV_WAREHOUSE_URL] = url
    return url


def warehouse_scope(url: str, label_lag_days: int):
    """Every day from the warehouse's first application to its last, the plan its counts allow, and a note when
    the platform's first day had to move to hold them (:func:`settle_first_day`)."""
    import sqlalchemy as sa

    from claims_platform.source.warehouse import Warehouse
    from claims_platform.training.import_plan import plan_import

    try:
        warehouse = Warehouse(url)
        try:
            counts = warehouse.day_counts()
        finally:
            warehouse.dispose()
    except (sa.exc.SQLAlchemyError, OSError) as error:
        raise UserError(f"cannot read the warehouse {shown_url(url)}: {str(error).splitlines()[0]}") from None
    if counts.empty:
        raise UserError(
            f"the warehouse {shown_url(url)} holds no application: import an export (claims-platform run --csv FILE) "
            "or simulate days (claims-platform simulate)"
        )
    days = list(counts["application_date"])
    notes = [note] if (note := settle_first_day(days[0], f"the warehouse {shown_url(url)}")) else []
    plan = plan_import(
        dict(zip(days, counts["rows"], strict=True)),
        dict(zip(days, counts["claims"], strict=True)),
        label_lag_days,
    )
    return every_day(days[0], days[-1]), plan, notes


@contextmanager
def opened_steps(url: str, training: dict | None = None) -> Iterator:
    """The code location loaded (as `make dev` loads it) and its steps, on ``url``'s warehouse."""
    from claims_platform.cli.runs import (
        LocalPlatform,
        PlatformRunError,
        open_instance,
        quiet_mlflow,
        quiet_output,
    )
    from claims_platform.cli.steps import Steps

    quiet_output()
    instance = open_instance()
    progress(
        f"loading the code location claims_platform (warehouse {shown_url(url)}, Dagster home {os.environ['DAGSTER_HOME']})"
    )
    try:
        with LocalPlatform(instance, tags=CLI_TAGS) as platform:
            quiet_mlflow()
            yield Steps(platform, warehouse_url=url, progress=progress, training=training)
    except PlatformRunError as error:
        raise UserError(str(error)) from None
    finally:
        instance.dispose()


def _training(args: argparse.Namespace) -> dict | None:
    return {"n_trials": args.trials} if getattr(args, "trials", None) else None


def _settle(days: Sequence[str], what: str) -> list[str]:
    note = settle_first_day(date.fromisoformat(days[0]), what)
    return [note] if note else []


# -- run -------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Import (with --csv), then every step over the warehouse's days; print what each produced."""
    from claims_platform.cli.steps import line, scoring_months_of

    url = warehouse_url(args)
    lines: list[str] = []
    imported = None
    if args.csv:
        args.file, args.dry_run = args.csv, False
        imported, notes = import_file(args, progress)
        lines += notes + [line("import", text) for text in import_lines(imported, args.warehouse_url)]
    days, plan, notes = warehouse_scope(url, args.label_lag_days)
    lines += notes
    training_months = [m.isoformat() for m in plan.training_months]
    with opened_steps(url, _training(args)) as steps:
        outcomes = [steps.ingest(days), steps.train(training_months, days)]
        scoring_months = scoring_months_of(days, training_months)
        in_force_outcome, in_force = steps.put_in_force(scoring_months)
        scoreable = [d for d in days if f"{d[:7]}-01" in in_force]
        score = steps.score(scoreable, in_force)
        outcomes += [
            in_force_outcome,
            score,
            steps.report(scoreable),
            steps.measure(scoring_months, scoreable),
        ]
    runs = sum(len(o.runs) for o in outcomes)
    unchanged = imported is None or imported.unchanged
    verdict = (
        "nothing changed: the warehouse and every step were up to date (no run made)"
        if runs == 0 and unchanged
        else f"{runs} run(s), each linked to the code location claims_platform"
    )
    print(
        "\n".join(
            [
                "",
                f"claims_platform run — done in {time.perf_counter() - _STARTED:.0f} s: {verdict}",
                *lines,
                *(text for outcome in outcomes for text in outcome.lines),
                f"  dagster home {os.environ['DAGSTER_HOME']}; the UI: make dev, then http://127.0.0.1:3000/runs",
            ]
        )
    )
    return 0


# -- the steps one at a time -------------------------------------------------------------------------------


def _print(outcomes) -> int:
    print("\n".join(text for outcome in outcomes for text in outcome.lines))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    url = warehouse_url(args)
    for note in _settle(args.days, "--days"):
        progress(note)
    with opened_steps(url) as steps:
        return _print([steps.ingest(args.days)])


def cmd_train(args: argparse.Namespace) -> int:
    from claims_platform.core.months import add_months

    url = warehouse_url(args)
    first = max(
        add_months(date.fromisoformat(args.months[0]), 1 - settings.TRAINING_WINDOW_MONTHS),
        settings.FIRST_DAY,
    )
    last = add_months(date.fromisoformat(args.months[-1]), 1) - timedelta(days=1)
    for note in _settle(args.months, "--months"):
        progress(note)
    with opened_steps(url, _training(args)) as steps:
        return _print([steps.train(args.months, every_day(first, last))])


def cmd_score(args: argparse.Namespace) -> int:
    url = warehouse_url(args)
    for note in _settle(args.days, "--days"):
        progress(note)
    months = sorted({f"{d[:7]}-01" for d in args.days})
    with opened_steps(url) as steps:
        in_force_outcome, in_force = steps.put_in_force(months)
        return _print([in_force_outcome, steps.score(args.days, in_force)])


def cmd_report(args: argparse.Namespace) -> int:
    url = warehouse_url(args)
    with opened_steps(url) as steps:
        return _print([steps.report(args.days)])


def cmd_measure(args: argparse.Namespace) -> int:
    from claims_platform.core.months import add_months

    url = warehouse_url(args)
    last = add_months(date.fromisoformat(args.months[-1]), 1) - timedelta(days=1)
    with opened_steps(url) as steps:
        return _print([steps.measure(args.months, every_day(date.fromisoformat(args.months[0]), last))])
