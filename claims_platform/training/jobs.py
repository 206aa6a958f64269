"""Jobs and the schedule of the training domain."""

import dagster as dg
from pydantic import Field

from claims_platform.models.registry import ModelRegistry
from claims_platform.partitions import monthly_partitions

monthly_training_job = dg.define_asset_job(
    "monthly_training",
    selection=dg.AssetSelection.assets("training_set", "claims_model", "champion_model"),
    partitions_def=monthly_partitions,
    description="Cut the month's training set, train and register a model, decide the champion for next month.",
)

# 06:00 UTC on day 2 of each month, for the month just ended (as in the seed).
monthly_training_schedule = dg.build_schedule_from_partitioned_job(
    monthly_training_job, name="monthly_training_schedule", hour_of_day=6, day_of_month=2
)


class RollbackConfig(dg.Config):
    """Why the champion is being rolled back: part of the audit record."""

    reason: str = Field(description="Why the current champion is withdrawn.")


@dg.op(out={}, description="Make `previous_champion` the champion again; tag the withdrawn version; audit.")
def restore_previous_champion(context: dg.OpExecutionContext, config: RollbackConfig, registry: ModelRegistry):
    """Swap the aliases back and record who, when and why."""
    audit = {
        "reason": config.reason,
        "dagster_run_id": context.run_id,
        "requested_by": context.run.tags.get("user", "unknown"),
    }
    withdrawn, restored = registry.rollback(audit)
    context.log.info(f"{registry.model_name}: champion v{withdrawn} withdrawn, v{restored} restored")
    yield dg.AssetObservation(
        asset_key="champion_model",
        metadata={"rollback": dg.MetadataValue.json({**audit, "withdrawn": withdrawn, "restored": restored})},
    )


@dg.job(description="Roll the champion model back to the previous champion (audited).")
def rollback_champion():
    restore_previous_champion()
