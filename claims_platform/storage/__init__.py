"""Where the platform's assets are stored: Parquet for DataFrames, JSON for everything else.

Both are open formats, so any tool can read what the platform wrote, and a person can read its
decision records; nothing is pickled. Both IO managers take one ``base_path`` — a local folder or
``s3://bucket/prefix`` — and an optional dagster-aws ``S3Resource`` for the S3 connection, and both
store and load many partitions in one step, as single-run backfills need. Every write is
all-or-nothing: staged beside the stored files, then committed, or rolled back to the old files
(see ``partitioned.py``).
"""

from claims_platform.storage.json_io_manager import (
    JSON_EXTENSION,
    LocalJSONIOManager,
    ObjectIOManager,
    S3JSONIOManager,
    json_bytes_to_value,
    value_to_json_bytes,
)
from claims_platform.storage.locations import (
    s3fs_storage_options,
    split_s3_url,
    storage_root,
    storage_url_is_s3,
)
from claims_platform.storage.parquet_io_manager import (
    ParquetUPathIOManager,
    PartitionedParquetIOManager,
    dataframe_to_parquet_bytes,
    parquet_bytes_to_dataframe,
)
from claims_platform.storage.partitioned import (
    MissingPartitionError,
    PartitionedUPathIOManager,
    PartitionKeysMismatchError,
    StoredAssetNotFoundError,
)

__all__ = [
    "JSON_EXTENSION",
    "LocalJSONIOManager",
    "MissingPartitionError",
    "ObjectIOManager",
    "ParquetUPathIOManager",
    "PartitionKeysMismatchError",
    "PartitionedParquetIOManager",
    "PartitionedUPathIOManager",
    "S3JSONIOManager",
    "StoredAssetNotFoundError",
    "dataframe_to_parquet_bytes",
    "json_bytes_to_value",
    "parquet_bytes_to_dataframe",
    "s3fs_storage_options",
    "split_s3_url",
    "storage_root",
    "storage_url_is_s3",
    "value_to_json_bytes",
]
