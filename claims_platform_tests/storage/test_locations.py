"""Storage URL parsing and the S3Resource -> s3fs translation (pure functions)."""

import pytest
from dagster_aws.s3 import S3Resource
from upath import UPath

from claims_platform.storage import s3fs_storage_options, split_s3_url, storage_root, storage_url_is_s3


@pytest.mark.parametrize(
    ("url", "expected"),
    [("s3://bucket/prefix", True), ("S3://bucket", True), ("/srv/claims/storage", False), ("storage", False)],
)
def test_storage_url_is_s3(url: str, expected: bool):
    assert storage_url_is_s3(url) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://claims-data/platform/prod", ("claims-data", "platform/prod")),
        ("s3://claims-data/platform/", ("claims-data", "platform")),
        ("s3://claims-data", ("claims-data", "")),
        ("s3://claims-data/", ("claims-data", "")),
    ],
)
def test_split_s3_url(url: str, expected: tuple[str, str]):
    assert split_s3_url(url) == expected


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "/local/folder"])
def test_split_s3_url_rejects_non_bucket_urls(url: str):
    with pytest.raises(ValueError, match="bucket|Not an S3 URL"):
        split_s3_url(url)


def test_storage_options_forward_only_what_was_set():
    s3 = S3Resource(
        endpoint_url="http://127.0.0.1:9000",
        region_name="eu-west-2",
        profile_name="claims",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="example-secret",
        aws_session_token="example-token",
        max_attempts=3,
    )
    assert s3fs_storage_options(s3) == {
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-2"},
        "profile": "claims",
        "key": "AKIAEXAMPLE",
        "secret": "example-secret",
        "token": "example-token",
        "config_kwargs": {"retries": {"max_attempts": 3, "mode": "standard"}},
    }
    # Nothing configured: credentials and region come from the default AWS chain.
    assert s3fs_storage_options(S3Resource()) == {
        "config_kwargs": {"retries": {"max_attempts": 5, "mode": "standard"}},
    }
    assert s3fs_storage_options(None) == {}


def test_storage_root(tmp_path):
    s3_root = storage_root("s3://claims-data/platform/", S3Resource(endpoint_url="http://127.0.0.1:9000"))
    assert str(s3_root) == "s3://claims-data/platform"
    assert s3_root.storage_options["endpoint_url"] == "http://127.0.0.1:9000"
    assert storage_root(str(tmp_path / "storage")) == UPath(tmp_path / "storage")
    with pytest.raises(ValueError, match="Unsupported storage URL"):
        storage_root("gs://claims-data/platform")
    with pytest.raises(ValueError, match="base_path is empty"):
        storage_root(" ")
