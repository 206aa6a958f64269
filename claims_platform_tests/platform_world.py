"""A whole platform on temporary embedded storage: warehouse, Parquet store, MLflow, Dagster instance.

Used by the end-to-end tests (layer 3): it simulates months, runs the real jobs through Dagster and
lets a test inspect every layer. Training runs with a small tuning budget to keep the suite fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from claims_platform.core.alerts import AlertsResource
from claims_platform.definitions import build_definitions, build_resources
from claims_platform.source.simulate import simulate_range
from claims_platform.source.warehouse import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SMALL_BUDGET = {"n_trials": 2, "warm_start_trials": 2, "tuning_rows": 20_000, "max_boost_rounds": 150}
# Promote whenever the candidate is not worse beyond noise: lets a test build a lineage quickly.
EAGER_PROMOTION = {"margin": -10_000.0}  # value per application: the fresher model unless far worse


@dataclass
class PlatformWorld:
    """One platform under ``home`` with its own warehouse, storage, MLflow and Dagster instance."""

    home: Path
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    webhook_url: str | None = None

    def __post_init__(self) -> None:
        self.warehouse = Warehouse(f"sqlite:///{self.home / 'warehouse.db'}")
        self.tracking_uri = f"sqlite:///{self.home / 'mlflow.db'}"
        self.resources = build_resources(
            warehouse_url=self.warehouse.url,
            storage_url=str(self.home / "storage"),
            tracking_uri=self.tracking_uri,
            artifact_location=(self.home / "mlartifacts").as_uri(),
            alerts=AlertsResource(webhook_url=self.webhook_url, retries=0),
            evidently_workspace=str(self.home / "evidently"),
        )
        self.defs = build_definitions(self.resources)

    @property
    def registry(self):
        return self.resources["registry"]

    def simulate(self, first: date, last: date, **kwargs) -> int:
        return simulate_range(self.warehouse, first, last, **kwargs)

    def run_range(self, job_name: str, first: str, last: str, run_config: dict | None = None, **kwargs):
        """Run a partitioned job over a range as ONE run (single-run backfill)."""
        job = self.defs.resolve_job_def(job_name)
        tags = {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}
        return job.execute_in_process(
            instance=self.instance, tags=tags, run_config={**QUIET, **(run_config or {})}, **kwargs
        )

    def train(self, month: str, promote: bool = True, decision: dict | None = None, **kwargs):
        """The monthly training job for one month, with the small test budget."""
        config = {
            **QUIET,
            "ops": {
                "candidate_model": {"config": SMALL_BUDGET},
                "champion_decision": {"config": {"promote": promote, **(decision or {})}},
            },
        }
        job = self.defs.resolve_job_def("monthly_training")
        return job.execute_in_process(
            instance=self.instance, partition_key=month, run_config=config, **kwargs
        )

    def decide(self, month: str, job: str = "monthly_training", **config):
        """Only the champion decision for ``month`` (re-decide it, or roll it back with ``job="rollback_champion"``)."""
        run_config = {**QUIET, "ops": {"champion_decision": {"config": config}}}
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance,
            partition_key=month,
            run_config=run_config,
            asset_selection=[dg.AssetKey("champion_decision")],
            raise_on_error=False,
        )

    def materialize_in_force(self, first_month: str, last_month: str, **kwargs):
        """`model_in_force` for a range of months, as one run."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        tags = {PARTITION_RANGE_START_TAG: first_month, PARTITION_RANGE_END_TAG: last_month}
        return job.execute_in_process(
            instance=self.instance,
            asset_selection=[dg.AssetKey("model_in_force")],
            tags=tags,
            run_config=QUIET,
            **kwargs,
        )
