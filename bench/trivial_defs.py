"""A one-asset code location: the yardstick a nightly scoring run's Dagster overhead is measured against.

With Dagster's default executor (a process per step); ``BENCH_TRIVIAL_IN_PROCESS=1`` runs it in
process, as claims_platform's runs are, for the stricter comparison.
"""

import os

import dagster as dg


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2025-01-01"))
def trivial(context: dg.AssetExecutionContext) -> None:
    """Does nothing but exist for one partition."""
    context.log.info(context.partition_key)


defs = dg.Definitions(
    assets=[trivial],
    executor=dg.in_process_executor if os.environ.get("BENCH_TRIVIAL_IN_PROCESS") else None,
)
