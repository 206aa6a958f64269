"""pandas DataFrames stored as Parquet, one file per partition, on a local folder or S3.

Parquet rather than pickle so that DuckDB, Athena or plain pandas can read what the platform writes.

Layout: ``<base_path>/<asset key path>/<partition key>.parquet`` for a partitioned asset,
``<base_path>/<asset key path>.parquet`` otherwise (e.g. ``s3://bucket/claims/applications/2025-01-01.parquet``).

Dtypes round-trip through pyarrow's pandas metadata: numbers, bool, pandas nullable types (``Int64``,
``boolean``, ``string``), ``category`` (all categories and their order), timezone-aware timestamps,
and columns of ``datetime.date`` (stored as Parquet ``date32``, read back as ``datetime.date``
objects). An empty DataFrame (a day without applications) keeps its columns and dtypes: an empty
``object`` column has no values to give it a Parquet type, so it is stored as ``null`` and read back
as ``object``; Parquet writes no dictionary for an empty categorical column, so its string or
numeric categories are kept in the file's key-value metadata (``claims_platform:categories``)
and restored on read. The index is stored only when it carries meaning, i.e. when it is named (such as
``application_id``); a default or leftover positional index is dropped, as with ``index=False``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
    TableSchema,
)
from dagster_aws.s3 import S3Resource
from pydantic import Field
from upath import UPath

from claims_platform.adapters.dagster_internals import safe_partition_path
from claims_platform.core.table_schemas import declared_descriptions, table_schema
from claims_platform.storage.locations import file_store_for, is_local, storage_root
from claims_platform.storage.partitioned import PartitionedUPathIOManager

PARQUET_EXTENSION = ".parquet"
COLUMN_SCHEMA_KEY = "dagster/column_schema"


# Schema metadata key holding the categories of an EMPTY frame's categorical columns.
CATEGORIES_METADATA_KEY = b"claims_platform:categories"
# Category values that survive JSON unchanged (dates would come back as strings).
_JSON_CATEGORY_TYPES = {"string", "integer", "floating", "boolean", "empty"}


def dataframe_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialize ``df`` to Parquet, keeping the index only when it is named (see module docstring)."""
    keep_index = any(name is not None for name in df.index.names)
    table = pa.Table.from_pandas(df, preserve_index=keep_index)
    if df.empty:
        categories = {
            str(name): {"categories": dtype.categories.tolist(), "ordered": bool(dtype.ordered)}
            for name, dtype in df.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype)
            and dtype.categories.inferred_type in _JSON_CATEGORY_TYPES
        }
        if categories:
            metadata = {**(table.schema.metadata or {}), CATEGORIES_METADATA_KEY: json.dumps(categories)}
            table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def parquet_bytes_to_dataframe(data: bytes) -> pd.DataFrame:
    """Deserialize Parquet bytes written by :func:`dataframe_to_parquet_bytes`."""
    table = pq.read_table(pa.BufferReader(data))
    df = table.to_pandas()
    stored_categories = (table.schema.metadata or {}).get(CATEGORIES_METADATA_KEY)
    if stored_categories:
        for name, spec in json.loads(stored_categories).items():
            df[name] = df[name].astype(pd.CategoricalDtype(spec["categories"], ordered=spec["ordered"]))
    return df


def _column_schema(context: OutputContext, df: pd.DataFrame) -> TableSchema:
    """``df``'s columns, dtypes and descriptions: those the asset declares in its definition's
    ``dagster/column_schema``, then the platform's (``claims_platform.core.table_schemas.column_descriptions``)."""
    declared = (context.definition_metadata or {}).get(COLUMN_SCHEMA_KEY)
    return table_schema(df, declared_descriptions(declared) if declared is not None else None)


class ParquetUPathIOManager(PartitionedUPathIOManager):
    """The IO manager built by :class:`PartitionedParquetIOManager` (one per run)."""

    extension = PARQUET_EXTENSION
    value_type = pd.DataFrame

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self._is_local = is_local(base_path)
        self.file_store = file_store_for(base_path)

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        # A partition key must name a file under the asset's folder, never ``..`` above it.
        return safe_partition_path(base_path, partition)

    def make_directory(self, path: UPath) -> None:
        # S3 has no directories, and s3fs.mkdir would try to CREATE the bucket if it is missing;
        # a missing bucket must fail loudly on write instead.
        if self._is_local:
            path.mkdir(parents=True, exist_ok=True)

    def files_to_write(
        self, context: OutputContext, obj: pd.DataFrame, path: UPath, partition_key: str | None
    ) -> list[tuple[UPath, bytes]]:
        return [(path, dataframe_to_parquet_bytes(obj))]

    def load_from_path(self, context: InputContext, path: UPath) -> pd.DataFrame:
        if self._is_local:
            return parquet_bytes_to_dataframe(path.read_bytes())
        # One GET per file. s3fs would first HEAD the object to decide on ranged parallel reads;
        # a partition is small and partitions are already loaded in parallel, so skip that.
        options = {"max_concurrency": 1} if context.has_asset_partitions else {}
        return parquet_bytes_to_dataframe(path.fs.cat_file(path.path, **options))

    def get_metadata(self, context: OutputContext, obj: pd.DataFrame) -> dict[str, Any]:
        # Unpartitioned output (UPathIOManager.handle_output calls this one).
        return {"dagster/row_count": len(obj), COLUMN_SCHEMA_KEY: _column_schema(context, obj)}

    def get_partition_metadata(
        self, context: OutputContext, partition_key: str, value: pd.DataFrame
    ) -> dict[str, Any]:
        # Each partition's own rows and columns, on its own materialization (a day of a year's backfill too).
        return {"dagster/row_count": len(value), COLUMN_SCHEMA_KEY: _column_schema(context, value)}

    def get_run_metadata(
        self, context: OutputContext, values_by_partition: Mapping[str, pd.DataFrame]
    ) -> dict[str, Any]:
        # Copied onto every partition of the range, so named as the run's: never a day's dagster/row_count.
        return {"run_row_count": MetadataValue.int(sum(len(df) for df in values_by_partition.values()))}


class PartitionedParquetIOManager(ConfigurableIOManagerFactory):
    """Stores pandas DataFrames as Parquet under a local folder or an ``s3://bucket/prefix`` URL.

    Partitioned assets get one file per partition; an asset that materializes several partitions in
    one run (single-run backfill) returns ``Mapping[partition_key, DataFrame]``. Inputs annotated
    ``dict[str, pd.DataFrame]`` always receive a dict keyed by partition key.

    Example::

        s3 = S3Resource(endpoint_url=EnvVar("CLAIMS_S3_ENDPOINT_URL"))
        Definitions(
            assets=[...],
            resources={
                "io_manager": PartitionedParquetIOManager(base_path="s3://claims-data/platform", s3=s3),
                # or, locally: PartitionedParquetIOManager(base_path="/srv/claims/storage")
            },
        )
    """

    base_path: str = Field(
        description="A local folder, or s3://bucket/prefix. Assets are stored under it by asset key path."
    )
    s3: S3Resource | None = Field(
        default=None,
        description=(
            "S3 connection settings (endpoint_url for an S3-compatible server, region, profile,"
            " credentials) used when base_path is s3://. Unset settings come from the default"
            " AWS chain."
        ),
    )

    def create_io_manager(self, context: InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(storage_root(self.base_path, self.s3))
