"""Jobs and automation of the models domain: rolling the champion back, keeping the model in force current."""

import dagster as dg

from claims_platform.core.partitions import monthly_partitions
from claims_platform.core.settings import LANE_TAG, MONTHLY_LANE
from claims_platform.models.assets import ROLLBACK_TAG

# A rollback is a new decision for the LATEST decided month: it withdraws that decision's champion
# and restores the one before it, so the chain (and everything that reads it: the next month's
# decision, the model in force) sees it. Its run config must carry the reason and the requester:
#   ops: {champion_decision: {config: {rollback: {reason: "...", requested_by: "..."}}}}
rollback_champion = dg.define_asset_job(
    "rollback_champion",
    selection=dg.AssetSelection.assets("champion_decision"),
    partitions_def=monthly_partitions,
    tags={ROLLBACK_TAG: "rollback", LANE_TAG: MONTHLY_LANE},
    description=(
        "Withdraw the current champion and restore the one before it (one step back per run). Launch it for the "
        "latest decided month with `rollback: {reason, requested_by}` in the config of champion_decision."
    ),
)


# Materializes `model_in_force` for the current month as soon as the decision of the month before
# lands or changes (its eager automation condition): after the monthly training, and after a
# rollback. Running by default: without it the first nightly run of a month would find no model.
model_in_force_automation = dg.AutomationConditionSensorDefinition(
    "model_in_force_automation",
    target=dg.AssetSelection.assets("model_in_force"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materialize the model in force for a month once the month before has its champion decision.",
)
