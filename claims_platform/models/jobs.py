"""Automation of the models domain: keeping the model in force current (the rollback job is in ``rollback``)."""

import dagster as dg

# Materializes `model_in_force` for the current month as soon as the decision of the month before
# lands or changes (its eager automation condition): after the monthly training, and after a
# rollback. Running by default: without it the first nightly run of a month would find no model.
model_in_force_automation = dg.AutomationConditionSensorDefinition(
    "model_in_force_automation",
    target=dg.AssetSelection.assets("model_in_force"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materialize the model in force for a month once the month before has its champion decision.",
)
