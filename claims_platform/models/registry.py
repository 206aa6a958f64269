"""The MLflow model registry of the claims model, as a typed resource.

The registry holds versions, their tags and two aliases. The aliases `champion` and
`previous_champion` are a PROJECTION of the latest champion decision (the chain of
`champion_decision` partitions is the truth); nothing that scores reads them. Stages are
deprecated and never used.

Every model, version and run it names in Dagster metadata is a link to its MLflow UI page
(:mod:`claims_platform.core.links`): the configured ``ui_url``, else ``CLAIMS_MLFLOW_UI_URL``, else
the tracking server itself, else `make dev`'s http://127.0.0.1:5000.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from claims_platform.core import links
from claims_platform.core.services import names_outages

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
MODEL_DESCRIPTION = (
    "Calibrated probability that an insurance applicant makes a claim (LightGBM, tuned and calibrated), trained "
    "monthly by the claims_platform Dagster code location. Input: an application in the warehouse's column format; "
    "output: claim_probability. The alias `champion` points at the model in force (a projection of the latest "
    "champion decision); `previous_champion` at the one a rollback would restore."
)


class _OutageNamingClient:
    """An ``MlflowClient`` whose method calls run under :func:`~claims_platform.core.services.naming_outages`."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        return names_outages(attribute) if callable(attribute) else attribute


class ModelRegistry(dg.ConfigurableResource):
    """The MLflow model registry of the claims model: versions, aliases, audit tags, links."""

    tracking_uri: str = Field(
        description="MLflow tracking (and registry) URI; a secret in production (EnvVar)."
    )
    model_name: str = Field(default="claims_classifier", description="The one registered model.")
    ui_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the MLflow UI, for links in metadata. Unset: CLAIMS_MLFLOW_UI_URL, else the tracking "
            "server, else http://127.0.0.1:5000 (what `make dev` serves)."
        ),
    )

    def client(self):
        """An MLflow client bound to this registry (no global state); a call the server does not answer
        raises :class:`~claims_platform.core.services.ServiceUnavailableError` naming it."""
        from mlflow.tracking import MlflowClient

        return _OutageNamingClient(
            MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        )

    def ensure_registered_model(self) -> None:
        """Create the registered model with its description, or give it the description if it has none
        (a model first created by ``log_model(registered_model_name=...)`` has none). Two monthly runs
        training at once may both find it missing: the one that creates it second finds it there."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            model = client.get_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                client.create_registered_model(self.model_name, description=MODEL_DESCRIPTION)
                return
            except MlflowException as created_meanwhile:  # another run's training created it first
                if created_meanwhile.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            model = client.get_registered_model(self.model_name)
        if not model.description:
            client.update_registered_model(self.model_name, description=MODEL_DESCRIPTION)

    def has_version(self, version: int) -> bool:
        """Whether version ``version`` of the model is in the registry (not deleted since)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client().get_model_version(self.model_name, str(version))
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return False
            raise
        return True

    def describe_version(self, version: int, description: str) -> None:
        """Set a version's description (shown on its MLflow page)."""
        self.client().update_model_version(self.model_name, str(version), description=description)

    def alias_version(self, alias: str) -> int | None:
        """The version number ``alias`` points at, or None if it is not set (or no model exists)."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client().get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def project_aliases(self, champion: int | None, previous_champion: int | None) -> dict[str, int | None]:
        """Point `champion` and `previous_champion` at the given versions (None removes the alias).

        Idempotent: projecting the same decision twice changes nothing. Returns the aliases as set.
        """
        self.ensure_registered_model()
        client = self.client()
        wanted = {CHAMPION: champion, PREVIOUS_CHAMPION: previous_champion}
        for alias, version in wanted.items():
            current = self.alias_version(alias)
            if current == version:
                continue
            if version is None:
                client.delete_registered_model_alias(self.model_name, alias)
            else:
                client.set_registered_model_alias(self.model_name, alias, str(version))
        return wanted

    def version_tags(self, version: int) -> dict[str, str]:
        """The tags of a model version."""
        return dict(self.client().get_model_version(self.model_name, str(version)).tags)

    def tag_version(self, version: int, tags: dict[str, Any]) -> None:
        """Set tags on a version (values as text; dicts as JSON)."""
        client = self.client()
        for key, value in tags.items():
            text = (
                json.dumps(value, default=str, sort_keys=True)
                if isinstance(value, dict | list)
                else str(value)
            )
            client.set_model_version_tag(self.model_name, str(version), key, text)

    def run_metrics(self, version: int) -> dict[str, float]:
        """The metrics of the MLflow run that trained a version (e.g. ``holdout_kappa``)."""
        client = self.client()
        run_id = client.get_model_version(self.model_name, str(version)).run_id
        return dict(client.get_run(run_id).data.metrics) if run_id else {}

    def model_uri(self, version: int) -> str:
        """The registry URI of one version."""
        return f"models:/{self.model_name}/{version}"

    def artifact_uri(self, version: int) -> str:
        """Where a version's model files are stored (a folder or s3:// URI)."""
        return self.client().get_model_version_download_uri(self.model_name, str(version))

    def ui_base(self) -> str:
        """The MLflow UI's base URL: ``ui_url``, else ``CLAIMS_MLFLOW_UI_URL``, the tracking server, or `make dev`'s."""
        return (self.ui_url or links.mlflow_ui_url(self.tracking_uri)).rstrip("/")

    def model_url(self) -> str:
        """The registered model's page in the MLflow UI (versions, aliases, audit tags)."""
        return links.mlflow_model_url(self.ui_base(), self.model_name)

    def version_url(self, version: int) -> str:
        """A version's page in the MLflow UI."""
        return links.mlflow_model_version_url(self.ui_base(), self.model_name, version)

    def run_url(self, run_id: str, experiment_id: str | None = None) -> str:
        """An MLflow run's page (the experiment is looked up when not given)."""
        if experiment_id is None:
            experiment_id = self.client().get_run(run_id).info.experiment_id
        return links.mlflow_run_url(self.ui_base(), experiment_id, run_id)

    def experiment_url(self, experiment_id: str) -> str:
        """An MLflow experiment's page (its runs)."""
        return links.mlflow_experiment_url(self.ui_base(), experiment_id)

    def version_reference(self, version: int | None) -> dg.MetadataValue | str:
        """A version as Dagster metadata: a link to its MLflow page ("none" when there is no version)."""
        if version is None:
            return "none"
        return dg.MetadataValue.url(self.version_url(version))

    def run_reference(self, run_id: str, experiment_id: str | None = None) -> dg.MetadataValue:
        """An MLflow run as Dagster metadata: a link to its page."""
        return dg.MetadataValue.url(self.run_url(run_id, experiment_id))

    def experiment_reference(self, experiment_id: str) -> dg.MetadataValue:
        """An MLflow experiment as Dagster metadata: a link to its page."""
        return dg.MetadataValue.url(self.experiment_url(experiment_id))

    def record(self, event: str, audit: dict[str, Any]) -> None:
        """Append an audit record to the registered model's tags (one tag per event, timestamped)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.ensure_registered_model()
        self.client().set_registered_model_tag(
            self.model_name, f"audit.{stamp}.{event}", json.dumps(audit, default=str, sort_keys=True)
        )
