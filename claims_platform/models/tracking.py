"""dagster-mlflow's tracking resource, wrapped so the experiment is created where we configure.

Why wrapped (see docs/models.md): dagster-mlflow's `mlflow_tracking` starts one MLflow run per
Dagster run and tags it with the Dagster run id — exactly what tracking needs — but it creates its
experiment with MLflow's default artifact location (a `mlruns/` folder in the working directory).
`claims_mlflow_tracking` creates the experiment first, with the artifact location we configure
(local folder or S3), then hands over to dagster-mlflow unchanged.
"""

from __future__ import annotations

import dagster as dg


def ensure_experiment(tracking_uri: str | None, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created with ``artifact_location`` if it does not exist yet."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location or None)


# The part of dagster-mlflow's config schema we use, declared here so that loading the code location
# does not import MLflow (dagster_mlflow imports it at module level, ~1.3 s).
_TRACKING_CONFIG = {
    "experiment_name": dg.Field(dg.StringSource, description="MLflow experiment name."),
    "mlflow_tracking_uri": dg.Field(dg.Noneable(dg.StringSource), default_value=None, is_required=False),
    "extra_tags": dg.Field(dg.Permissive(), is_required=False, description="Extra tags for every MLflow run."),
}


@dg.resource(
    config_schema={
        **_TRACKING_CONFIG,
        "artifact_location": dg.Field(
            dg.Noneable(dg.StringSource),
            default_value=None,
            is_required=False,
            description="Where the experiment's artifacts go (folder or s3://...); used when it is created.",
        ),
    },
    description="dagster-mlflow's tracking resource, with the experiment created at our artifact location.",
)
def claims_mlflow_tracking(context):
    """One MLflow run per Dagster run (dagster-mlflow's `MlFlow`), in an experiment we created."""
    from dagster_mlflow.resources import MlFlow

    config = context.resource_config
    ensure_experiment(config.get("mlflow_tracking_uri"), config["experiment_name"], config.get("artifact_location"))
    return MlFlow(context)
