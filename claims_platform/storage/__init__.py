"""Where the platform's assets are stored: Parquet for DataFrames, pickles for other objects.

Both IO managers take one ``base_path`` — a local folder or ``s3://bucket/prefix`` — and an
optional dagster-aws ``S3Resource`` for the S3 connection, and both store and load many partitions
in one step, as single-run backfills need.
"""

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
from claims_platform.storage.pickle_io_manager import (
    LocalPickleIOManager,
    ObjectIOManager,
    S3PickleObjectIOManager,
)

__all__ = [
    "LocalPickleIOManager",
    "MissingPartitionError",
    "ObjectIOManager",
    "ParquetUPathIOManager",
    "PartitionKeysMismatchError",
    "PartitionedParquetIOManager",
    "PartitionedUPathIOManager",
    "S3PickleObjectIOManager",
    "StoredAssetNotFoundError",
    "dataframe_to_parquet_bytes",
    "parquet_bytes_to_dataframe",
    "s3fs_storage_options",
    "split_s3_url",
    "storage_root",
    "storage_url_is_s3",
]
