"""Fixtures for the storage tests: every test body runs once on a local folder, once on S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from dagster_aws.s3 import S3Resource

from claims_platform.storage import ObjectIOManager, PartitionedParquetIOManager
from claims_platform_tests.s3_server import S3Endpoint, list_keys, s3_bucket, s3_endpoint  # noqa: F401

# Where the S3 backend stores things inside its bucket; a prefix, so key joining is exercised.
S3_PREFIX = "claims/platform"


@dataclass
class StorageBackend:
    """One place to store assets, and a way to look at exactly what was written there."""

    name: str
    base_path: str
    s3: S3Resource | None
    stored_files: Callable[[], list[str]]  # paths relative to base_path, sorted, "/"-separated
    read_bytes: Callable[[str], bytes]  # by a path relative to base_path
    open_binary: Callable[[str], IO[bytes]]  # a stream of a stored file, as another tool would open it

    def parquet_io_manager(self) -> PartitionedParquetIOManager:
        return PartitionedParquetIOManager(base_path=self.base_path, s3=self.s3)

    def object_io_manager(self) -> ObjectIOManager:
        return ObjectIOManager(base_path=self.base_path, s3=self.s3)

    def full_path(self, relative: str) -> str:
        """The path as the IO managers report it in metadata."""
        return f"{self.base_path}/{relative}"

    def read_json(self, relative: str) -> Any:
        """A stored file parsed by the standard json module straight from its stream, as any tool would."""
        with closing(self.open_binary(relative)) as stream:
            return json.load(stream)


def _local_backend(tmp_path: Path) -> StorageBackend:
    base = tmp_path / "storage"

    def stored_files() -> list[str]:
        if not base.exists():
            return []
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    return StorageBackend(
        name="local",
        base_path=str(base),
        s3=None,
        stored_files=stored_files,
        read_bytes=lambda relative: (base / relative).read_bytes(),
        open_binary=lambda relative: (base / relative).open("rb"),
    )


def _s3_backend(endpoint: S3Endpoint, bucket: str) -> StorageBackend:
    client = endpoint.client()

    def open_binary(relative: str) -> IO[bytes]:
        return client.get_object(Bucket=bucket, Key=f"{S3_PREFIX}/{relative}")["Body"]

    def stored_files() -> list[str]:
        keys = list_keys(client, bucket)
        # Nothing may land outside the configured prefix.
        outside = [key for key in keys if not key.startswith(f"{S3_PREFIX}/")]
        assert not outside, f"objects written outside {S3_PREFIX}/: {outside}"
        return [key[len(S3_PREFIX) + 1 :] for key in keys]

    return StorageBackend(
        name="s3",
        base_path=f"s3://{bucket}/{S3_PREFIX}",
        s3=endpoint.resource(),
        stored_files=stored_files,
        read_bytes=lambda relative: open_binary(relative).read(),
        open_binary=open_binary,
    )


# The S3 variant talks to a real S3 API server on loopback, hence the project's integration marker.
@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    """The same test on a local folder and on the loopback S3 server."""
    if request.param == "local":
        return _local_backend(tmp_path)
    return _s3_backend(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket"))
