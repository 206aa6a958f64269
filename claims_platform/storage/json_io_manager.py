"""Everything that is not a DataFrame (model summaries, decisions and their audit), as JSON files.

Decision records are audit records: JSON rather than pickle so that any tool, and a person, can
read what the platform decided, as with the Parquet files. Values are written as UTF-8 JSON with
``indent=2, sort_keys=True`` (a stable text that diffs cleanly).

Layout: ``<base_path>/<asset key path>/<partition key>.json`` for a partitioned asset,
``<base_path>/<asset key path>.json`` otherwise (e.g. ``s3://bucket/prefix/champion_model/2025-03-01.json``).

What can be stored: dicts with ``str`` keys, lists, ``str``, ``int``, finite ``float``, ``bool`` and
``None``; also, converted on the way in, numpy scalars (``np.integer``, ``np.floating``, ``np.bool_``),
``datetime`` / ``date`` (ISO 8601 strings), tuples (lists) and subclasses of str/int/float such as
``StrEnum`` members. They come back as plain ``int`` / ``float`` / ``bool`` / ``str`` / ``list``.
Anything else — a DataFrame, an arbitrary object, a set, a non-``str`` dict key, NaN or infinity —
is refused with a ``TypeError`` naming the asset, the partition and where in the value it sits, and
nothing stored changes: values are encoded while they are staged, before anything is committed
(the all-or-nothing protocol of ``partitioned.py``).

This reuses the maintained IO managers rather than re-implementing them: dagster's
``PickledObjectFilesystemIOManager`` (what ``FilesystemIOManager`` builds) locally and dagster-aws's
``PickledObjectS3IOManager`` (what ``S3PickleIOManager`` builds) on S3, for their paths and object
keys, with the serialization, the extension and the writing replaced. Both are extended with
:class:`~claims_platform.storage.partitioned.PartitionedUPathIOManager` because the stock ones refuse
an output spanning several partitions, which a single-run backfill produces, and write each object
in place rather than all-or-nothing.

Because a stored value may itself be a dict, the partition-dict conventions are stricter than for
DataFrames: an input annotated ``dict[str, X]`` (or ``Mapping[str, X]``) always receives
``{partition_key: value}``; a bare ``dict`` annotation receives the value of a single partition.
A one-partition output is unwrapped only when it is a mapping whose only key is that partition key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from typing import Any, get_args

import numpy as np
from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
)
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from pydantic import Field
from upath import UPath

from claims_platform.adapters.dagster_internals import (
    PickledObjectFilesystemIOManager,
    is_partition_dict_type,
    upath_output_path,
    upath_uri,
)
from claims_platform.storage.locations import (
    LocalFiles,
    boto3_objects,
    split_s3_url,
    storage_root,
    storage_url_is_s3,
)
from claims_platform.storage.partitioned import PartitionedUPathIOManager

JSON_EXTENSION = ".json"
JSON_CONTENT_TYPE = "application/json"


def value_to_json_bytes(value: Any, where: str = "") -> bytes:
    """``value`` as UTF-8 JSON text (``indent=2``, sorted keys, final newline).

    Converts numpy scalars, dates and tuples as the module docstring says; anything else raises
    ``TypeError`` starting with ``where`` (e.g. ``"champion_model 2025-03-01"``) and saying where in
    the value the offending part is, e.g. ``value at ['comparison']['low'] is float('nan')``.
    """
    plain = _to_json_value(value, where, "", set())
    text = json.dumps(plain, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def json_bytes_to_value(data: bytes) -> Any:
    """The value stored by :func:`value_to_json_bytes` (with plain Python types)."""
    return json.loads(data.decode("utf-8"))


def _to_json_value(value: Any, where: str, path: str, containers: set[int]) -> Any:
    # bool before int (bool is an int); np.float64 is a float, np.int64 and np.bool_ are not.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise _refused(
                where, path, f"float({str(number)!r})", "JSON has no NaN or infinity; store None instead"
            )
        return number
    if isinstance(value, date):  # datetime is a date
        if value != value:  # pandas.NaT is a datetime that is not equal to itself
            raise _refused(where, path, "NaT", "store None for a missing time")
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        if id(value) in containers:
            raise _refused(
                where, path, "a reference to a container that contains it", "JSON cannot nest cycles"
            )
        containers.add(id(value))
        try:
            if isinstance(value, Mapping):
                converted = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise _refused(
                            where,
                            path,
                            f"a dict with {_a(_type_name(key))} key {key!r}",
                            "JSON object keys are strings; use str keys",
                        )
                    converted[str(key)] = _to_json_value(item, where, f"{path}[{str(key)!r}]", containers)
                return converted
            return [_to_json_value(item, where, f"{path}[{i}]", containers) for i, item in enumerate(value)]
        finally:
            containers.discard(id(value))
    raise _refused(
        where,
        path,
        _a(_type_name(value)),
        "only dicts with str keys, lists, str, numbers, bools and None can be stored as JSON",
    )


def _refused(where: str, path: str, what: str, hint: str) -> TypeError:
    location = f"value at {path}" if path else "the value"
    prefix = f"{where}: " if where else ""
    return TypeError(f"{prefix}{location} is {what} ({hint}).")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _output_name(context: OutputContext) -> str:
    """How an output is named in error messages: its asset key, else its step and output name."""
    if context.has_asset_key:
        return context.asset_key.to_user_string()
    return f"{context.step_key}.{context.name}"


class _PartitionedJSONIOManager(PartitionedUPathIOManager):
    extension = JSON_EXTENSION

    def wants_partition_dict(self, typing_type: Any) -> bool:
        # A stored value may itself be a dict, so a bare ``dict`` annotation means "the value";
        # only ``dict[str, X]`` / ``Mapping[str, X]`` asks for partitions keyed by partition key.
        return is_partition_dict_type(typing_type) and get_args(typing_type)[:1] == (str,)

    def files_to_write(
        self, context: OutputContext, obj: Any, path: UPath, partition_key: str | None
    ) -> list[tuple[UPath, bytes]]:
        name = _output_name(context)
        where = f"{name} {partition_key}" if partition_key is not None else name
        return [(path, value_to_json_bytes(obj, where))]

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        # Unpartitioned outputs only. Replaces UPathIOManager's "path", which on S3 would be a bare
        # object key (and dagster-aws's extra "uri", which would repeat it).
        return {"path": MetadataValue.path(self.display_path(upath_output_path(self, context)))}

    def _decode(self, data: bytes, path: UPath) -> Any:
        try:
            return json_bytes_to_value(data)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"{self.display_path(path)} is not valid UTF-8 JSON: {error}") from error


class LocalJSONIOManager(_PartitionedJSONIOManager, PickledObjectFilesystemIOManager):
    """``FilesystemIOManager``'s layout with JSON files, plus multi-partition outputs and concurrent loads."""

    file_store = LocalFiles()

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        return self._decode(path.read_bytes(), path)


class S3JSONIOManager(_PartitionedJSONIOManager, PickledObjectS3IOManager):
    """``S3PickleIOManager``'s object keys with JSON objects, plus multi-partition outputs and concurrent loads."""

    def __init__(self, s3_bucket: str, s3_session: Any, s3_prefix: str | None = None):
        super().__init__(s3_bucket=s3_bucket, s3_session=s3_session, s3_prefix=s3_prefix)
        # The content type lets browsers and tools show the objects as JSON; copies keep it.
        self.file_store = boto3_objects(self.s3, self.bucket, ContentType=JSON_CONTENT_TYPE)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        try:
            data = self.s3.get_object(Bucket=self.bucket, Key=path.as_posix())["Body"].read()
        except self.s3.exceptions.NoSuchKey as error:
            raise FileNotFoundError(f"No object {upath_uri(self, path)}") from error
        return self._decode(data, path)

    def display_path(self, path: UPath) -> str:
        # The inherited paths are bare object keys; show where they really are.
        return upath_uri(self, path)


class ObjectIOManager(ConfigurableIOManagerFactory):
    """Stores non-DataFrame outputs as JSON under a local folder or an ``s3://bucket/prefix`` URL.

    Takes the same ``base_path`` and ``s3`` as :class:`PartitionedParquetIOManager`, so one
    setting moves both. Values must be JSON-like (see the module docstring). Example::

        ObjectIOManager(base_path="s3://claims-data/platform", s3=S3Resource())
        ObjectIOManager(base_path="/srv/claims/storage")
    """

    base_path: str = Field(description="A local folder, or s3://bucket/prefix.")
    s3: S3Resource | None = Field(
        default=None,
        description=(
            "S3 connection settings used when base_path is s3://; unset settings (and an unset"
            " resource) come from the default AWS chain."
        ),
    )

    def create_io_manager(self, context: InitResourceContext) -> PartitionedUPathIOManager:
        if storage_url_is_s3(self.base_path):
            bucket, prefix = split_s3_url(self.base_path)
            client = (self.s3 or S3Resource()).get_client()
            return S3JSONIOManager(s3_bucket=bucket, s3_session=client, s3_prefix=prefix or None)
        return LocalJSONIOManager(base_dir=str(storage_root(self.base_path)))
