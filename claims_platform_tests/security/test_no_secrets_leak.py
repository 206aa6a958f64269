"""Canary secrets never leak: the platform runs in process, configured the production way, with secrets
that are unique random canaries, and nothing it records or prints may contain one.

The secrets: the PostgreSQL warehouse URL's password (trust auth on loopback accepts any), the S3
secret key (moto accepts any), the alert webhook's token (a loopback webhook), each set in the
environment and picked up by `resources_from_env()`, exactly as a deployment does (EnvVar for the
warehouse URL, the tracking URI and the webhook; boto3's own credential chain for the S3 key).
MLflow tracks to a local SQLite file. Ingestion of 2025-01..03 and March's monthly training (a model
trained, tracked, registered and made first champion, with its alert) run on it.

Then every place a secret could end up is read back: every event log entry of every run (metadata
included), run configs and tags, the repository snapshot the UI is served, every file under the
Dagster instance's folder (its SQLite storages and compute logs), every file the platform wrote
locally (MLflow's database and artifacts, Evidently), every object in the S3 bucket, MLflow's
runs, params, tags and registered versions, the webhook's received bodies, the captured
stdout/stderr, and the CLI's output when it reports on a warehouse (success and error paths).
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._serdes import serialize_value

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from claims_platform.cli import main as cli
from claims_platform.core import schema, settings
from claims_platform.core.alerts import ENV_ALERT_WEBHOOK_URL
from claims_platform.definitions import build_definitions, resources_from_env
from claims_platform.source.csv_import import write_export
from claims_platform.source.generator import World, simulate_days
from claims_platform.source.warehouse import Warehouse
from claims_platform_tests.platform_world import SMALL_BUDGET
from claims_platform_tests.postgres import drop_all_tables
from claims_platform_tests.s3_server import TEST_ACCESS_KEY_ID, S3Endpoint, list_keys, s3_bucket, s3_endpoint  # noqa: F401
from claims_platform_tests.webhook import serve_webhook

pytestmark = pytest.mark.integration

FIRST, LAST = date(2025, 1, 1), date(2025, 3, 31)
# Everything at DEBUG on the console: the more the run says, the more a leak would show.
VERBOSE = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


class Canaries(dict):
    """name -> a unique random secret; ``found_in(text)`` names the canaries that occur in ``text``."""

    def found_in(self, data: str | bytes) -> list[str]:
        if isinstance(data, bytes):
            return [name for name, value in self.items() if value.encode() in data]
        return [name for name, value in self.items() if value in data]


@pytest.fixture
def canaries() -> Canaries:
    return Canaries(
        postgres_password="CanaryPg" + secrets.token_hex(10),
        s3_secret_key="CanaryS3" + secrets.token_hex(16),
        webhook_token="CanaryHook" + secrets.token_hex(10),
    )


@pytest.fixture
def canary_warehouse_url(postgres_url: str, canaries: Canaries) -> Iterator[str]:
    """The session's PostgreSQL database (emptied before and after), its URL carrying the canary password."""
    drop_all_tables(postgres_url)
    url = sa.engine.make_url(postgres_url).set(password=canaries["postgres_password"])
    yield url.render_as_string(hide_password=False)
    drop_all_tables(postgres_url)


@pytest.fixture
def webhook(canaries: Canaries):
    with serve_webhook() as hook:
        # The loopback server answers any path: put the canary token where Slack's token is.
        hook.url = hook.url.rsplit("/", 1)[0] + "/" + canaries["webhook_token"]
        yield hook


def _files_with_canaries(folder: Path, canaries: Canaries) -> dict[str, list[str]]:
    leaks = {}
    for file in sorted(folder.rglob("*")):
        if file.is_file() and (found := canaries.found_in(file.read_bytes())):
            leaks[str(file.relative_to(folder))] = found
    return leaks


def _mlflow_texts(tracking_uri: str) -> list[str]:
    """Every MLflow run's params, tags, metric names and info; every registered model and version."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    texts = []
    experiments = client.search_experiments(view_type=ViewType.ALL)
    texts += [repr((e.name, e.artifact_location, e.tags)) for e in experiments]
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    assert runs, "no MLflow run was recorded: the canaries were not exercised"
    for run in runs:
        texts.append(repr((run.info, run.data.params, run.data.tags, sorted(run.data.metrics))))
    for model in client.search_registered_models():
        texts.append(repr((model.name, model.description, model.tags, model.aliases)))
        texts += [repr(v) for v in client.search_model_versions(f"name='{model.name}'")]
    return texts


def test_no_canary_secret_leaks_from_a_production_configured_run(
    tmp_path: Path,
    canaries: Canaries,
    canary_warehouse_url: str,
    s3_endpoint: S3Endpoint,  # noqa: F811
    s3_bucket: str,  # noqa: F811
    webhook,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    home.mkdir()
    dagster_home.mkdir()
    for name, value in {
        settings.ENV_HOME: str(home),
        settings.ENV_WAREHOUSE_URL: canary_warehouse_url,
        settings.ENV_STORAGE_URL: f"s3://{s3_bucket}/claims",
        "CLAIMS_S3_ENDPOINT_URL": s3_endpoint.endpoint_url,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": canaries["s3_secret_key"],
        "AWS_DEFAULT_REGION": s3_endpoint.region_name,
        settings.ENV_MLFLOW_TRACKING_URI: tracking_uri,
        settings.ENV_MLFLOW_ARTIFACT_LOCATION: (home / "mlartifacts").as_uri(),
        ENV_ALERT_WEBHOOK_URL: webhook.url,
        "MLFLOW_LOGGING_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)

    # A quarter of the world's rows, in one transaction: enough to train March, quick to write and ingest.
    applications, outcomes = simulate_days(World.from_seed(settings.DEFAULT_WORLD_SEED), FIRST, LAST)
    applications = applications.iloc[::4]
    outcomes = outcomes[outcomes[schema.APPLICATION_ID].isin(applications[schema.APPLICATION_ID])]
    warehouse = Warehouse(canary_warehouse_url)
    try:
        warehouse.create_tables()
        warehouse.write_batch("A", applications, outcomes)
    finally:
        warehouse.dispose()

    resources = resources_from_env()  # the production path: EnvVar wherever the code uses it
    defs = build_definitions(resources)
    instance = dg.DagsterInstance.local_temp(tempdir=str(dagster_home))
    try:
        ingestion = defs.resolve_job_def("daily_ingestion").execute_in_process(
            instance=instance,
            tags={PARTITION_RANGE_START_TAG: str(FIRST), PARTITION_RANGE_END_TAG: str(LAST)},
            run_config=VERBOSE,
        )
        assert ingestion.success
        training = defs.resolve_job_def("monthly_training")
        config = {**VERBOSE, "ops": {"candidate_model": {"config": SMALL_BUDGET}}}
        march = training.execute_in_process(instance=instance, partition_key="2025-03-01", run_config=config)
        assert march.success
        assert march.output_for_node("champion_decision")["outcome"] == "first champion"
        # The secrets were really in use: the webhook got the alerts, S3 (signed with the key) holds the assets.
        assert webhook.received, webhook.titles()
        keys = list_keys(s3_endpoint.client(), s3_bucket)
        assert any(key.startswith("claims/applications/") for key in keys), keys[:10]

        leaks: dict[str, list[str]] = {}

        def check(where: str, data: str | bytes) -> None:
            if found := canaries.found_in(data):
                leaks[where] = found

        runs = instance.get_runs()
        assert len(runs) == 2
        for run in runs:
            check(f"run {run.run_id[:8]} ({run.job_name}): config", repr(run.run_config))
            check(f"run {run.run_id[:8]} ({run.job_name}): tags", repr(run.tags))
            check(f"run {run.run_id[:8]} ({run.job_name}): serialized run", serialize_value(run))
            for entry in instance.all_logs(run.run_id):
                check(
                    f"run {run.run_id[:8]} ({run.job_name}): event {entry.dagster_event_type or 'log'}",
                    serialize_value(entry),
                )
        for result in (ingestion, march):
            for event in result.get_asset_materialization_events():
                check(
                    f"materialization {event.asset_key.to_user_string()}: metadata",
                    repr(event.materialization.metadata),
                )
        repository = defs.get_repository_def()
        from dagster._core.remote_representation.external_data import RepositorySnap

        check("repository snapshot served to the UI", serialize_value(RepositorySnap.from_def(repository)))
        for name, file_leaks in _files_with_canaries(dagster_home, canaries).items():
            leaks[f"Dagster instance file {name}"] = file_leaks
        for name, file_leaks in _files_with_canaries(home, canaries).items():
            leaks[f"local state file {name}"] = file_leaks
        client = s3_endpoint.client()
        for key in keys:
            check(f"S3 object {key}", client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
        for text in _mlflow_texts(tracking_uri):
            check("MLflow run, param, tag or model version", text)
        check("webhook bodies received", repr(webhook.received))
        out, err = capfd.readouterr()
        assert "Champion decision" in out + err  # the console logger really was captured
        check("captured stdout", out)
        check("captured stderr", err)
        assert not leaks, "canary secrets leaked:\n" + "\n".join(
            f"  {where}: {names}" for where, names in leaks.items()
        )
    finally:
        instance.dispose()


def test_no_canary_secret_in_the_cli_output(
    tmp_path: Path,
    canaries: Canaries,
    canary_warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
):
    applications, outcomes = simulate_days(World.from_seed(3), FIRST, FIRST + timedelta(days=1))
    export = tmp_path / "export.csv"
    write_export(applications.head(800), outcomes.head(800), export)
    unreachable = sa.engine.make_url(canary_warehouse_url).set(port=1).render_as_string(hide_password=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the next commands then print their exports too
    base = ["import-csv", str(export), "--no-plan-check", "--days", "2"]

    outputs: dict[str, str] = {}
    # The URL given as an option and in the environment; a dry run, a real import, and a failing one.
    assert cli.main([*base, "--warehouse-url", canary_warehouse_url, "--dry-run"]) == 0
    outputs["import-csv --dry-run"] = "".join(capfd.readouterr())
    assert cli.main([*base, "--warehouse-url", canary_warehouse_url]) == 0
    outputs["import-csv"] = "".join(capfd.readouterr())
    assert "***" in outputs["import-csv"]  # the URL is shown, its password hidden
    monkeypatch.setenv(settings.ENV_WAREHOUSE_URL, canary_warehouse_url)
    assert cli.main([*base, "--batch", "again"]) == 0
    outputs["import-csv, URL from the environment"] = "".join(capfd.readouterr())
    assert cli.main([*base, "--warehouse-url", unreachable]) == 2
    outputs["import-csv, warehouse unreachable"] = "".join(capfd.readouterr())
    assert "error" in outputs["import-csv, warehouse unreachable"]
    simulate = ["simulate", "--start", "2025-01-01", "--end", "2025-01-01", "--warehouse-url", unreachable]
    try:
        status = cli.main(simulate)
    except Exception:  # simulate lets a database error through: its traceback is what a user sees
        outputs["simulate, warehouse unreachable (traceback)"] = traceback.format_exc()
    else:
        assert status != 0
    outputs["simulate, warehouse unreachable"] = "".join(capfd.readouterr())

    leaks = {command: found for command, text in outputs.items() if (found := canaries.found_in(text))}
    assert not leaks, f"canary secrets in the CLI's output: {leaks}"
