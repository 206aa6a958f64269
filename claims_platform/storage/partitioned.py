"""A ``UPathIOManager`` that stores and loads MANY partitions in one step.

Dagster's ``UPathIOManager.handle_output`` refuses an output that spans several partitions, but
every daily asset here runs a year-long backfill as ONE run (``BackfillPolicy.single_run()``).
This base class keeps UPath's layout (``<base>/<asset key path>/<partition key><extension>``) and
adds:

- outputs spanning several partitions: the asset returns ``Mapping[partition_key, value]`` covering
  exactly the run's partition keys, and each value is written to its own file;
- concurrent loading and writing (a year is 365 files; on S3 each one is a round trip);
- a dict of partitions whenever the input is annotated as a dict, even for one partition, so an
  asset that handles a range can always iterate;
- errors that say which asset and partition are missing and what to materialize first;
- all-or-nothing writes, for one partition, many, or an unpartitioned output: every file is first
  staged next to its final path, then all are committed, each old file kept aside until the whole
  output is in place. A failure at any step restores every old file and re-raises, so storage
  matches what Dagster records (no materialization for any of the output's partitions).

Subclasses say which files store a value (``files_to_write``) and where (``file_store``); the
protocol is the same for every format and for the local disk and S3.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dagster import DagsterInvariantViolationError, InputContext, MetadataValue, OutputContext, UPathIOManager

from claims_platform.adapters.dagster_internals import (
    is_partition_dict_type,
    upath_asset_path,
    upath_backcompat_paths,
    upath_clear_unpartitioned,
    upath_output_path,
    upath_partition_paths,
)
from claims_platform.core.services import names_outages

if TYPE_CHECKING:
    from upath import UPath

    from claims_platform.storage.locations import FileStore

T = TypeVar("T")
R = TypeVar("R")

# Partition keys listed in an error message before it says "and N more".
_MAX_KEYS_IN_MESSAGE = 10
_MISSING = object()


def _format_keys(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_IN_MESSAGE])
    more = len(keys) - _MAX_KEYS_IN_MESSAGE
    return f"{shown} and {more} more" if more > 0 else shown


class StoredAssetNotFoundError(FileNotFoundError):
    """A stored asset (or partition of one) that an input needs has never been written.

    Subclasses ``FileNotFoundError`` so code that already handles missing files keeps working.
    """


class MissingPartitionError(StoredAssetNotFoundError):
    """One or more upstream partitions needed by an input are not in storage."""

    def __init__(self, asset_key: str, missing: Mapping[str, str], requested: int):
        self.asset_key = asset_key
        self.missing_partition_keys = list(missing)
        self.paths = dict(missing)
        keys = self.missing_partition_keys
        first_path = missing[keys[0]]
        if len(keys) == 1:
            what = f"Partition {keys[0]} of asset '{asset_key}' has not been materialized (no file at {first_path})."
            todo = f"Materialize '{asset_key}' for partition {keys[0]} first"
        else:
            what = (
                f"{len(keys)} of the {requested} requested partitions of asset '{asset_key}' have not"
                f" been materialized: {_format_keys(keys)} (e.g. no file at {first_path})."
            )
            todo = f"Materialize '{asset_key}' for partitions {keys[0]} to {keys[-1]} first (one backfill)"
        super().__init__(
            f"{what} {todo}, or set metadata allow_missing_partitions=True on this input to skip"
            " missing partitions."
        )


class PartitionKeysMismatchError(ValueError):
    """A multi-partition output's mapping does not cover exactly the run's partition keys."""


def _sibling(path: UPath, write_id: str, role: str) -> UPath:
    """A hidden file next to ``path`` for one write: never at a partition path, and a ``*.parquet``
    (or ``*.json``) glob by another tool skips it."""
    return path.with_name(f".{path.name}.{write_id}.{role}")


@dataclass
class FileWrite:
    """One file of a write: where its new content is staged and where its old content is kept aside."""

    path: UPath
    staged: UPath
    backup: UPath
    # Set once the commit has kept the old content aside: whether there was any. None: not committed.
    had_old: bool | None = None


@dataclass
class PartitionWrite:
    """What one output writes for one partition (``partition_key`` None for an unpartitioned output)."""

    path: UPath
    partition_key: str | None
    write_id: str
    # Recorded BEFORE each file is staged, so whatever a failure leaves behind can be found.
    files: list[FileWrite] = field(default_factory=list)
    # Set when its old content could not be restored: its backups are then kept, never deleted.
    keep_backups: bool = False

    def add_file(self, path: UPath) -> FileWrite:
        file = FileWrite(
            path,
            staged=_sibling(path, self.write_id, "staging"),
            backup=_sibling(path, self.write_id, "backup"),
        )
        self.files.append(file)
        return file


class PartitionedUPathIOManager(UPathIOManager):
    """UPath IO manager base that writes outputs spanning several partitions and loads concurrently.

    Subclasses implement ``load_from_path`` for ONE partition's value, as with ``UPathIOManager``,
    and, instead of ``dump_to_path``, ``files_to_write`` (the bytes that store a value) and
    ``file_store``; this class writes them all-or-nothing (see the module docstring). They may set
    ``value_type`` to check every value (e.g. ``pd.DataFrame``) and override
    ``get_partition_metadata`` to describe each partition written (recorded on that partition's
    materialization only) and ``get_run_metadata`` for totals over a range (``run_...`` keys).
    """

    # Where files are written and moved; set by each subclass (local disk, s3fs or boto3).
    file_store: FileStore

    # The type one partition's value must have; None accepts anything (e.g. pickled objects).
    value_type: type | tuple[type, ...] | None = None
    # Concurrent reads/writes. botocore's and aiobotocore's connection pools default to 10, so
    # more threads would only queue (and botocore warns "Connection pool is full").
    max_workers: int = 10

    # ----------------------------------------------------------------------------------- hooks

    def display_path(self, path: UPath) -> str:
        """How a stored path is shown in metadata and error messages (overridden for boto-based S3)."""
        return str(path)

    @abstractmethod
    def files_to_write(
        self, context: OutputContext, obj: Any, path: UPath, partition_key: str | None
    ) -> list[tuple[UPath, bytes]]:
        """The files that store ``obj`` at ``path``, as ``(file path, content)`` in commit order.

        Usually just ``[(path, encoded obj)]``; a value stored as a folder of files lists them, the
        one whose presence means "complete" last. Raising here fails the output before anything
        stored has changed.
        """

    def wants_partition_dict(self, typing_type: Any) -> bool:
        """Whether an input annotated ``typing_type`` gets ``{partition_key: value}`` even for one partition."""
        return is_partition_dict_type(typing_type)

    def get_partition_metadata(
        self, context: OutputContext, partition_key: str, value: Any
    ) -> dict[str, Any]:
        """Metadata describing ONE partition's stored value (row count, schema, ...); override to add some.

        Recorded on that partition's materialization only, also when the output spans a year of
        partitions (see :meth:`add_partition_metadata`).
        """
        return {}

    def get_run_metadata(
        self, context: OutputContext, values_by_partition: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Totals over an output spanning several partitions; override to add some.

        Dagster copies an output's metadata onto EVERY partition's materialization, so each key must
        say it is the run's (``run_...``): it must never pose as a partition's own figure.
        """
        return {}

    def add_partition_metadata(
        self, context: OutputContext, partition_key: str, metadata: Mapping[str, Any]
    ) -> None:
        """Record ``metadata`` on one partition's materialization only.

        ``OutputContext`` has no per-partition metadata of its own (``add_output_metadata`` is copied
        onto every partition of the output), but the step it belongs to has: the store that the
        asset's ``context.add_asset_metadata(..., partition_key=...)`` writes to, merged into that
        partition's materialization over the output's metadata. An output context built outside a
        run (no step) gets the metadata as output metadata when it is for its only partition; for a
        range there is nowhere to put it, and a warning says so (the files are already stored).
        """
        if not metadata:
            return
        try:
            step = context.step_context
        except DagsterInvariantViolationError:
            if len(context.asset_partition_keys) == 1:
                context.add_output_metadata(dict(metadata))
            else:
                context.log.warning(
                    f"No step to record partition {partition_key}'s metadata on (an output context built outside a run)."
                )
            return
        step.add_asset_metadata(dict(metadata), asset_key=context.asset_key, partition_key=partition_key)

    # ---------------------------------------------------------------------------------- output

    @names_outages
    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            super().handle_output(context, obj)
            return

        paths = upath_partition_paths(self, context)
        values = self._values_by_partition(context, obj, list(paths))

        if not self.extension:
            # Without an extension a previously unpartitioned file sits exactly where the
            # partition folder must go; UPath knows how to move it aside.
            upath_clear_unpartitioned(self, context, upath_asset_path(self, context))

        # Described before anything is written: a hook that fails leaves storage unchanged.
        own_metadata = {
            key: {
                "path": MetadataValue.path(self.display_path(path)),
                **self.get_partition_metadata(context, key, values[key]),
            }
            for key, path in paths.items()
        }
        run_metadata = self._run_metadata(context, values) if len(paths) > 1 else {}

        context.log.debug(
            f"Writing {len(paths)} partition(s) of {context.asset_key.to_user_string()} under"
            f" {self.display_path(upath_asset_path(self, context))}"
        )
        self._write_all_or_nothing(context, [(key, paths[key], values[key]) for key in paths])

        # Each partition's own path and figures on its own materialization, in a single-run backfill too.
        for key, metadata in own_metadata.items():
            self.add_partition_metadata(context, key, metadata)
        if run_metadata:
            context.add_output_metadata(run_metadata)

    def _run_metadata(self, context: OutputContext, values: Mapping[str, Any]) -> dict[str, Any]:
        """What the output's whole range shows (copied onto each of its partitions): ``run_...`` keys only."""
        keys = list(values)
        metadata = {
            "run_partitions_written": len(keys),
            "run_partition_range": f"{keys[0]} to {keys[-1]}",
            **self.get_run_metadata(context, values),
        }
        shadowing = sorted(k for k in metadata if not k.startswith("run_"))
        if shadowing:
            raise ValueError(
                f"Run-level metadata keys must start with 'run_' (Dagster copies them onto every partition): {shadowing}"
            )
        return metadata

    def _values_by_partition(
        self, context: OutputContext, obj: Any, partition_keys: Sequence[str]
    ) -> dict[str, Any]:
        """The value to store for each partition key, validated against the run's partition keys."""
        asset = context.asset_key.to_user_string()
        if len(partition_keys) == 1:
            key = partition_keys[0]
            if self.value_type is not None and isinstance(obj, self.value_type):
                values = {key: obj}
            elif isinstance(obj, Mapping) and set(obj) == {key}:
                values = dict(obj)
            elif isinstance(obj, Mapping) and self.value_type is not None:
                # A mapping of values keyed by the wrong partition(s): report it like a range.
                values = self._check_mapping(asset, obj, partition_keys)
            elif self.value_type is None:
                # A pickled object may itself be a dict; it is only unwrapped when keyed by the partition.
                values = {key: obj}
            else:
                raise TypeError(
                    f"Asset '{asset}' partition {key} returned {type(obj).__name__}; expected"
                    f" {self._value_type_name()} or a one-key mapping {{'{key}': ...}}."
                )
        else:
            if not isinstance(obj, Mapping):
                raise TypeError(
                    f"Asset '{asset}' is materializing {len(partition_keys)} partitions in one run"
                    f" ({partition_keys[0]} to {partition_keys[-1]}) but returned {type(obj).__name__}."
                    " Return a Mapping[partition_key, value] with one entry per partition key"
                    " (context.partition_keys)."
                )
            values = self._check_mapping(asset, obj, partition_keys)

        if self.value_type is not None:
            for key, value in values.items():
                if not isinstance(value, self.value_type):
                    raise TypeError(
                        f"Asset '{asset}' partition {key}: expected {self._value_type_name()}, got"
                        f" {type(value).__name__}."
                    )
        return values

    @staticmethod
    def _check_mapping(asset: str, obj: Mapping[str, Any], partition_keys: Sequence[str]) -> dict[str, Any]:
        expected = set(partition_keys)
        given = set(obj)
        if given != expected:
            missing = [key for key in partition_keys if key not in given]
            extra = sorted(str(key) for key in given - expected)
            problems = []
            if missing:
                problems.append(f"missing {len(missing)}: {_format_keys(missing)}")
            if extra:
                problems.append(f"unexpected {len(extra)}: {_format_keys(extra)}")
            raise PartitionKeysMismatchError(
                f"Asset '{asset}' returned a mapping whose keys do not match the run's"
                f" {len(partition_keys)} partition key(s) ({partition_keys[0]} to {partition_keys[-1]}):"
                f" {'; '.join(problems)}. Return exactly one entry per key in context.partition_keys."
            )
        # Key order follows the partitions definition, not the asset's dict.
        return {key: obj[key] for key in partition_keys}

    def _value_type_name(self) -> str:
        types = self.value_type if isinstance(self.value_type, tuple) else (self.value_type,)
        return " or ".join(t.__name__ for t in types if t is not None)

    # ------------------------------------------------------------------- all-or-nothing writes

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        """``UPathIOManager``'s write of one value (unpartitioned outputs): the same protocol as partitions."""
        self._write_all_or_nothing(context, [(None, path, obj)])

    def _write_all_or_nothing(
        self, context: OutputContext, items: Sequence[tuple[str | None, UPath, Any]]
    ) -> None:
        """Write ``(partition_key, path, value)`` items so that either all are stored or none changed.

        Stage everything, then commit everything; a failure in either phase leaves every path with
        its old content (or none, as before) and re-raises. Temporaries are removed on every path.
        """
        write_id = uuid.uuid4().hex
        writes = [PartitionWrite(path, key, write_id) for key, path, _ in items]
        try:
            self._run_concurrently(
                lambda i: self.stage_partition(context, writes[i], items[i][2]), range(len(items))
            )
            try:
                self._run_concurrently(self.commit_partition, writes)
            except BaseException:
                self._roll_back(context, writes)
                raise
        finally:
            self._clean_up(context, writes)

    def stage_partition(self, context: OutputContext, write: PartitionWrite, obj: Any) -> None:
        """Write one partition's new files next to their final paths; no stored file changes."""
        for path, data in self.files_to_write(context, obj, write.path, write.partition_key):
            file = write.add_file(path)
            self.file_store.write(file.staged, data)

    def commit_partition(self, write: PartitionWrite) -> None:
        """Put one partition's staged files in place, in order, each file's old content kept aside first."""
        for file in write.files:
            file.had_old = self.file_store.keep_aside(file.path, file.backup)
            self.file_store.replace(file.staged, file.path)

    def rollback_partition(self, write: PartitionWrite) -> None:
        """Undo ``commit_partition`` (last file first): restore each old file, remove each that had none.

        Covers a commit that failed halfway; safe to run on files whose new content never arrived.
        """
        for file in reversed(write.files):
            if file.had_old:
                self.file_store.replace(file.backup, file.path)
            elif file.had_old is False:
                self.file_store.delete([file.path])

    def _roll_back(self, context: OutputContext, writes: Sequence[PartitionWrite]) -> None:
        """Roll back every partition whose commit started; one that cannot be restored keeps its backups."""

        def roll_back(write: PartitionWrite) -> None:
            try:
                self.rollback_partition(write)
            except Exception as error:
                write.keep_backups = True
                context.log.error(
                    f"Could not restore the old content of {self.display_path(write.path)} ({error});"
                    f" it is kept in {', '.join(self.display_path(f.backup) for f in write.files if f.had_old)}."
                )

        self._run_concurrently(roll_back, [w for w in writes if any(f.had_old is not None for f in w.files)])

    def _clean_up(self, context: OutputContext, writes: Sequence[PartitionWrite]) -> None:
        """Delete the write's staged files and backups; a failure here is logged, never raised.

        Raising after a full commit would fail an output whose partitions are all stored, and on a
        failed write it would hide the original error.
        """
        leftovers = [
            temporary
            for write in writes
            for file in write.files
            for temporary in ([file.staged] if write.keep_backups else [file.staged, file.backup])
        ]
        try:
            self.file_store.delete(leftovers)
        except Exception as error:
            context.log.warning(
                f"Could not delete {len(leftovers)} temporary file(s) of this write, e.g."
                f" {self.display_path(leftovers[0])}: {error}. They are never read as partitions."
            )

    # ----------------------------------------------------------------------------------- input

    @names_outages
    def load_input(self, context: InputContext) -> Any:
        if not context.has_asset_key:
            return super().load_input(context)
        if not context.has_asset_partitions:
            path = upath_output_path(self, context)
            try:
                return super().load_input(context)
            except FileNotFoundError as error:
                asset = context.asset_key.to_user_string()
                raise StoredAssetNotFoundError(
                    f"Asset '{asset}' has not been materialized (no file at {self.display_path(path)})."
                    f" Materialize '{asset}' first."
                ) from error

        wants_dict = self.wants_partition_dict(context.dagster_type.typing_type)
        keys = list(context.asset_partition_keys)
        if not keys:
            return {} if wants_dict else None

        paths = upath_partition_paths(self, context)
        backcompat_paths = upath_backcompat_paths(self, context)
        context.log.debug(
            f"Loading {len(keys)} partition(s) of {context.asset_key.to_user_string()} from"
            f" {self.display_path(upath_asset_path(self, context))}"
        )

        def load(key: str) -> Any:
            # A multi-dimensional key may also sit where very old Dagster versions wrote it.
            for path in (paths[key], backcompat_paths.get(key)):
                if path is None:
                    continue
                try:
                    return self.load_from_path(context=context, path=path)
                except FileNotFoundError:
                    continue
            return _MISSING

        loaded = dict(zip(keys, self._run_concurrently(load, keys), strict=True))
        missing = [key for key, value in loaded.items() if value is _MISSING]
        if missing:
            if not self._allows_missing_partitions(context):
                raise MissingPartitionError(
                    context.asset_key.to_user_string(),
                    {key: self.display_path(paths[key]) for key in missing},
                    requested=len(keys),
                )
            # Expected where an input allows it (a training window reaching back before the first
            # ingested day), so not a warning; the asset's own metadata counts what it loaded.
            context.log.info(
                f"Skipped {len(missing)} missing partition(s) of {context.asset_key.to_user_string()}"
                f" ({_format_keys(missing)}) because the input allows missing partitions."
            )
        found = {key: value for key, value in loaded.items() if value is not _MISSING}
        if len(keys) == 1 and not wants_dict:
            return found.get(keys[0])
        return found

    @staticmethod
    def _allows_missing_partitions(context: InputContext) -> bool:
        metadata = context.definition_metadata or {}
        return bool(metadata.get("allow_missing_partitions", False))

    # ----------------------------------------------------------------------------------- util

    def _run_concurrently(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]`` on a thread pool; the first exception propagates.

        After a failure no new item starts, and it returns only when the running ones have finished,
        so the caller can undo or clean up knowing nothing is still writing.
        """
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(items)), thread_name_prefix="io-partitions"
        ) as pool:
            futures = [pool.submit(fn, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
