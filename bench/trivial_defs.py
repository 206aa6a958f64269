"""A one-asset code location: the yardstick a nightly scoring run's Dagster overhead is measured against."""

import dagster as dg


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2025-01-01"))
def trivial(context: dg.AssetExecutionContext) -> None:
    """Does nothing but exist for one partition."""
    context.log.info(context.partition_key)


defs = dg.Definitions(assets=[trivial])
