"""Reports as files: a folder per partition with a report's files and its summary.

A report is bytes and a summary to this module (:class:`StoredReport`: what made them is the
business of the layer that makes them). The drift and performance reports are laid out so
(local folder or S3, the same ``base_path`` as the other IO managers)::

    <base_path>/<asset key path>/<partition key>/report.html     the report a reader opens (REPORT_FILE)
    <base_path>/<asset key path>/<partition key>/snapshot.json   any other file of the report (Evidently's snapshot)
    <base_path>/<asset key path>/<partition key>/summary.json    the report's summary (SUMMARY_FILE), written last

e.g. ``s3://claims-data/platform/applications_drift_report/2026-03-04/report.html``. Loading an
input returns the summary (a dict), with ``report_path`` set to where ``REPORT_FILE`` is.

A folder is written as one unit by the all-or-nothing protocol of ``partitioned.py``: its three files
are staged beside their final names, then committed summary last (a folder with a new summary is
complete); if any file of any partition fails, every folder gets its old files back.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableIOManagerFactory, InitResourceContext, InputContext, OutputContext
from dagster_aws.s3 import S3Resource
from pydantic import Field
from upath import UPath

from claims_platform.adapters.dagster_internals import (
    is_partition_dict_type,
    safe_partition_path,
    upath_base_path,
)
from claims_platform.storage.locations import file_store_for, is_local, storage_root
from claims_platform.storage.partitioned import PartitionedUPathIOManager

REPORT_FILE = "report.html"  # the file a reader opens: a loaded input's report_path
SUMMARY_FILE = "summary.json"  # the report's summary, written last (a folder with a new summary is complete)


class StoredReport(ABC):
    """What the report IO manager stores of one partition: the report's files, and its summary."""

    summary: Mapping[str, Any]

    @abstractmethod
    def files(self) -> Mapping[str, bytes]:
        """The report's files by name (``REPORT_FILE`` among them), written before the summary."""


class ReportUPathIOManager(PartitionedUPathIOManager):
    """The IO manager built by :class:`ReportIOManager` (one per run)."""

    extension = ""
    value_type = StoredReport

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self._is_local = is_local(base_path)
        self.file_store = file_store_for(base_path)

    def wants_partition_dict(self, typing_type: Any) -> bool:
        return is_partition_dict_type(typing_type)

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        return safe_partition_path(base_path, partition)

    def make_directory(self, path: UPath) -> None:
        if self._is_local:  # S3 has no directories (and s3fs.mkdir would try to create the bucket)
            path.mkdir(parents=True, exist_ok=True)

    def location(self, asset_path: list[str], partition: str, file: str = REPORT_FILE) -> str:
        """Where a partition's file is (or will be) stored: a local path or an s3:// URL."""
        path = upath_base_path(self).joinpath(*asset_path)
        return str(self.make_safe_partition_path(path, partition) / file)

    def files_to_write(
        self, context: OutputContext, obj: StoredReport, path: UPath, partition_key: str | None
    ) -> list[tuple[UPath, bytes]]:
        summary = json.dumps(obj.summary, indent=2, sort_keys=True, default=str).encode("utf-8")
        files = [(path / name, data) for name, data in obj.files().items() if name != SUMMARY_FILE]
        return [*files, (path / SUMMARY_FILE, summary)]  # last: a folder with a summary is complete

    def load_from_path(self, context: InputContext, path: UPath) -> dict[str, Any]:
        summary_path = path / SUMMARY_FILE
        data = summary_path.read_bytes() if self._is_local else path.fs.cat_file(summary_path.path)
        return {**json.loads(data.decode("utf-8")), "report_path": str(path / REPORT_FILE)}

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        return {}


class ReportIOManager(ConfigurableIOManagerFactory):
    """Stores reports (their files and a summary) under a local folder or an ``s3://bucket/prefix`` URL.

    Takes the same ``base_path`` and ``s3`` as the Parquet and JSON IO managers, so one setting moves all.
    """

    base_path: str = Field(description="A local folder, or s3://bucket/prefix.")
    s3: S3Resource | None = Field(
        default=None, description="S3 connection settings used when base_path is s3://."
    )

    def create_io_manager(self, context: InitResourceContext) -> ReportUPathIOManager:
        return ReportUPathIOManager(storage_root(self.base_path, self.s3))
