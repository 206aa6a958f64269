"""MLflow resources: dagster-mlflow's tracking resource, wrapped, and a typed model registry.

Why both (see docs/mlflow.md): dagster-mlflow's `mlflow_tracking` starts one MLflow run per Dagster
run and tags it with the Dagster run id — exactly what tracking needs — but it creates its experiment
with MLflow's default artifact location (a `mlruns/` folder in the working directory) and offers no
typed registry operations. `claims_mlflow_tracking` creates the experiment first, with the artifact
location we configure (local folder or S3), then hands over to dagster-mlflow unchanged.
`ModelRegistry` is a typed `ConfigurableResource` for aliases, version tags and loading models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"


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


@lru_cache(maxsize=32)
def load_scorer_cached(model_uri: str):
    """The model at ``model_uri`` ready to score (loaded once per process: versions are immutable)."""
    from claims_platform.training.model_core import load_scorer

    return load_scorer(model_uri)


class ModelRegistry(dg.ConfigurableResource):
    """The MLflow model registry of the claims model: versions, aliases, audit tags."""

    tracking_uri: str = Field(description="MLflow tracking (and registry) URI; a secret in production (EnvVar).")
    model_name: str = Field(default="claims_classifier", description="The one registered model.")
    ui_url: str | None = Field(default=None, description="Base URL of the MLflow UI, for links in metadata.")

    def client(self):
        """An MLflow client bound to this registry (no global state)."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def alias_version(self, alias: str) -> int | None:
        """The version number ``alias`` points at, or None if it is not set (or no model exists)."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client().get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def version_tags(self, version: int) -> dict[str, str]:
        """The tags of a model version."""
        return dict(self.client().get_model_version(self.model_name, str(version)).tags)

    def tag_version(self, version: int, tags: dict[str, Any]) -> None:
        """Set tags on a version (values as text; dicts as JSON)."""
        client = self.client()
        for key, value in tags.items():
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
            client.set_model_version_tag(self.model_name, str(version), key, text)

    def model_uri(self, version: int) -> str:
        """The registry URI of one version."""
        return f"models:/{self.model_name}/{version}"

    def artifact_uri(self, version: int) -> str:
        """Where a version's model files are stored (a folder or s3:// URI)."""
        return self.client().get_model_version_download_uri(self.model_name, str(version))

    def resolve_in_force(self, version: int) -> tuple[int, str]:
        """The version to score with instead of ``version``: itself, or its replacement after a rollback."""
        tags = self.version_tags(version)
        if tags.get("withdrawn") == "true":
            return int(tags["replaced_by"]), f"v{version} withdrawn by rollback, replaced by v{tags['replaced_by']}"
        return version, ""

    def predict(self, version: int, frame) -> np.ndarray:
        """Calibrated claim probabilities of one version for warehouse-format rows.

        Runs the registered model's own code (`model_core`, shipped inside the model) on its
        artifacts, without MLflow's per-value schema enforcement, which costs 3/4 of the time on a
        big batch: the frames scored here have already passed the data contract.
        """
        return load_scorer_cached(self.artifact_uri(version)).predict(frame)

    def version_url(self, version: int) -> str:
        """A link to the version in the MLflow UI, or its registry URI when no UI is configured."""
        if self.ui_url:
            return f"{self.ui_url.rstrip('/')}/#/models/{self.model_name}/versions/{version}"
        return self.model_uri(version)

    def promote(self, version: int, audit: dict[str, Any]) -> int | None:
        """Make ``version`` the champion; the old champion becomes ``previous_champion``. Returns it."""
        client = self.client()
        old = self.alias_version(CHAMPION)
        if old is not None and old != version:
            client.set_registered_model_alias(self.model_name, PREVIOUS_CHAMPION, str(old))
        client.set_registered_model_alias(self.model_name, CHAMPION, str(version))
        self.record(f"promoted_v{version}", audit)
        return old

    def rollback(self, audit: dict[str, Any]) -> tuple[int, int]:
        """Make ``previous_champion`` the champion again; returns (withdrawn, restored) versions.

        The withdrawn version is tagged so that anything resolving the model in force can see it,
        and ``previous_champion`` then points at it, so the rollback itself can be undone.
        """
        current, previous = self.alias_version(CHAMPION), self.alias_version(PREVIOUS_CHAMPION)
        if current is None or previous is None:
            raise RuntimeError(
                f"Cannot roll back {self.model_name}: champion={current}, previous_champion={previous}. "
                "A rollback needs both aliases set (at least two promotions)."
            )
        client = self.client()
        client.set_registered_model_alias(self.model_name, CHAMPION, str(previous))
        client.set_registered_model_alias(self.model_name, PREVIOUS_CHAMPION, str(current))
        self.tag_version(current, {"withdrawn": "true", "replaced_by": previous})
        self.tag_version(previous, {"withdrawn": "false"})
        self.record(f"rollback_v{current}_to_v{previous}", audit)
        return current, previous

    def record(self, event: str, audit: dict[str, Any]) -> None:
        """Append an audit record to the registered model's tags (one tag per event, timestamped)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.client().set_registered_model_tag(
            self.model_name, f"audit.{stamp}.{event}", json.dumps(audit, default=str, sort_keys=True)
        )
