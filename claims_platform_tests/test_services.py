"""Outages are named and bounded: real clients against a closed loopback port, the settings they run with."""

from __future__ import annotations

import time
from datetime import date

import boto3
import dagster as dg
import pytest
from botocore.config import Config

from claims_platform import settings
from claims_platform.services import (
    S3,
    SERVICE_RETRY_POLICY,
    WAREHOUSE,
    ServiceUnavailableError,
    classify,
    names_outages,
    naming_outages,
)
from claims_platform_tests.models.loopback import free_port


def test_an_s3_endpoint_that_does_not_answer_is_named_with_its_address(monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(settings.ENV_S3_ENDPOINT_URL, endpoint)
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    with pytest.raises(ServiceUnavailableError) as raised, naming_outages():
        client.list_objects_v2(Bucket="claims")
    assert raised.value.service == S3
    assert str(raised.value).startswith(f"S3 at {endpoint} did not answer: ")


def test_a_warehouse_that_does_not_answer_is_named_without_its_password(monkeypatch):
    from claims_platform.resources import WarehouseSource

    url = f"postgresql+psycopg2://claims:s3cr3t-canary@127.0.0.1:{free_port()}/warehouse"
    monkeypatch.setenv(settings.ENV_WAREHOUSE_URL, url)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as raised:
        WarehouseSource(url=url).read_applications(date(2025, 1, 1), date(2025, 1, 1))
    assert raised.value.service == WAREHOUSE
    assert "the warehouse at postgresql+psycopg2://claims:***@127.0.0.1" in str(raised.value)
    assert "s3cr3t-canary" not in str(raised.value)
    assert time.monotonic() - started < settings.WAREHOUSE_CONNECT_TIMEOUT_SECONDS + 5


def test_other_errors_pass_through_unchanged():
    with pytest.raises(KeyError), naming_outages():
        raise KeyError("not an outage")
    assert classify(ValueError("bad input")) is None


def test_generator_bodies_stay_generators_and_name_outages():
    @names_outages
    def body():
        yield 1
        raise ConnectionError("boom")  # not a service client's error: passes through

    produced = body()
    assert next(produced) == 1
    with pytest.raises(ConnectionError):
        next(produced)


def test_retry_policy_is_bounded_well_under_a_minute():
    # Two retries after 2 s and 4 s (jitter at most doubles a wait): at most 12 s of waiting.
    assert SERVICE_RETRY_POLICY.max_retries == 2
    assert SERVICE_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
    assert SERVICE_RETRY_POLICY.delay * (1 + 2) * 2 <= 12


def test_nightly_scoring_time(monkeypatch):
    assert settings.nightly_scoring_time() == (7, 0)
    monkeypatch.setenv(settings.ENV_NIGHTLY_SCORING_TIME, "23:05")
    assert settings.nightly_scoring_time() == (23, 5)
    for bad in ("7", "24:00", "07:60", "7:5", "noon"):
        monkeypatch.setenv(settings.ENV_NIGHTLY_SCORING_TIME, bad)
        with pytest.raises(ValueError, match="CLAIMS_NIGHTLY_SCORING_TIME must be a time of day"):
            settings.nightly_scoring_time()


def test_artifact_location_defaults_to_the_servers_root_with_a_tracking_server(monkeypatch, tmp_path):
    monkeypatch.delenv(settings.ENV_MLFLOW_ARTIFACT_LOCATION, raising=False)
    monkeypatch.setenv(settings.ENV_HOME, str(tmp_path))
    monkeypatch.setenv(settings.ENV_MLFLOW_TRACKING_URI, "http://mlflow:5000")
    assert settings.default_mlflow_artifact_location() is None
    monkeypatch.setenv(settings.ENV_MLFLOW_TRACKING_URI, f"sqlite:///{tmp_path}/mlflow.db")
    assert settings.default_mlflow_artifact_location() == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv(settings.ENV_MLFLOW_ARTIFACT_LOCATION, "s3://bucket/mlflow")
    assert settings.default_mlflow_artifact_location() == "s3://bucket/mlflow"


def unset(monkeypatch, *names: str) -> None:
    """Unset ``names`` for this test only (whatever a call sets them to is removed afterwards too)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_the_s3_endpoint_setting_reaches_mlflow_and_boto3(monkeypatch):
    unset(monkeypatch, "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", *settings.BOUNDED_CLIENT_ENVIRONMENT)
    monkeypatch.setenv(settings.ENV_S3_ENDPOINT_URL, "http://127.0.0.1:9000")
    settings.configure_service_clients()
    import os

    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
