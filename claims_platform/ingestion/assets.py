"""The daily `applications` and `rejected_applications` assets and their checks.

A run reads its days from the source once, holds every row to the data contract, then judges each day
as a whole (:mod:`claims_platform.ingestion.verdicts`). A broken day is quarantined — all its rows in
`rejected_applications` with the day-level reason, none in `applications` — and named in an alert, while
the run's other days are stored and flow on; the checks fail with ERROR (blocking what follows) only
when no day of the run is usable.
"""

from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, model_validator

from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.contract import REJECTION_REASON, rules_broken
from claims_platform.core.partitions import daily_partitions
from claims_platform.core.schema import APPLICATION_DATE, APPLICATION_ID
from claims_platform.core.services import names_outages
from claims_platform.ingestion.batches import DayBatch, validate_days
from claims_platform.ingestion.verdicts import VOLUME_HISTORY_DAYS, VolumeLimits, judge_days
from claims_platform.source.resources import ApplicationSource
from claims_platform.source.warehouse import LOADED_AT

GROUP = "ingestion"
OWNERS = ["team:data-science"]

COLUMNS_PRESENT = "contract_columns_present"
UNIQUE_IDS = "unique_application_ids"
PLAUSIBLE_VOLUME = "plausible_daily_volume"
REJECTED_SHARE = "rejected_share_within_limit"
SHARE_VS_HISTORY = "rejected_share_vs_history"

# Per-partition metadata keys other code reads back (the late-data sensor, the share history).
ROWS_READ = "rows_read"
REJECTED_ROWS = "rejected_rows"
QUARANTINED_KEY = "quarantined"
LOADED_THROUGH = "loaded_through"
RULES_BROKEN = (
    "rules_broken"  # on `rejected_applications`: rows per rule broken that day ("column: rule" -> rows)
)


class IngestionConfig(dg.Config):
    """Limits that decide when a day's batch is broken as a whole rather than merely holding bad rows."""

    min_share_of_typical: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description=f"A day with fewer rows than this share of the typical day (median of the {VOLUME_HISTORY_DAYS} days before) is implausible.",
    )
    max_multiple_of_typical: float = Field(
        default=4.0,
        gt=1,
        description="A day with more rows than this multiple of the typical day is implausible.",
    )
    min_rows: int = Field(
        default=1, ge=1, description="Fewer rows than this (but more than none) is always implausible."
    )
    max_rows: int = Field(default=1_000_000, ge=1, description="More rows than this is always implausible.")
    max_rejected_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="A day with a larger share of rows breaking the contract is quarantined.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "IngestionConfig":
        if self.min_rows > self.max_rows:
            raise ValueError(f"min_rows ({self.min_rows}) must not be above max_rows ({self.max_rows})")
        return self

    def limits(self) -> VolumeLimits:
        return VolumeLimits(
            self.min_rows, self.max_rows, self.min_share_of_typical, self.max_multiple_of_typical
        )


def _days_of(context: dg.AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    # The window's end is exclusive: the first instant of the day after the last partition.
    return window.start.date(), (window.end - pd.Timedelta(days=1)).date()


def _check(name: str, description: str, blocking: bool = True) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset="applications", description=description, blocking=blocking)


def _severity(failed_days: int, usable_days: int) -> dg.AssetCheckSeverity:
    """ERROR (blocking what follows) only when no day of the run is usable; a quarantine otherwise warns."""
    return dg.AssetCheckSeverity.ERROR if failed_days and not usable_days else dg.AssetCheckSeverity.WARN


def _share_history(context: dg.AssetExecutionContext, first_day: date) -> dict[date, tuple[int, int]]:
    """(rows read, rows rejected by the contract) of the stored days before the run, from their metadata."""
    days = [(first_day - timedelta(days=i)).isoformat() for i in range(1, VOLUME_HISTORY_DAYS + 1)]
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("applications"), asset_partitions=days),
        limit=4 * len(days),
    ).records
    history: dict[date, tuple[int, int]] = {}
    for record in records:  # newest first: the first record of a day is its current one
        materialization = record.asset_materialization
        day = date.fromisoformat(materialization.partition)
        meta = materialization.metadata
        if (
            day in history
            or ROWS_READ not in meta
            or (QUARANTINED_KEY in meta and meta[QUARANTINED_KEY].value)
        ):
            continue
        history[day] = (
            int(meta[ROWS_READ].value),
            int(meta.get(REJECTED_ROWS, dg.IntMetadataValue(0)).value),
        )
    return history


@dg.multi_asset(
    outs={
        "applications": dg.AssetOut(
            description=(
                "The day's insurance applications that satisfy the data contract (one row per application, "
                "the 40 features typed per the contract)."
            ),
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            group_name=GROUP,
            is_required=True,
        ),
        "rejected_applications": dg.AssetOut(
            description=(
                "The day's applications that broke the data contract, every value kept as read, with the "
                "column and rule each broke in `rejection_reason`."
            ),
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            group_name=GROUP,
            is_required=True,
        ),
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        _check(COLUMNS_PRESENT, "Every contract column is in the warehouse's batch."),
        _check(
            PLAUSIBLE_VOLUME,
            "Each day's row count is plausible against the typical day before it; an implausible day is quarantined.",
        ),
        _check(
            REJECTED_SHARE,
            "At most max_rejected_share of a day's rows break the contract; a day above it is quarantined.",
        ),
        _check(
            UNIQUE_IDS,
            "No application_id occurs twice on a day or on an earlier day (such rows are rejected, naming the day).",
            blocking=False,
        ),
        _check(
            SHARE_VS_HISTORY,
            "Each day's share of rejected rows is in line with the share the contract rejected over the days before.",
            blocking=False,
        ),
    ],
)
@names_outages
def ingest_applications(
    context: dg.AssetExecutionContext,
    config: IngestionConfig,
    source: ApplicationSource,
    alerts: AlertsResource,
):
    """Read each day of the partition range from the source, validate once, judge each day, route every row.

    Rows read = valid + rejected for every day; each day's counts, verdict and the warehouse watermark
    it read up to are that partition's own metadata.
    """
    first_day, last_day = _days_of(context)
    read = _read_and_judge(context, config, source, first_day, last_day)
    _record_days(context, read)
    _alert(context, alerts, read)
    # Totals over a backfill's range say so in their names; each day's own figures are above.
    common = {
        "run_days": len(read.batches),
        "run_rows_read": read.rows_read,
        "run_quarantined_days": len(read.quarantined),
    }
    yield dg.Output(
        {d.isoformat(): b.valid for d, b in read.batches.items()}, output_name="applications", metadata=common
    )
    top_rules = sorted(read.result.rule_counts.items(), key=lambda kv: -kv[1])[:20]
    yield dg.Output(
        {d.isoformat(): b.rejected for d, b in read.batches.items()},
        output_name="rejected_applications",
        metadata={**common, "run_rules_broken": dg.MetadataValue.json(dict(top_rules))},
    )
    yield from _checks(read, config.max_rejected_share)


@dataclass(frozen=True)
class _Read:
    """A range of days read, validated once, and judged day by day."""

    result: Any  # the contract's validation of the whole range
    batches: dict  # day -> DayBatch, after the verdicts
    rows_read: int
    contract_rejected: dict  # day -> rows the contract rejected
    watermarks: dict  # day -> the warehouse watermark it was read up to
    quarantined: dict  # day -> why
    implausible: dict
    unusual: dict


def _read_and_judge(context, config, source, first_day: date, last_day: date) -> _Read:
    """Read the days from the source, validate them once, account for every row, and judge each day."""
    raw = source.read_applications(first_day, last_day)
    loaded_at = raw.pop(LOADED_AT) if LOADED_AT in raw.columns else None
    ids = raw[APPLICATION_ID].dropna().astype(str).unique() if APPLICATION_ID in raw.columns else []
    earlier = source.earlier_days(ids, first_day) if len(ids) else {}
    result, batches = validate_days(raw, first_day, last_day, earlier)
    rows_read = sum(b.rows_read for b in batches.values())
    if rows_read != sum(len(b.valid) + len(b.rejected) for b in batches.values()) or rows_read != len(raw):
        raise RuntimeError(f"Row accounting broken: read {len(raw)}, attributed {rows_read}")
    contract_rejected = {d: len(b.rejected) for d, b in batches.items()}
    verdicts = judge_days(
        batches,
        _volume_history(source, first_day),
        _share_history(context, first_day),
        config.limits(),
        config.max_rejected_share,
    )
    return _Read(
        result, verdicts.batches, rows_read, contract_rejected, _watermarks(raw, loaded_at),
        verdicts.quarantined, verdicts.implausible, verdicts.unusual,
    )  # fmt: skip


def _record_days(context, read: _Read) -> None:
    """Each day's counts, verdict and watermark on its own partition of both outputs."""
    for day, batch in read.batches.items():
        own = {
            ROWS_READ: batch.rows_read,
            "valid_rows": len(batch.valid),
            REJECTED_ROWS: read.contract_rejected[day],
            QUARANTINED_KEY: day in read.quarantined,
            LOADED_THROUGH: read.watermarks.get(day, ""),
        }
        if day in read.quarantined:
            own["quarantine_reason"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in read.quarantined[day]))
        key = day.isoformat()
        context.add_asset_metadata(own, asset_key="applications", partition_key=key)
        context.add_asset_metadata(
            {
                ROWS_READ: batch.rows_read,
                "rejected_rows": len(batch.rejected),
                QUARANTINED_KEY: day in read.quarantined,
                RULES_BROKEN: dg.MetadataValue.json(rules_broken(batch.rejected[REJECTION_REASON])),
            },
            asset_key="rejected_applications",
            partition_key=key,
        )


def _alert(context, alerts: AlertsResource, read: _Read) -> None:
    """An error alert for quarantined days, a warning for days whose rejected share is out of line."""
    if read.quarantined:
        alerts.send(_quarantine_alert(read.quarantined, read.batches, context.run_id), log=context.log)
    unusual = read.unusual
    if unusual:
        alerts.send(
            Alert(
                "warning",
                f"Rejected share out of line with history on {len(unusual)} day(s): {', '.join(list(unusual)[:5])}",
                _first_lines(unusual) or "",
                {"days": ", ".join(list(unusual)[:20]), "run id": context.run_id},
                dedupe_key=f"rejected-share:{context.run_id}",
            ),
            log=context.log,
        )


def _checks(read: _Read, max_rejected_share: float) -> list[dg.AssetCheckResult]:
    """The five checks of the range: columns, volume, rejected share, unique ids, share against history."""
    return [
        _columns_check(read.result),
        _volume_check(read),
        _rejected_share_check(read, max_rejected_share),
        _unique_ids_check(read.result.duplicate_ids),
        dg.AssetCheckResult(
            check_name=SHARE_VS_HISTORY,
            passed=not read.unusual,
            severity=dg.AssetCheckSeverity.WARN,
            description=_first_lines(read.unusual),
            metadata={"unusual_days": dg.MetadataValue.json(read.unusual)},
        ),
    ]


def _columns_check(result) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=COLUMNS_PRESENT,
        passed=not result.missing_columns,
        metadata={
            "missing_columns": dg.MetadataValue.json(list(result.missing_columns)),
            "unexpected_columns": dg.MetadataValue.json(list(result.unexpected_columns)),
        },
    )


def _volume_check(read: _Read) -> dg.AssetCheckResult:
    """Implausible volumes fail (quarantined days); an empty day (an outage upstream, a holiday) only warns."""
    batches, implausible = read.batches, read.implausible
    empty = [str(d) for d, b in batches.items() if b.rows_read == 0]
    usable = len(batches) - len(read.quarantined)
    return dg.AssetCheckResult(
        check_name=PLAUSIBLE_VOLUME,
        passed=not implausible and not empty,
        severity=_severity(len(implausible), usable) if implausible else dg.AssetCheckSeverity.WARN,
        description=_first_lines(implausible)
        or (f"No applications on {', '.join(empty[:10])}" if empty else None),
        metadata={
            "implausible_days": dg.MetadataValue.json(
                {d: batches[date.fromisoformat(d)].rows_read for d in implausible}
            ),
            "empty_days": dg.MetadataValue.json(empty),
            "quarantined_days": dg.MetadataValue.json([str(d) for d in read.quarantined]),
        },
    )


def _rejected_share_check(read: _Read, max_rejected_share: float) -> dg.AssetCheckResult:
    """Days whose contract-rejected share is over the limit (quarantined), with each day's share."""
    over = {str(d): p for d, ps in read.quarantined.items() for p in ps if p.startswith(REJECTED_SHARE)}
    shares = {
        d: round(
            read.contract_rejected[date.fromisoformat(d)] / read.batches[date.fromisoformat(d)].rows_read, 4
        )
        for d in over
    }
    return dg.AssetCheckResult(
        check_name=REJECTED_SHARE,
        passed=not over,
        severity=_severity(len(over), len(read.batches) - len(read.quarantined)),
        description=_first_lines(over),
        metadata={"max_rejected_share": max_rejected_share, "broken_days": dg.MetadataValue.json(shares)},
    )


def _unique_ids_check(duplicates: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=UNIQUE_IDS,
        passed=duplicates == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{duplicates} row(s) rejected for an application_id already used (see rejected_applications)"
            if duplicates
            else None
        ),
        metadata={"duplicate_rows": duplicates},
    )


def _first_lines(messages: dict[str, str], limit: int = 5) -> str | None:
    """Up to ``limit`` "day: message" lines, and how many more."""
    if not messages:
        return None
    lines = [f"{day}: {text}" for day, text in list(messages.items())[:limit]]
    if len(messages) > limit:
        lines.append(f"... and {len(messages) - limit} more day(s)")
    return "\n".join(lines)


def _watermarks(raw: pd.DataFrame, loaded_at: pd.Series | None) -> dict[date, str]:
    """Per day, the latest ``loaded_at`` among the rows read (ISO, UTC): what the late-data sensor compares."""
    if loaded_at is None or not len(raw) or APPLICATION_DATE not in raw.columns:
        return {}
    days = pd.to_datetime(raw[APPLICATION_DATE].astype("object"), errors="coerce").dt.date
    latest = pd.to_datetime(loaded_at).groupby(days).max()
    return {
        d: ts.tz_localize(UTC).isoformat() if ts.tzinfo is None else ts.isoformat()
        for d, ts in latest.items()
    }


def _volume_history(source: ApplicationSource, first_day: date) -> dict[date, int]:
    """Rows per day the warehouse holds for the days before the run (the volume check's history)."""
    frame = source.loaded_days(first_day - timedelta(days=VOLUME_HISTORY_DAYS), first_day - timedelta(days=1))
    return {d: int(n) for d, n in zip(frame["application_date"], frame["rows"], strict=True)}


def _quarantine_alert(
    quarantined: dict[date, list[str]], batches: dict[date, DayBatch], run_id: str
) -> Alert:
    days = sorted(quarantined)
    rows = sum(len(batches[d].rejected) for d in days)
    listed = "; ".join(f"{d}: {' / '.join(quarantined[d])}" for d in days[:5])
    more = f" (and {len(days) - 5} more days)" if len(days) > 5 else ""
    return Alert(
        "error",
        f"Quarantined {len(days)} day(s) of applications: {', '.join(str(d) for d in days[:5])}",
        (
            f"{listed}{more}. Their {rows:,} rows are in rejected_applications with the reason; nothing of these days "
            "reaches training or scoring. Fix the source (a re-load is re-scored by late_applications_sensor) or, if "
            "the day is real, re-run it with the limit changed."
        ),
        {"days": ", ".join(str(d) for d in days[:20]), "rows held": f"{rows:,}", "run id": run_id},
        dedupe_key=f"quarantine:{run_id}",
    )
