"""A real S3 API server on loopback for tests: moto in server mode, on a free port.

Nothing is mocked inside boto3 or s3fs: clients speak HTTP to ``127.0.0.1:<port>``, exactly as they
would to MinIO or AWS, so endpoint, credential and key handling are exercised for real.

Use from a ``conftest.py``::

    from claims_platform_tests.s3_server import s3_bucket, s3_endpoint  # noqa: F401

then request ``s3_endpoint`` (session) or ``s3_bucket`` (a fresh, empty bucket per test).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from dagster_aws.s3 import S3Resource

# Dummy credentials: the server accepts any, and setting them keeps boto3 from picking up a
# developer's real profile (and from ever signing a request for a real account).
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"
TEST_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    """Where the test S3 server listens, and the settings to reach it."""

    endpoint_url: str
    region_name: str = TEST_REGION
    aws_access_key_id: str = TEST_ACCESS_KEY_ID
    aws_secret_access_key: str = TEST_SECRET_ACCESS_KEY

    def resource(self) -> S3Resource:
        """A dagster-aws ``S3Resource`` pointed at this server."""
        return S3Resource(
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
        )

    def client(self) -> Any:
        """A boto3 S3 client for this server (for arranging and inspecting tests)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
        )


def list_keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every object key in ``bucket`` under ``prefix``, sorted (follows pagination)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on 127.0.0.1 with an OS-chosen free port, for the whole test session."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        env.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
        env.setenv("AWS_DEFAULT_REGION", TEST_REGION)
        # A session token, profile or endpoint from the developer's shell must not leak in.
        for name in (
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ):
            env.delenv(name, raising=False)

        # One INFO line per HTTP request would bury a failing test's own log output.
        request_log = logging.getLogger("werkzeug")
        previous_level = request_log.level
        request_log.setLevel(logging.WARNING)

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield S3Endpoint(endpoint_url=f"http://{host}:{port}")
        finally:
            server.stop()
            request_log.setLevel(previous_level)


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    """A new, empty bucket on the test server; its name is unique so tests never share state."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name
