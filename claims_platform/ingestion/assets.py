"""The daily `applications` and `rejected_applications` assets and their blocking checks."""


from datetime import date

import dagster as dg
import pandas as pd
from pydantic import Field

from claims_platform.ingestion.batches import DayBatch, validate_days
from claims_platform.partitions import daily_partitions
from claims_platform.resources import ApplicationSource
from claims_platform.settings import DAILY_VOLUME

GROUP = "ingestion"
OWNERS = ["team:data-science"]

COLUMNS_PRESENT = "contract_columns_present"
UNIQUE_IDS = "unique_application_ids"
PLAUSIBLE_VOLUME = "plausible_daily_volume"
REJECTED_SHARE = "rejected_share_within_limit"


class IngestionConfig(dg.Config):
    """Limits that decide when a day's batch is broken rather than merely holding some bad rows."""

    min_rows: int = Field(
        default=DAILY_VOLUME // 4,
        description="Fewer rows than this (but more than none) is an implausible day. An empty day only warns.",
    )
    max_rows: int = Field(default=DAILY_VOLUME * 4, description="More rows than this is an implausible day.")
    max_rejected_share: float = Field(
        default=0.05, description="A day with a larger share of rejected rows is a broken batch."
    )


def _days_of(context: dg.AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    # The window's end is exclusive: the first instant of the day after the last partition.
    return window.start.date(), (window.end - pd.Timedelta(days=1)).date()


def _check(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset="applications", description=description, blocking=True)


def _volume_result(batches: dict[date, DayBatch], config: IngestionConfig) -> dg.AssetCheckResult:
    implausible = {
        str(d): b.rows_read for d, b in batches.items() if b.rows_read and not config.min_rows <= b.rows_read <= config.max_rows
    }
    empty = [str(d) for d, b in batches.items() if b.rows_read == 0]
    if implausible:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif empty:
        # A day with no applications is possible (an outage upstream, a holiday); scoring an empty
        # day yields an empty forecast, so it warns instead of blocking.
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.ERROR, True
    return dg.AssetCheckResult(
        check_name=PLAUSIBLE_VOLUME,
        passed=passed,
        severity=severity,
        metadata={
            "implausible_days": dg.MetadataValue.json(implausible),
            "empty_days": dg.MetadataValue.json(empty),
            "allowed_rows": f"{config.min_rows}..{config.max_rows}",
        },
    )


def _counts_table(batches: dict[date, DayBatch]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({"day": str(d), "read": b.rows_read, "valid": len(b.valid), "rejected": len(b.rejected)})
            for d, b in list(batches.items())[:400]
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("day", "string"),
                dg.TableColumn("read", "int"),
                dg.TableColumn("valid", "int"),
                dg.TableColumn("rejected", "int"),
            ]
        ),
    )


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
        _check(UNIQUE_IDS, "No application_id occurs twice in a day's batch."),
        _check(PLAUSIBLE_VOLUME, "Each day's row count is plausible (an empty day warns)."),
        _check(REJECTED_SHARE, "At most a small share of a day's rows break the contract."),
    ],
)
def ingest_applications(context: dg.AssetExecutionContext, config: IngestionConfig, source: ApplicationSource):
    """Read each day of the partition range from the source, validate once, route every row.

    Rows read = valid + rejected for every day; the counts are metadata on both assets.
    """
    first_day, last_day = _days_of(context)
    raw = source.read_applications(first_day, last_day)
    result, batches = validate_days(raw, first_day, last_day)
    keys = {day: day.isoformat() for day in batches}
    rows_read = sum(b.rows_read for b in batches.values())
    valid_rows = sum(len(b.valid) for b in batches.values())
    rejected_rows = sum(len(b.rejected) for b in batches.values())
    if rows_read != valid_rows + rejected_rows or rows_read != len(raw):
        raise RuntimeError(
            f"Row accounting broken: read {len(raw)}, attributed {rows_read}, valid {valid_rows} + rejected {rejected_rows}"
        )
    # Dagster copies a run's output metadata onto every partition it materializes, so totals over a
    # backfill's range say so in their names; `per_day` has each day's own counts.
    common = {
        "run_days": len(batches),
        "run_rows_read": rows_read,
        "run_valid_rows": valid_rows,
        "run_rejected_rows": rejected_rows,
    }
    yield dg.Output(
        {keys[d]: b.valid for d, b in batches.items()},
        output_name="applications",
        metadata={**common, "per_day": _counts_table(batches)},
    )
    top_rules = sorted(result.rule_counts.items(), key=lambda kv: -kv[1])[:20]
    yield dg.Output(
        {keys[d]: b.rejected for d, b in batches.items()},
        output_name="rejected_applications",
        metadata={
            **common,
            "run_rules_broken": dg.MetadataValue.json(dict(top_rules)),
        },
    )
    yield dg.AssetCheckResult(
        check_name=COLUMNS_PRESENT,
        passed=not result.missing_columns,
        metadata={
            "missing_columns": dg.MetadataValue.json(list(result.missing_columns)),
            "unexpected_columns": dg.MetadataValue.json(list(result.unexpected_columns)),
        },
    )
    yield dg.AssetCheckResult(
        check_name=UNIQUE_IDS, passed=result.duplicate_ids == 0, metadata={"duplicate_rows": result.duplicate_ids}
    )
    yield _volume_result(batches, config)
    shares = {str(d): round(len(b.rejected) / b.rows_read, 4) for d, b in batches.items() if b.rows_read}
    broken = {d: s for d, s in shares.items() if s > config.max_rejected_share}
    yield dg.AssetCheckResult(
        check_name=REJECTED_SHARE,
        passed=not broken,
        metadata={
            "max_rejected_share": config.max_rejected_share,
            "worst_share": max(shares.values(), default=0.0),
            "broken_days": dg.MetadataValue.json(broken),
        },
    )
