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
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManagerFactory, InitResourceContext, InputContext, OutputContext
from dagster_aws.s3 import S3Resource
from pydantic import Field
from upath import UPath

from claims_platform.adapters.dagster_internals import (
    is_partition_dict_type,
    safe_partition_path,
    upath_asset_path,
    upath_base_path,
)
from claims_platform.storage.locations import file_store_for, is_local, storage_root
from claims_platform.storage.partitioned import PartitionedUPathIOManager

REPORT_FILE = "report.html"  # the file a reader opens: a loaded input's report_path
SUMMARY_FILE = "summary.json"  # the report's summary, written last (a folder with a new summary is complete)
# Beside the partitions' folders: files that every partition's report refers to (``../_shared/<name>``),
# stored once per asset instead of once per partition. Not a partition key: partition keys are dates.
SHARED_FOLDER = "_shared"


class StoredReport(ABC):
    """What the report IO manager stores of one partition: the report's files, and its summary."""

    summary: Mapping[str, Any]

    @abstractmethod
    def files(self) -> Mapping[str, bytes]:
        """The report's files by name (``REPORT_FILE`` among them), written before the summary."""

    def shared_files(self) -> Mapping[str, Path]:
        """Files the report refers to as ``../SHARED_FOLDER/<name>``, by name -> the local file to copy.
        A name must change with its content: a file already stored under its name is not written again."""
        return {}


class ReportUPathIOManager(PartitionedUPathIOManager):
    """The IO manager built by :class:`ReportIOManager` (one per run)."""

    extension = ""
    value_type = StoredReport

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self._is_local = is_local(base_path)
        self.file_store = file_store_for(base_path)
        self._shared_stored: set[str] = set()  # shared files known to be stored (checked once a run)

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

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        reports = obj.values() if isinstance(obj, Mapping) else [obj]
        shared = {
            name: source
            for report in reports
            if isinstance(report, StoredReport)
            for name, source in report.shared_files().items()
        }
        if shared:  # before the reports that refer to them
            folder = upath_asset_path(self, context)
            self.store_shared(folder if context.has_asset_partitions else folder.parent, shared)
        super().handle_output(context, obj)

    def store_shared(self, asset_folder: UPath, shared: Mapping[str, Path]) -> None:
        """Each shared file not yet stored in ``asset_folder/SHARED_FOLDER``, staged and then moved in place
        (a reader never sees half a file; two runs writing one name write the same bytes)."""
        for name, source in sorted(shared.items()):
            path = asset_folder / SHARED_FOLDER / name
            if name in self._shared_stored or path.exists():
                self._shared_stored.add(name)
                continue
            self.make_directory(path.parent)
            staged = path.with_name(f".{name}.{uuid.uuid4().hex}.staging")
            self.file_store.write(staged, source.read_bytes())
            self.file_store.replace(staged, path)
            self.file_store.delete([staged])  # S3 copies; a local rename left nothing
            self._shared_stored.add(name)

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
