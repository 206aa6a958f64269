"""Everything that is not a DataFrame (reports, dicts, small objects), pickled, on disk or S3.

This reuses the maintained serializers rather than re-implementing them: dagster-aws's
``PickledObjectS3IOManager`` (what ``S3PickleIOManager`` builds) in S3 mode, dagster's
``PickledObjectFilesystemIOManager`` (what ``FilesystemIOManager`` builds) locally, so the object
keys and file format are exactly theirs. Both are extended with
:class:`~claims_platform.storage.partitioned.PartitionedUPathIOManager` because the stock ones refuse
an output spanning several partitions, which a single-run backfill produces.

Layout: ``<base_path>/<asset key path>/<partition key>`` (no extension) for a partitioned asset,
``<base_path>/<asset key path>`` otherwise.

Because a stored value may itself be a dict, the partition-dict conventions are stricter than for
DataFrames: an input annotated ``dict[str, X]`` (or ``Mapping[str, X]``) always receives
``{partition_key: value}``; a bare ``dict`` annotation receives the value of a single partition.
A one-partition output is unwrapped only when it is a mapping whose only key is that partition key.
"""

from __future__ import annotations

from typing import Any, get_args

from dagster import ConfigurableIOManagerFactory, InitResourceContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster._core.storage.upath_io_manager import is_dict_type
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from pydantic import Field
from upath import UPath

from claims_platform.storage.locations import split_s3_url, storage_root, storage_url_is_s3
from claims_platform.storage.partitioned import PartitionedUPathIOManager


class _PartitionedPickleIOManager(PartitionedUPathIOManager):
    def wants_partition_dict(self, typing_type: Any) -> bool:
        # A pickled value may itself be a dict, so a bare ``dict`` annotation means "the value";
        # only ``dict[str, X]`` / ``Mapping[str, X]`` asks for partitions keyed by partition key.
        return is_dict_type(typing_type) and get_args(typing_type)[:1] == (str,)


class LocalPickleIOManager(_PartitionedPickleIOManager, PickledObjectFilesystemIOManager):
    """``FilesystemIOManager``'s pickles, plus multi-partition outputs and concurrent loads."""


class S3PickleObjectIOManager(_PartitionedPickleIOManager, PickledObjectS3IOManager):
    """``S3PickleIOManager``'s pickles, plus multi-partition outputs and concurrent loads."""

    def display_path(self, path: UPath) -> str:
        # The inherited paths are bare object keys; show where they really are.
        return self._uri_for_path(path)

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        # The inherited "uri" entry would repeat the path this manager already reports.
        return {}

    def _handle_transition_to_partitioned_asset(self, context: OutputContext, path: UPath) -> None:
        # The inherited check would look for a LOCAL file named like the key. On S3 an object
        # "asset" and objects "asset/<partition>" coexist, so there is nothing to move aside.
        return None


class ObjectIOManager(ConfigurableIOManagerFactory):
    """Pickles non-DataFrame outputs under a local folder or an ``s3://bucket/prefix`` URL.

    Takes the same ``base_path`` and ``s3`` as :class:`PartitionedParquetIOManager`, so one
    setting moves both. Example::

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
            return S3PickleObjectIOManager(s3_bucket=bucket, s3_session=client, s3_prefix=prefix or None)
        return LocalPickleIOManager(base_dir=str(storage_root(self.base_path)))
