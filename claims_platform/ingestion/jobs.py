"""Jobs of the ingestion domain."""

import dagster as dg

from claims_platform.core.partitions import daily_partitions
from claims_platform.core.settings import DAILY_LANE, LANE_TAG

ingestion_job = dg.define_asset_job(
    "daily_ingestion",
    selection=dg.AssetSelection.assets("applications", "rejected_applications"),
    partitions_def=daily_partitions,
    tags={LANE_TAG: DAILY_LANE},
    description="Read the day's applications from the warehouse and hold them to the data contract.",
)
