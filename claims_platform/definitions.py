"""The one `Definitions` of the claims_platform code location: it only assembles the domains.

Resources are configured from environment variables, with embedded defaults under the git-ignored
`.local/` folder when nothing is set (see README's configuration table). Values that may hold a
secret (database URLs) are passed as `EnvVar` so the UI never shows them.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from claims_platform.assembly.alert_sensors import run_failure_alert_sensor
from claims_platform.assembly.config_validation import validate_config_at_launch
from claims_platform.assembly.monitoring_sensors import (
    drift_report_sensor,
    drift_reports_job,
    model_performance_job,
    model_performance_sensor,
    monitoring_alert_sensor,
)
from claims_platform.core import settings
from claims_platform.core.alerts import AlertsResource, alerts_from_env
from claims_platform.ingestion import assets as ingestion
from claims_platform.ingestion.jobs import ingestion_job
from claims_platform.models import assets as models
from claims_platform.models import candidate
from claims_platform.models.jobs import model_in_force_automation
from claims_platform.models.registry import ModelRegistry
from claims_platform.models.rollback import rollback_champion
from claims_platform.models.tracking import claims_mlflow_tracking
from claims_platform.monitoring import drift_assets, performance_assets
from claims_platform.monitoring.workspace import EvidentlyWorkspace, default_workspace_path
from claims_platform.scoring import assets as scoring
from claims_platform.scoring.jobs import (
    late_applications_sensor,
    nightly_scoring_job,
    nightly_scoring_schedule,
)
from claims_platform.source.resources import WarehouseSource
from claims_platform.storage import ObjectIOManager, PartitionedParquetIOManager
from claims_platform.storage.report_io_manager import ReportIOManager
from claims_platform.training import assets as training
from claims_platform.training.jobs import monthly_training_job, monthly_training_schedule


def _env_or_default(name: str, default: str) -> str | dg.EnvVar:
    # EnvVar keeps the value out of the UI and run config; the default is never a secret.
    return dg.EnvVar(name) if os.environ.get(name) else default


def build_resources(
    *,
    warehouse_url: str | dg.EnvVar,
    storage_url: str,
    tracking_uri: str | dg.EnvVar,
    artifact_location: str | None,
    s3: S3Resource | None = None,
    mlflow_ui_url: str | None = None,
    alerts: AlertsResource | None = None,
    evidently_workspace: str | None = None,
) -> dict[str, object]:
    """Every resource the code location needs, from explicit settings (tests build theirs here)."""
    s3 = s3 or S3Resource()
    uri_config = {"env": tracking_uri.env_var_name} if isinstance(tracking_uri, dg.EnvVar) else tracking_uri
    return {
        "mlflow": claims_mlflow_tracking.configured(
            {
                "experiment_name": settings.MLFLOW_EXPERIMENT,
                "mlflow_tracking_uri": uri_config,
                "artifact_location": artifact_location,
            }
        ),
        "registry": ModelRegistry(
            tracking_uri=tracking_uri, model_name=settings.REGISTERED_MODEL_NAME, ui_url=mlflow_ui_url
        ),
        "source": WarehouseSource(url=warehouse_url),
        "io_manager": PartitionedParquetIOManager(base_path=storage_url, s3=s3),
        "object_io_manager": ObjectIOManager(base_path=storage_url, s3=s3),
        "report_io_manager": ReportIOManager(base_path=storage_url, s3=s3),
        "s3": s3,
        # Log-only unless a webhook is configured (CLAIMS_ALERT_WEBHOOK_URL).
        "alerts": alerts or AlertsResource(),
        "evidently": EvidentlyWorkspace(path=evidently_workspace or str(default_workspace_path())),
    }


def resources_from_env() -> dict[str, object]:
    """Resources for the current environment: local defaults, or PostgreSQL/S3/MLflow server when set."""
    settings.configure_service_clients()
    return build_resources(
        warehouse_url=_env_or_default(settings.ENV_WAREHOUSE_URL, settings.default_warehouse_url()),
        storage_url=settings.default_storage_url(),
        tracking_uri=_env_or_default(
            settings.ENV_MLFLOW_TRACKING_URI, settings.default_mlflow_tracking_uri()
        ),
        artifact_location=settings.default_mlflow_artifact_location(),
        s3=S3Resource(
            endpoint_url=os.environ.get(settings.ENV_S3_ENDPOINT_URL) or None,
            max_attempts=settings.S3_MAX_ATTEMPTS,
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        ),
        mlflow_ui_url=os.environ.get(settings.ENV_MLFLOW_UI_URL) or None,
        alerts=alerts_from_env(),
    )


def build_definitions(resources: dict[str, object]) -> dg.Definitions:
    """The code location with the given resources (the module's `defs` uses the environment's)."""
    assets = dg.load_assets_from_modules(
        [ingestion, training, candidate, models, scoring, drift_assets, performance_assets]
    )
    # Bounds and cross-field rules of every asset's run config are checked when a run is planned.
    validate_config_at_launch(assets)
    return dg.Definitions(
        assets=assets,
        jobs=[
            ingestion_job,
            monthly_training_job,
            nightly_scoring_job,
            rollback_champion,
            drift_reports_job,
            model_performance_job,
        ],
        schedules=[monthly_training_schedule, nightly_scoring_schedule],
        sensors=[
            late_applications_sensor,
            model_in_force_automation,
            run_failure_alert_sensor,
            drift_report_sensor,
            model_performance_sensor,
            monitoring_alert_sensor,
        ],
        resources=resources,
        # The steps of a run are sequential and light; one process per run (not one per step)
        # spares every step the ~3 s it takes a new process to import the code location.
        executor=dg.in_process_executor,
    )


defs = build_definitions(resources_from_env())
