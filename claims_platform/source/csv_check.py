"""Checking a parsed export: batch names, the import's options, and the data contract on its rows (the
second step of an import)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from claims_platform.core import schema
from claims_platform.source.csv_parse import INDEX, ImportOptionError, ParsedExport, Problem

BATCH_NAME = re.compile(r"[A-Za-z0-9_.-]+")
BATCH_SEPARATOR = ":"


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
def contract_problems(parsed: ParsedExport, applications: pd.DataFrame) -> tuple[list[Problem], np.ndarray]:
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


def sort_problems(problems: list[Problem], columns: Sequence[str]) -> list[Problem]:
    order = {c: i for i, c in enumerate(columns)}
    return sorted(
        problems,
        key=lambda p: (p.line or 0, -1 if p.column == INDEX else order.get(p.column or "", len(order))),
    )


def check_options(
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
