"""Evidently reports: what a person opens (HTML), what a tool reads (the JSON snapshot), the workspace.

A day's **drift report** is an Evidently 0.7 ``Report`` run on the day's applications and
predictions against the reference sample of the model in force, with the SAME pinned tests as the
drift decision (:mod:`claims_platform.monitoring.drift`):

- ``DriftedColumnsCount`` over the 40 features: Evidently's own count and share of drifted columns
  (the drift time series of the Evidently UI), typed as the decision types them;
- ``ValueDrift`` of the predicted probability, and of every column the decision found drifted (the
  distributions a person needs to see; on a normal day there are none, which keeps a day's report
  at ~0.4 s instead of the ~2.2 s of a full-detail preset);
- the decision's per-column scores as the snapshot's metadata.

The month's **classification report** (``ClassificationPreset``) compares the month's decisions at
the screen with the claims that happened.

Reports are plain values (:class:`RenderedReport`) that the report IO manager stores; building them
needs only pandas and Evidently, so a backfill can build days in worker processes
(:func:`build_drift_reports`).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from claims_platform.monitoring.drift import (
    CATEGORICAL_METHOD,
    NUMERICAL_METHOD,
    PREDICTION_COLUMN,
    ColumnKind,
    DriftSettings,
    for_drift,
)
from claims_platform.storage.report_io_manager import REPORT_FILE, StoredReport

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry: never from a production run

# The JSON snapshot, gzipped (a sixth of the size): ``Snapshot.loads(gzip.decompress(data))``, or zcat.
SNAPSHOT_FILE = "snapshot.json.gz"
# Days in a run from which reports are built in worker processes (their server pays ~6 s to import Evidently).
PARALLEL_FROM_DAYS = 8


@dataclass(frozen=True)
class RenderedReport(StoredReport):
    """One report as stored: Evidently's HTML and JSON snapshot, and the platform's summary of it."""

    html: str
    snapshot: str
    summary: dict[str, Any] = field(default_factory=dict)
    # Evidently's own count of drifted columns (a cross-check of the decision), when it ran.
    evidently_drifted_columns: int | None = None
    # The snapshot's id in the Evidently workspace, when the report was added to one.
    workspace_snapshot: str | None = None
    # The files the HTML refers to instead of inlining them (Evidently's script bundle and font), by name.
    shared: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def of(cls, html: str, snapshot: str, **kwargs: Any) -> RenderedReport:
        """A report from Evidently's standalone HTML, stored referring to the library it inlines
        (:mod:`~claims_platform.monitoring.report_html`)."""
        from claims_platform.monitoring.report_html import for_storage

        slim, shared = for_storage(html)
        return cls(html=slim, snapshot=snapshot, shared=shared, **kwargs)

    def files(self) -> dict[str, bytes]:
        """Evidently's HTML (the report a reader opens) and its JSON snapshot, gzipped."""
        snapshot = gzip.compress(self.snapshot.encode("utf-8"), compresslevel=9, mtime=0)
        return {REPORT_FILE: self.html.encode("utf-8"), SNAPSHOT_FILE: snapshot}

    def shared_files(self) -> dict[str, Path]:
        return dict(self.shared)


@dataclass(frozen=True)
class DriftReportInput:
    """Everything one day's drift report needs (picklable, for a worker process)."""

    day: str
    current: pd.DataFrame
    # The reference sample, or the URI of the model that ships it (loaded and prepared once per process).
    reference: pd.DataFrame | str
    kinds: Mapping[str, ColumnKind]
    settings: DriftSettings
    drifted_columns: Sequence[str]
    summary: Mapping[str, Any]
    # (workspace folder, project id): the worker adds the snapshot there itself.
    workspace: tuple[str, str] | None = None


def _evidently_frame(frame: pd.DataFrame, kinds: Mapping[str, ColumnKind]) -> pd.DataFrame:
    """The columns as the drift decision sees them: categories as text, missing as a level of its own."""
    columns = {name: for_drift(frame[name], kind) for name, kind in kinds.items() if kind == "categorical"}
    numbers = {
        name: frame[name].astype("float64").reset_index(drop=True)
        for name, kind in kinds.items()
        if kind == "numerical"
    }
    out = pd.DataFrame({**numbers, **columns})
    if PREDICTION_COLUMN in frame.columns:
        out[PREDICTION_COLUMN] = frame[PREDICTION_COLUMN].astype("float64").to_numpy()
    return out[[c for c in [*kinds, PREDICTION_COLUMN] if c in out.columns]]


# Evidently datasets of references named by model URI, prepared once per process (a backfill's worker
# builds a year of reports against the same one or few models).
_REFERENCES: dict[tuple[str, tuple[str, ...]], tuple[Any, bool]] = {}


def _definition(kinds: Mapping[str, ColumnKind], has_prediction: bool):
    from evidently import DataDefinition

    numerical = [c for c, k in kinds.items() if k == "numerical"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    return DataDefinition(
        numerical_columns=numerical + ([PREDICTION_COLUMN] if has_prediction else []),
        categorical_columns=categorical,
    )


def _reference_dataset(reference: pd.DataFrame | str, kinds: Mapping[str, ColumnKind]) -> tuple[Any, bool]:
    """The reference as an Evidently dataset, and whether it has predictions."""
    from evidently import Dataset

    key = (reference, tuple(kinds)) if isinstance(reference, str) else None
    if key is not None and key in _REFERENCES:
        return _REFERENCES[key]
    if isinstance(reference, str):
        from claims_platform.models.loading import load_reference_cached

        frame = load_reference_cached(reference)
    else:
        frame = reference
    has_prediction = PREDICTION_COLUMN in frame.columns
    dataset = Dataset.from_pandas(
        _evidently_frame(frame, kinds), data_definition=_definition(kinds, has_prediction)
    )
    if key is not None:
        _REFERENCES[key] = (dataset, has_prediction)
    return dataset, has_prediction


def drift_report(spec: DriftReportInput) -> RenderedReport:
    """The day's Evidently drift report (HTML + JSON snapshot), with the decision's summary."""
    from evidently import Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    settings = spec.settings
    features = list(spec.kinds)
    reference, reference_has_prediction = _reference_dataset(spec.reference, spec.kinds)
    has_prediction = PREDICTION_COLUMN in spec.current.columns and reference_has_prediction
    current_frame = _evidently_frame(spec.current, spec.kinds)
    if not has_prediction:
        current_frame = current_frame.drop(columns=[PREDICTION_COLUMN], errors="ignore")
    current = Dataset.from_pandas(current_frame, data_definition=_definition(spec.kinds, has_prediction))
    # The thresholds the day's decision used, per column (calibrated to the day's rows, or set by hand).
    thresholds = _thresholds(spec)
    metrics: list[Any] = [
        DriftedColumnsCount(
            columns=features,
            num_method=NUMERICAL_METHOD,
            cat_method=CATEGORICAL_METHOD,
            per_column_threshold={column: thresholds[column] for column in features},
        )
    ]
    if has_prediction and PREDICTION_COLUMN in thresholds:
        metrics.append(
            ValueDrift(
                column=PREDICTION_COLUMN, method=NUMERICAL_METHOD, threshold=thresholds[PREDICTION_COLUMN]
            )
        )
    for column in spec.drifted_columns:
        method, _ = settings.method_for(spec.kinds[column])
        metrics.append(ValueDrift(column=column, method=method, threshold=thresholds[column]))
    report = Report(metrics, metadata=snapshot_metadata(spec.day, spec.summary), tags=["applications_drift"])
    snapshot = report.run(
        current_data=current,
        reference_data=reference,
        timestamp=pd.Timestamp(spec.day).to_pydatetime(),
        name=f"Applications drift {spec.day}",
    )
    data = snapshot.to_snapshot_model().dict()  # serialised once: the stored snapshot and the workspace's
    text = _json_text(data)
    workspace_snapshot = None
    if spec.workspace is not None:
        from claims_platform.monitoring.workspace import write_snapshot

        workspace_snapshot = write_snapshot(spec.workspace, text)
    return RenderedReport.of(
        snapshot.get_html_str(as_iframe=False),
        text,
        summary=dict(spec.summary),
        evidently_drifted_columns=drifted_column_count(data),
        workspace_snapshot=workspace_snapshot,
    )


def _thresholds(spec: DriftReportInput) -> dict[str, float]:
    """Each test's threshold as the day's decision used it: from its summary, else the settings' own."""
    stored = dict(spec.summary.get("column_thresholds") or {})
    settings = spec.settings
    for column, kind in spec.kinds.items():
        fixed = settings.method_for(kind)[1]
        if column not in stored and fixed is not None:
            stored[column] = fixed
    if PREDICTION_COLUMN not in stored and settings.prediction_threshold is not None:
        stored[PREDICTION_COLUMN] = settings.prediction_threshold
    missing = [c for c in spec.kinds if c not in stored]
    if missing:
        raise ValueError(f"no drift threshold for column(s) {missing} of the day {spec.day}")
    return stored


def _json_text(data: dict) -> str:
    """A snapshot's JSON text, as Evidently writes it (``Snapshot.dumps``)."""
    from claims_platform.adapters.evidently_internals import snapshot_json

    return snapshot_json(data)


def drifted_column_count(snapshot: str | dict) -> int | None:
    """The number of drifted columns Evidently's ``DriftedColumnsCount`` found, from a snapshot (JSON or dict)."""
    import json

    data = json.loads(snapshot) if isinstance(snapshot, str) else snapshot
    for result in data.get("metric_results", {}).values():
        if result.get("display_name") == "Count of Drifted Columns":
            return int(result["count"]["value"])
    return None


# The decision's figures a snapshot carries; Evidently's UI reads snapshot metadata as text only.
SNAPSHOT_METADATA = (
    "drifted",
    "drift_share",
    "drifted_columns",
    "prediction_drift_score",
    "rejected_share",
    "rows",
    "model_version",
)


def snapshot_metadata(day: str, summary: Mapping[str, Any]) -> dict[str, str]:
    """The day's decision as snapshot metadata: plain strings (dicts as JSON)."""
    import json

    metadata = {"day": day}
    for key in SNAPSHOT_METADATA:
        if key in summary:
            value = summary[key]
            metadata[key] = (
                json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
            )
    return metadata


# What the report workers import before their first report (Evidently alone: ~6 s).
WORKER_PRELOAD = (
    "claims_platform.monitoring.reports",
    "evidently",
    "evidently.metrics",
    "evidently.ui.storage.local.base",
)


def _worker_context():
    """Workers forked from a server that imported Evidently once (multiprocessing's ``forkserver``).

    Not ``fork``: the parent runs Dagster's threads, which a fork would copy mid-lock; the fork server
    is a fresh single-threaded process. Not ``spawn``: each spawned worker imports Evidently again.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))
    return context


def warm_report_workers() -> None:
    """Start the report workers' server now, so that its import of Evidently overlaps other work.

    A process that will build many days' reports (the demo, while its scoring backfill runs) calls
    this ahead; the server lives as long as the process. Without it the first pool starts it.
    """
    from multiprocessing import forkserver

    _worker_context()
    forkserver.ensure_running()


def build_drift_reports(
    specs: Sequence[DriftReportInput], workers: int | None = None
) -> dict[str, RenderedReport]:
    """Each day's report, in worker processes when there are many days (Evidently is single-threaded)."""
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers <= 1 or len(specs) < PARALLEL_FROM_DAYS:
        return {spec.day: drift_report(spec) for spec in specs}
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        reports = list(pool.map(drift_report, specs, chunksize=4))
    return {spec.day: report for spec, report in zip(specs, reports, strict=True)}


def classification_report(frame: pd.DataFrame, month: str, threshold: float) -> RenderedReport:
    """The month's Evidently classification report: the screen (p >= threshold) against the claims."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    data = pd.DataFrame(
        {
            "claim_status": frame["claim_status"].astype("int64").to_numpy(),
            PREDICTION_COLUMN: frame[PREDICTION_COLUMN].astype("float64").to_numpy(),
        }
    )
    definition = DataDefinition(
        classification=[
            BinaryClassification(target="claim_status", prediction_probas=PREDICTION_COLUMN, pos_label=1)
        ],
        numerical_columns=[PREDICTION_COLUMN],
    )
    report = Report([ClassificationPreset(probas_threshold=threshold)], tags=["model_performance"])
    snapshot = report.run(
        current_data=Dataset.from_pandas(data, data_definition=definition),
        reference_data=None,
        timestamp=pd.Timestamp(month).to_pydatetime(),
        name=f"Model performance {month[:7]}",
    )
    return RenderedReport.of(snapshot.get_html_str(as_iframe=False), snapshot.dumps())
