"""Partitions shared by every domain: one calendar, one timezone, one first day."""

import dagster as dg

from claims_platform.core.settings import FIRST_DAY, TIMEZONE

# Each day's applications, scores, forecast and drift report.
daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE)
# Each month's training set, model and champion decision.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE)
# Months in which a model scores: up to and including the current month, whose days are scored
# while it is still running (its model was decided at the start of the month).
scoring_months = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_DAY.isoformat(), timezone=TIMEZONE, end_offset=1
)


def month_before(asset: str) -> dg.AssetIn:
    """The input of a monthly chain on its own month before (a self-dependency).

    Missing is allowed at the loading level: the chain's first month has nothing before it, and
    :func:`require_month_order` tells that apart from a gap.
    """
    return dg.AssetIn(
        key=asset,
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
        ),
        metadata={"allow_missing_partitions": True},
    )


def require_month_order(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, previous: object | None
) -> None:
    """Fail unless this monthly partition may run without the month before's partition of ``asset_key``.

    For an asset that is a chain over months (each month reads the one before), a missing previous
    month is only allowed at the chain's start: when no earlier month was materialized either.
    ``previous`` is what was loaded for the month before (None when missing).
    """
    if previous is not None:
        return
    from claims_platform.core.months import shift_month_key

    month = context.partition_key
    earlier = sorted(k for k in context.instance.get_materialized_partitions(asset_key) if k < month)
    if earlier:
        before = shift_month_key(month, -1)
        name = asset_key.to_user_string()
        raise dg.Failure(
            f"`{name}` for {before[:7]} is missing, but {earlier[-1][:7]} was materialized: the months of this "
            f"chain run in order. Materialize `{name}` for {before} first (e.g. a backfill of `monthly_training` "
            f"from {shift_month_key(earlier[-1], 1)} to {before})."
        )
