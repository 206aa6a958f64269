"""What Dagster's instance knows about partitions: their latest materializations (one place for sensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class Materialized:
    """A partition's latest materialization: its metadata values and when it was recorded (epoch seconds)."""

    metadata: dict[str, Any]
    timestamp: float


def latest_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str]
) -> dict[str, Materialized]:
    """The latest materialization of each of ``partitions`` that has one.

    One batched query covers the usual case; a partition re-materialized so often that its siblings
    fall out of the batch is looked up on its own, so the answer never depends on the history's shape.
    """
    if not partitions:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions),
        limit=len(partitions) * 4,
        ascending=False,
    ).records
    latest: dict[str, Materialized] = {}
    for record in records:
        if record.partition_key not in latest:
            latest[record.partition_key] = _materialized(record)
    if len(records) == len(partitions) * 4:
        for partition in set(partitions) - set(latest):
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1, ascending=False
            ).records
            if found:
                latest[partition] = _materialized(found[0])
    return latest


def _materialized(record) -> Materialized:
    metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return Materialized(metadata, record.timestamp)
