"""Where stored assets live: a local folder or an ``s3://bucket/prefix`` URL — parsed here once.

Both IO managers take the same ``base_path`` string, so one setting (``CLAIMS_STORAGE_URL``)
moves all of the platform's storage between the local disk and S3.

Also here: the four file operations the all-or-nothing write protocol (``partitioned.py``) needs,
as a :class:`FileStore` for the local disk and one for S3 (reached through boto3 or s3fs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

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


def is_local(root: UPath) -> bool:
    """Whether ``root`` (a ``storage_root``) is on the local disk rather than S3."""
    return root.protocol in ("", "file", "local")


# S3 deletes at most this many keys per DeleteObjects request.
_MAX_KEYS_PER_DELETE = 1000


class FileStore(Protocol):
    """The file operations an all-or-nothing write needs; every path names one file or S3 object."""

    def write(self, path: UPath, data: bytes) -> None:
        """Store ``data`` at ``path`` (creating folders as needed), replacing what is there."""

    def keep_aside(self, path: UPath, backup: UPath) -> bool:
        """Make ``backup`` hold ``path``'s current content, leaving ``path`` as it is.

        Returns False, doing nothing, when there is no file at ``path``.
        """

    def replace(self, source: UPath, path: UPath) -> None:
        """Make ``path`` hold ``source``'s content in one step: a reader sees all old or all new."""

    def delete(self, paths: Sequence[UPath]) -> None:
        """Remove these files; one that is not there is not an error."""


class LocalFiles:
    """A :class:`FileStore` on the local disk: renames are atomic, and a hard link keeps old content aside.

    The hard link (not a rename) means the final path always holds a whole file, old or new, even
    for a reader that looks in the middle of a commit.
    """

    def write(self, path: UPath, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def keep_aside(self, path: UPath, backup: UPath) -> bool:
        try:
            os.link(path, backup)
        except FileNotFoundError:
            return False
        return True

    def replace(self, source: UPath, path: UPath) -> None:
        os.replace(source, path)

    def delete(self, paths: Sequence[UPath]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)


# ``call(operation, **params)``: one S3 API call by its boto3 name, raising FileNotFoundError for a missing key.
S3Call = Callable[..., dict[str, Any]]


class S3Objects:
    """A :class:`FileStore` on one S3 bucket: a PUT and a server-side copy are each atomic per object.

    Works through ``call`` so the same code serves boto3 clients and s3fs (see :func:`boto3_objects`
    and :func:`file_store_for`). ``put_params`` are added to every PUT (e.g. ``ContentType``); a
    copy keeps the source's content type.
    """

    def __init__(
        self,
        call: S3Call,
        bucket: str,
        key_of: Callable[[UPath], str],
        put_params: dict[str, Any] | None = None,
    ):
        self._call = call
        self._bucket = bucket
        self._key_of = key_of
        self._put_params = put_params or {}

    def write(self, path: UPath, data: bytes) -> None:
        self._call("put_object", Bucket=self._bucket, Key=self._key_of(path), Body=data, **self._put_params)

    def keep_aside(self, path: UPath, backup: UPath) -> bool:
        # Trying the copy costs one request; asking first whether the object exists would cost two.
        try:
            self._copy(path, backup)
        except FileNotFoundError:
            return False
        return True

    def replace(self, source: UPath, path: UPath) -> None:
        self._copy(source, path)

    def delete(self, paths: Sequence[UPath]) -> None:
        keys = [self._key_of(path) for path in paths]
        for start in range(0, len(keys), _MAX_KEYS_PER_DELETE):
            batch = keys[start : start + _MAX_KEYS_PER_DELETE]
            response = self._call(
                "delete_objects",
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            # DeleteObjects answers 200 even when some keys could not be deleted.
            errors = response.get("Errors") or []
            if errors:
                raise OSError(
                    f"Could not delete {len(errors)} object(s) in s3://{self._bucket}, e.g."
                    f" {errors[0].get('Key')}: {errors[0].get('Message') or errors[0].get('Code')}"
                )

    def _copy(self, source: UPath, path: UPath) -> None:
        self._call(
            "copy_object",
            Bucket=self._bucket,
            Key=self._key_of(path),
            CopySource={"Bucket": self._bucket, "Key": self._key_of(source)},
        )


def boto3_objects(client: Any, bucket: str, **put_params: Any) -> S3Objects:
    """An :class:`S3Objects` using a boto3 client, where paths are bare object keys (as in dagster-aws)."""
    from botocore.exceptions import ClientError

    def call(operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(client, operation)(**params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"No object s3://{bucket}/{params.get('Key')}") from error
            raise

    return S3Objects(call, bucket, lambda path: path.as_posix(), put_params)


def file_store_for(root: UPath) -> FileStore:
    """The :class:`FileStore` for paths under ``root`` (a ``storage_root``): local files or s3fs."""
    if is_local(root):
        return LocalFiles()
    fs = root.fs
    bucket = fs.split_path(root.path)[0]
    # s3fs already turns a missing key into FileNotFoundError, and retries as configured.
    return S3Objects(fs.call_s3, bucket, lambda path: fs.split_path(path.path)[1])
