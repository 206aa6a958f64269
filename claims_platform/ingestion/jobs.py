"""Jobs of the ingestion domain."""

import dagster as dg

from claims_platform.partitions import daily_partitions

ingestion_job = dg.define_asset_job(
    "daily_ingestion",
    selection=dg.AssetSelection.assets("applications", "rejected_applications"),
    partitions_def=daily_partitions,
    description="Read the day's applications from the warehouse and hold them to the data contract.",
)
