"""Outages are named and bounded: real clients against a closed loopback port, the settings they run with."""

from __future__ import annotations

import time
from datetime import date

import boto3
import dagster as dg
import pytest
from botocore.config import Config

from claims_platform.core import settings
from claims_platform.core.services import (
    S3,
    SERVICE_RETRY_POLICY,
    WAREHOUSE,
    ServiceUnavailableError,
    classify,
    names_outages,
    naming_outages,
)
from claims_platform_tests.environment import unset
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
    from claims_platform.source.resources import WarehouseSource

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


def test_the_s3_endpoint_setting_reaches_mlflow_and_boto3(monkeypatch):
    unset(monkeypatch, "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", *settings.BOUNDED_CLIENT_ENVIRONMENT)
    monkeypatch.setenv(settings.ENV_S3_ENDPOINT_URL, "http://127.0.0.1:9000")
    settings.configure_service_clients()
    import os

    assert (
        os.environ["MLFLOW_S3_ENDPOINT_URL"] == os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"
    )
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"


def _outage() -> Exception:
    from botocore.exceptions import EndpointConnectionError

    return EndpointConnectionError(endpoint_url="http://127.0.0.1:9/claims")


def _attempts_of(result: dg.ExecuteInProcessResult) -> int:
    return 1 + sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")


def _step_failure(result: dg.ExecuteInProcessResult) -> str:
    """The step failure's message and its causes' (what the UI shows), one per line."""
    error = next(event for event in result.all_events if event.is_step_failure).step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def test_a_step_retries_an_outage_with_back_off_and_then_succeeds(monkeypatch):
    monkeypatch.setattr(
        "claims_platform.core.services.SERVICE_RETRY_POLICY", dg.RetryPolicy(max_retries=2, delay=0.1)
    )
    calls = []

    @dg.asset
    @names_outages
    def flaky(context) -> int:
        calls.append(context.retry_number)
        if len(calls) < 3:
            raise _outage()
        return 1

    result = dg.materialize([flaky], raise_on_error=False)
    assert result.success and calls == [0, 1, 2] and _attempts_of(result) == 3


def test_a_step_fails_on_a_lasting_outage_with_its_message_after_the_last_attempt(monkeypatch):
    monkeypatch.setattr(
        "claims_platform.core.services.SERVICE_RETRY_POLICY", dg.RetryPolicy(max_retries=2, delay=0.1)
    )

    @dg.asset
    @names_outages
    def down(context) -> int:
        raise _outage()

    result = dg.materialize([down], raise_on_error=False)
    assert not result.success and _attempts_of(result) == 3
    assert "S3 at " in _step_failure(result) and "did not answer" in _step_failure(result)


def test_a_step_does_not_retry_what_is_not_an_outage():
    @dg.asset
    @names_outages
    def refused(context) -> int:
        raise ValueError("outcomes of 2025-05 are not all known yet")

    result = dg.materialize([refused], raise_on_error=False)
    assert not result.success and _attempts_of(result) == 1
    assert "outcomes of 2025-05 are not all known yet" in _step_failure(result)
