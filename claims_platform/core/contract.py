"""The data contract for a batch of applications, and the routing of rows that break it.

The contract is one pandera schema derived from :mod:`claims_platform.core.schema`. Validation runs in
two passes because a value that cannot be read as its type (``"x"`` in ``age``) makes every later
check on that column fail for the whole column:

1. *types* — each column is coerced to its type; rows whose value cannot be read are rejected;
2. *rules* — ranges, category levels, nullability, whole numbers, finite values and the application
   date inside the batch's window, on the rows that survived pass 1;
3. *identity* — an ``application_id`` is one application across the whole history: two rows with
   one id on the same day are both rejected (which one is real cannot be told), and a row whose id
   already occurred on an earlier day — earlier in the batch, or before it (``earlier_days``, what
   the warehouse knows) — is rejected naming that day, so the first application keeps its id.

Every row read ends up either in ``valid`` or in ``rejected`` (with every rule it broke), so
``rows_read == len(valid) + len(rejected)`` always holds. Problems no row can carry — a missing
column — are reported on the result and make the whole batch invalid.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from claims_platform.core.schema import (
    APPLICATION_COLUMNS,
    APPLICATION_DATE,
    APPLICATION_ID,
    CATEGORICAL_FEATURES,
    COLUMNS,
    FEATURE_DTYPES,
)

REJECTION_REASON = "rejection_reason"
ROW_NUMBER = "row_number"  # position of the row in the batch as read, so a rejected row can be found
REJECTED_COLUMNS = (ROW_NUMBER, *APPLICATION_COLUMNS, REJECTION_REASON)
DUPLICATE_IN_DAY = "unique within the day"
SEEN_EARLIER = "seen on an earlier day"
# One rule of a rejection reason: "column 'x': rule (value v)"; a row's reasons are joined by "; ".
REASON_PATTERN = re.compile(
    r"column '(?P<column>[^']*)': (?P<rule>.*?) \(value (?P<value>.*?)\)(?=; column '|; |$)", re.DOTALL
)


def rules_broken(reasons: Iterable[str]) -> dict[str, int]:
    """How many rows broke each rule ("column: rule"), from rejected rows' ``rejection_reason``, most often first.

    A reason that names no column (a quarantined day's "day quarantined: <problems>") counts by its head
    ("day quarantined").
    """
    counts: Counter[str] = Counter()
    for reason in reasons:
        text = str(reason)
        found = {f"{m['column']}: {m['rule']}" for m in REASON_PATTERN.finditer(text)}
        rest = REASON_PATTERN.sub("", text).strip("; ")
        if rest:
            found.add(rest.split(":")[0])
        counts.update(found)
    return dict(counts.most_common())


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one batch of applications."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    rows_read: int
    missing_columns: tuple[str, ...] = ()
    unexpected_columns: tuple[str, ...] = ()
    rule_counts: dict[str, int] = field(default_factory=dict)  # "column: rule" -> rows that broke it

    @property
    def duplicate_ids(self) -> int:
        """Rows rejected because their application_id occurs twice in a day or on an earlier day."""
        return sum(
            self.rule_counts.get(f"{APPLICATION_ID}: {rule}", 0) for rule in (DUPLICATE_IN_DAY, SEEN_EARLIER)
        )


def _pandera():
    import pandera.pandas as pa  # ~1.5 s import: only when a batch is validated

    return pa


def _type_of(kind: str) -> str | None:
    # Whole-number columns are read as floats first so that 20.5 is caught by the
    # `whole number` rule instead of being truncated silently by an int cast. Text columns have no dtype
    # for pandera to check: every value is made text as the batch is read (:func:`_as_read`), and
    # pandera's check of a text dtype calls Python on every value (3 s for a year of applications).
    return "float64" if kind in ("int", "float") else None


@lru_cache(maxsize=1)
def _types_schema():
    """The types every value must be readable as: numbers and the date (text always is, see ``_as_read``)."""
    pa = _pandera()
    columns = {APPLICATION_DATE: pa.Column("datetime64[ns]", nullable=True, coerce=True)}
    for col in COLUMNS:
        if _type_of(col.kind) is not None:
            columns[col.name] = pa.Column(_type_of(col.kind), nullable=True, coerce=True)
    return pa.DataFrameSchema(columns, strict=False, name="application types")


def _finite(s: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(s.to_numpy(dtype="float64", na_value=np.nan)) | s.isna(), index=s.index)


def _whole(s: pd.Series) -> pd.Series:
    return (s.round() == s) | s.isna()


@lru_cache(maxsize=16)
def _rules_schema(first_day: date, last_day: date):
    pa = _pandera()
    finite = pa.Check(_finite, name="finite", element_wise=False)
    whole = pa.Check(_whole, name="whole number", element_wise=False)
    columns = {
        APPLICATION_ID: pa.Column(None, nullable=False, checks=pa.Check.str_length(min_value=1)),
        APPLICATION_DATE: pa.Column(
            "datetime64[ns]",
            nullable=False,
            checks=pa.Check.in_range(
                pd.Timestamp(first_day),
                pd.Timestamp(last_day),
                error=f"inside the batch's days {first_day}..{last_day}",
            ),
        ),
    }
    for col in COLUMNS:
        checks = []
        if col.kind != "category":
            checks.append(finite)
        if col.kind == "int":
            checks.append(whole)
        if col.levels is not None:
            checks.append(pa.Check.isin(list(col.levels), error=f"one of {_levels_text(col.levels)}"))
        elif col.low is not None:
            checks.append(pa.Check.in_range(col.low, col.high, error=f"in range {col.low:g}..{col.high:g}"))
        columns[col.name] = pa.Column(_type_of(col.kind), nullable=col.nullable, checks=checks)
    return pa.DataFrameSchema(columns, strict=False, name="application rules")


def _levels_text(levels) -> str:
    if len(levels) > 8:
        return f"{levels[0]}..{levels[-1]}"
    return ", ".join(str(v) for v in levels)


_TYPE_NAMES = {"float64": "number", "str": "text", "datetime64[ns]": "date"}


def _rule_name(check: str) -> str:
    if check == "not_nullable":
        return "required (not null)"
    if check.startswith(("coerce_dtype(", "dtype(")):
        dtype = check[check.index("(") + 1 : -1].strip("'")
        return f"readable as {_TYPE_NAMES.get(dtype, dtype)}"
    return check


def _failures(schema, frame: pd.DataFrame) -> pd.DataFrame:
    """Row-level failures of ``frame`` against ``schema``: columns index, column, rule, value."""
    pa = _pandera()
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        cases = cases[cases["index"].notna()]
        out = pd.DataFrame(
            {
                "index": cases["index"].astype("int64"),
                "column": cases["column"].astype(str),
                "rule": cases["check"].astype(str).map(_rule_name),
                "value": cases["failure_case"].astype(str),
            }
        )
        return out.drop_duplicates(["index", "column", "rule"])
    return pd.DataFrame({"index": pd.Series(dtype="int64"), "column": [], "rule": [], "value": []})


def _identity_failures(frame: pd.DataFrame, earlier_days: Mapping[str, date]) -> pd.DataFrame:
    """Rows whose id is not theirs alone: twice on one day, or already on an earlier day (named)."""
    ids = frame[APPLICATION_ID].astype(str)
    # datetime64, not date objects: a group-min over date objects is a Python call per id.
    days = pd.to_datetime(frame[APPLICATION_DATE]).dt.normalize()
    same_day = pd.DataFrame({"id": ids, "day": days}).duplicated(keep=False)
    first_day = days.groupby(ids).transform("min")
    if earlier_days:
        before = pd.to_datetime(ids.map(earlier_days))
        first_day = before.where(before.notna(), first_day)
    seen_earlier = ~same_day & (first_day < days)
    parts = [
        pd.DataFrame({"index": frame.index[same_day], "rule": DUPLICATE_IN_DAY, "value": ids[same_day]}),
        pd.DataFrame(
            {
                "index": frame.index[seen_earlier],
                "rule": SEEN_EARLIER,
                "value": ids[seen_earlier] + "; first on " + first_day[seen_earlier].dt.strftime("%Y-%m-%d"),
            }
        ),
    ]
    out = pd.concat(parts, ignore_index=True).assign(column=APPLICATION_ID)
    return out.astype({"index": "int64"})[["index", "column", "rule", "value"]]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast rows that passed every rule to the contract's final dtypes."""
    out = pd.DataFrame(index=frame.index)
    out[APPLICATION_ID] = frame[APPLICATION_ID].astype(str)
    out[APPLICATION_DATE] = pd.to_datetime(frame[APPLICATION_DATE]).dt.date
    for name, dtype in FEATURE_DTYPES.items():
        out[name] = frame[name].astype(dtype if dtype != "object" else str)
    return out.reset_index(drop=True)


def empty_applications() -> pd.DataFrame:
    """A zero-row batch with the contract's columns and dtypes."""
    dtypes = {APPLICATION_ID: "object", APPLICATION_DATE: "object", **FEATURE_DTYPES}
    return pd.DataFrame({name: pd.Series(dtype=dtypes[name]) for name in APPLICATION_COLUMNS})


def _rejected_frame(raw: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """Rejected rows keep every value as read, as text, so nothing is lost and Parquet can hold them."""
    rows = raw.loc[reasons.index]
    out = pd.DataFrame({ROW_NUMBER: reasons.index.astype("int64")}, index=reasons.index)
    for name in APPLICATION_COLUMNS:
        if name in rows.columns:
            out[name] = rows[name].map(lambda v: None if v is None else str(v)).astype("object")
        else:
            out[name] = None
    out[REJECTION_REASON] = reasons.to_numpy()
    return out.reset_index(drop=True)


def validate_applications(
    raw: pd.DataFrame,
    first_day: date,
    last_day: date | None = None,
    earlier_days: Mapping[str, date] | None = None,
) -> ValidationResult:
    """Validate a batch of applications dated ``first_day``..``last_day`` (inclusive).

    Returns the valid rows, typed per the contract, and the rejected rows with a reason naming
    each column and rule they broke. A missing column rejects every row (no row can be trusted) and
    is listed in ``missing_columns``. ``earlier_days`` maps ids already stored before ``first_day``
    to the first day they occurred on; those rows are rejected naming that day.
    """
    last_day = last_day or first_day
    raw = raw.reset_index(drop=True)
    missing = tuple(c for c in APPLICATION_COLUMNS if c not in raw.columns)
    unexpected = tuple(c for c in raw.columns if c not in APPLICATION_COLUMNS)
    if missing:
        return _without_columns(raw, missing, unexpected)
    failures, coerced = _all_failures(_as_read(raw), first_day, last_day, earlier_days or {})
    reasons, rule_counts = _reasons(failures)
    valid = coerced.drop(index=reasons.index.intersection(coerced.index))
    return ValidationResult(
        valid=_typed(valid) if len(valid) else empty_applications(),
        rejected=_rejected_frame(raw, reasons) if len(reasons) else empty_rejected(),
        rows_read=len(raw),
        unexpected_columns=unexpected,
        rule_counts=rule_counts,
    )


def _without_columns(
    raw: pd.DataFrame, missing: tuple[str, ...], unexpected: tuple[str, ...]
) -> ValidationResult:
    """A batch missing contract columns: every row rejected, naming the missing columns."""
    reason = "; ".join(f"column '{c}': missing from the batch" for c in missing)
    reasons = pd.Series(reason, index=raw.index, dtype="object")
    return ValidationResult(
        valid=empty_applications(),
        rejected=_rejected_frame(raw, reasons),
        rows_read=len(raw),
        missing_columns=missing,
        unexpected_columns=unexpected,
        rule_counts={f"{c}: present": len(raw) for c in missing},
    )


def _as_read(raw: pd.DataFrame) -> pd.DataFrame:
    """The contract's columns, the id and categorical levels as text (a missing value stays missing, so it
    fails `required`, not `isin`)."""
    frame = raw[list(APPLICATION_COLUMNS)].copy()
    for name in (APPLICATION_ID, *CATEGORICAL_FEATURES):
        frame[name] = _as_text(frame[name])
    return frame


def _as_text(series: pd.Series) -> pd.Series:
    """Each value as ``str`` gives it (in one pass of numpy's, not a Python call per value); a missing
    value (None, NaN) as it was."""
    values = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # Text already (as the warehouse returns it): nothing to convert.
        return series if series.dtype == object else pd.Series(values, index=series.index, name=series.name)
    missing = pd.isna(values)
    text = values.astype(str).astype(object)
    text[missing] = values[missing]
    return pd.Series(text, index=series.index, name=series.name)


def _all_failures(
    frame: pd.DataFrame, first_day: date, last_day: date, earlier_days: Mapping[str, date]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (row, column, rule, value) the batch breaks, and its readable rows coerced to their types.

    A value that could not be read as its type fails that rule only: its `null` after coercion is not
    also reported as a missing value. Identity (unique, not stored before) is judged on the rows whose id
    and date are themselves readable and in the window.
    """
    type_failures = _failures(_types_schema(), frame)
    bad_type_rows = pd.Index(type_failures["index"].unique())
    readable = frame.drop(index=bad_type_rows)
    coerced = _types_schema().validate(readable) if len(readable) else readable
    rule_failures = _failures(_rules_schema(first_day, last_day), coerced)
    unidentifiable = rule_failures["column"].isin([APPLICATION_ID, APPLICATION_DATE])
    identifiable = coerced.drop(index=rule_failures.loc[unidentifiable, "index"].unique())
    identity_failures = _identity_failures(identifiable, earlier_days) if len(identifiable) else None
    failures = pd.concat([type_failures, rule_failures, identity_failures], ignore_index=True)
    masked = (failures["rule"] == "required (not null)") & failures["index"].isin(bad_type_rows)
    return failures[~masked], coerced


def _reasons(failures: pd.DataFrame) -> tuple[pd.Series, dict[str, int]]:
    """Each failing row's reason (every column and rule it broke, with the value) and the count per rule."""
    if not len(failures):
        return pd.Series(dtype="object"), {}
    text = "column '" + failures["column"] + "': " + failures["rule"] + " (value " + failures["value"] + ")"
    reasons = failures.assign(text=text).groupby("index", sort=True)["text"].agg("; ".join)
    counts = (failures["column"] + ": " + failures["rule"]).value_counts().to_dict()
    return reasons, {k: int(v) for k, v in counts.items()}


def empty_rejected() -> pd.DataFrame:
    """A zero-row rejected batch with the rejected table's columns."""
    frame = pd.DataFrame({name: pd.Series(dtype="object") for name in REJECTED_COLUMNS})
    return frame.astype({ROW_NUMBER: "int64"})
