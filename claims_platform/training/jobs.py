"""Jobs and the schedule of the training domain."""

import dagster as dg

from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.settings import LANE_TAG, MONTHLY_LANE

monthly_training_job = dg.define_asset_job(
    "monthly_training",
    selection=dg.AssetSelection.assets("training_set", "candidate_model", "champion_decision"),
    partitions_def=monthly_partitions,
    tags={LANE_TAG: MONTHLY_LANE},
    description="Cut the month's training set, train and register a candidate, decide the champion for next month.",
)

# 06:00 UTC on day 2 of each month, for the month just ended (as in the seed).
monthly_training_schedule = dg.build_schedule_from_partitioned_job(
    monthly_training_job,
    name="monthly_training_schedule",
    hour_of_day=6,
    day_of_month=2,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
