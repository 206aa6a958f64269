"""Where stored assets live: a local folder or an ``s3://bucket/prefix`` URL — parsed here once.

Both IO managers take the same ``base_path`` string, so one setting (``CLAIMS_STORAGE_URL``)
moves all of the platform's storage between the local disk and S3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource
    from upath import UPath

S3_SCHEME = "s3://"


def storage_url_is_s3(url: str) -> bool:
    """True when ``url`` names an S3 location (``s3://bucket[/prefix]``), False for a local folder."""
    return url.strip().lower().startswith(S3_SCHEME)


def split_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix/`` into ``("bucket", "some/prefix")``.

    The prefix has no leading or trailing slash and is ``""`` when the URL names the bucket only.
    Raises ``ValueError`` for a URL that is not ``s3://`` or has no bucket.
    """
    stripped = url.strip()
    if not storage_url_is_s3(stripped):
        raise ValueError(f"Not an S3 URL (expected s3://bucket/prefix): {url!r}")
    bucket, _, prefix = stripped[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URL has no bucket name: {url!r}")
    return bucket, prefix.strip("/")


def s3fs_storage_options(s3: S3Resource | None) -> dict[str, Any]:
    """Translate a dagster-aws ``S3Resource``'s connection settings into s3fs storage options.

    Only settings that were actually given are passed on, so anything left unset falls through to
    the default AWS chain (environment, profile, instance role) exactly as boto3 would resolve it.
    """
    if s3 is None:
        return {}
    options: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    if s3.endpoint_url:
        options["endpoint_url"] = s3.endpoint_url
    if s3.region_name:
        client_kwargs["region_name"] = s3.region_name
    if s3.verify is not None:
        client_kwargs["verify"] = s3.verify
    if s3.aws_access_key_id:
        options["key"] = s3.aws_access_key_id
    if s3.aws_secret_access_key:
        options["secret"] = s3.aws_secret_access_key
    if s3.aws_session_token:
        options["token"] = s3.aws_session_token
    if s3.profile_name:
        options["profile"] = s3.profile_name
    if s3.use_unsigned_session:
        options["anon"] = True
    if not s3.use_ssl:
        options["use_ssl"] = False
    # Same retry budget as the boto3 client that S3Resource.get_client() builds.
    options["config_kwargs"] = {"retries": {"max_attempts": s3.max_attempts, "mode": "standard"}}
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def storage_root(base_path: str, s3: S3Resource | None = None) -> UPath:
    """The ``UPath`` for ``base_path``: a local folder, or an S3 prefix reached with ``s3``'s settings."""
    from upath import UPath

    if not base_path or not base_path.strip():
        raise ValueError("base_path is empty: give a local folder or an s3://bucket/prefix URL")
    if storage_url_is_s3(base_path):
        bucket, prefix = split_s3_url(base_path)
        url = f"{S3_SCHEME}{bucket}/{prefix}" if prefix else f"{S3_SCHEME}{bucket}"
        return UPath(url, **s3fs_storage_options(s3))
    if "://" in base_path:
        # Anything else with a scheme would silently become a local folder named "gs:" etc.
        raise ValueError(f"Unsupported storage URL {base_path!r}: use a local folder or s3://bucket/prefix")
    return UPath(base_path).expanduser().absolute()


def write_bytes_atomically(path: UPath, data: bytes) -> None:
    """Write a LOCAL file so a crash never leaves a truncated one a later run would read: write, then rename."""
    import os
    import uuid

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
