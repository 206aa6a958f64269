"""The Evidently workspace: every day's drift snapshot, so ``evidently ui`` shows the time series.

A local folder (``CLAIMS_EVIDENTLY_WORKSPACE``, default ``.local/evidently`` beside the rest of the
embedded state). One project, ``claims_platform applications drift``, with a dashboard of the share
of drifted columns and the prediction drift score per day. A day re-reported (a backfill, a late
re-score) replaces its earlier snapshot: the workspace keeps one snapshot per day, tracked in
``claims_platform_index.json`` in the workspace folder.

Open it with ``make evidently`` (``evidently ui --workspace <folder>``, on http://127.0.0.1:8000).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from pydantic import Field

from claims_platform.adapters import evidently_internals
from claims_platform.core import settings
from claims_platform.monitoring.drift import PREDICTION_COLUMN

ENV_EVIDENTLY_WORKSPACE = "CLAIMS_EVIDENTLY_WORKSPACE"
PROJECT_NAME = "claims_platform applications drift"
PROJECT_DESCRIPTION = (
    "Daily drift of the applications and of the predicted claim probabilities against the reference sample "
    "of the model in force (pinned tests: see docs/monitoring.md). One snapshot per day, written by the "
    "Dagster asset applications_drift_report."
)
INDEX_FILE = "claims_platform_index.json"


def default_workspace_path() -> Path:
    """``CLAIMS_EVIDENTLY_WORKSPACE`` or ``<local home>/evidently``."""
    return Path(os.environ.get(ENV_EVIDENTLY_WORKSPACE) or settings.local_home() / "evidently").resolve()


def _create_project(folder: Path) -> str:
    """The platform's project with its dashboard, in a new workspace folder; its id."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(folder))
    found = workspace.search_project(PROJECT_NAME)
    if found:
        return str(found[0].id)
    project = workspace.create_project(PROJECT_NAME, description=PROJECT_DESCRIPTION)
    project.dashboard.add_panel(
        line_plot_panel(
            "Share of drifted feature columns",
            [
                PanelMetric(
                    metric="DriftedColumnsCount", metric_labels={"value_type": "share"}, legend="share"
                )
            ],
            description="Pinned tests: normed Wasserstein (numbers), Jensen-Shannon (levels).",
            size="half",
        )
    )
    project.dashboard.add_panel(
        line_plot_panel(
            "Prediction drift score",
            [
                PanelMetric(
                    metric="ValueDrift",
                    metric_labels={"column": PREDICTION_COLUMN},
                    legend="claim_probability",
                )
            ],
            description="Normed Wasserstein distance of the predicted claim probabilities from the reference's.",
            size="half",
        )
    )
    return str(project.id)


def _index(folder: Path) -> dict:
    path = folder / INDEX_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_index(folder: Path, index: dict) -> None:
    path = folder / INDEX_FILE
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(partial, path)


def prepare(path: Path | str | None = None) -> tuple[str, str]:
    """The workspace folder and the platform's project id in it, created when missing."""
    folder = Path(path) if path is not None else default_workspace_path()
    folder.mkdir(parents=True, exist_ok=True)
    index = _index(folder)
    project_id = index.get("project_id")
    if not project_id or not (folder / project_id).is_dir():
        project_id = _create_project(folder)
        _write_index(folder, {"project_id": project_id, "days": {}})
    return str(folder), project_id


# A metric's parameters that change day by day: the drift thresholds, calibrated to each day's rows.
DAY_SPECIFIC_PARAMS = ("threshold", "per_column_threshold")


def series_keyed_copy(snapshot: dict) -> dict:
    """The snapshot with its metrics' day-specific thresholds left out of their parameters.

    Evidently's UI keys a time series by the metric's parameters: thresholds that differ day by day
    (calibrated to each day's row count) would make every day a series of its own point. The series'
    values, the report's widgets and the thresholds shown in them are kept; only the key loses them.
    """

    def strip(node):
        if isinstance(node, dict):
            out = {key: strip(value) for key, value in node.items()}
            params = out.get("metric", {}).get("params") if isinstance(out.get("metric"), dict) else None
            if isinstance(params, dict) and "metric_id" in out["metric"]:
                out["metric"] = {
                    **out["metric"],
                    "params": {k: v for k, v in params.items() if k not in DAY_SPECIFIC_PARAMS},
                }
            return out
        if isinstance(node, list):
            return [strip(value) for value in node]
        return node

    return {**snapshot, "metric_results": strip(snapshot.get("metric_results", {}))}


def write_snapshot(target: tuple[str, str], snapshot_json: str) -> str:
    """Write one snapshot (the JSON text of an Evidently ``SnapshotModel``) into the project; its new id.

    Uses the workspace's own file store (``LocalState``, what ``Workspace.add_run`` uses), not a
    ``Workspace``, whose opening reads every snapshot in the folder (2.7 s for a year, growing). The
    text is the report's own, keyed for the dashboard's series (:func:`series_keyed_copy`; 3 ms, where
    ``LocalState.write_snapshot`` would serialise the model again: 0.1 s a report). Safe from several
    processes at once: each snapshot is its own file.
    """
    folder, project_id = target
    snapshot_id = evidently_internals.new_snapshot_id()
    evidently_internals.write_snapshot_file(
        folder, project_id, snapshot_id, json.dumps(series_keyed_copy(json.loads(snapshot_json)))
    )
    return snapshot_id


def register(target: tuple[str, str], added: Mapping[str, str]) -> None:
    """Record day -> snapshot id in the index, deleting the snapshot each day had before (one per day)."""
    folder, project_id = target
    index = _index(Path(folder))
    days = index.get("days", {}) if index.get("project_id") == project_id else {}
    for day, snapshot_id in sorted(added.items()):
        previous = days.get(day)
        if previous is not None and previous != snapshot_id:
            # A snapshot already deleted by hand must not stop the day's report.
            with contextlib.suppress(Exception):
                evidently_internals.delete_snapshot(folder, project_id, previous)
        days[day] = snapshot_id
    _write_index(Path(folder), {"project_id": project_id, "days": days})


def add_snapshots(snapshots: Mapping[str, str], path: Path | str | None = None) -> dict[str, str]:
    """Add each day's snapshot (JSON from ``Snapshot.dumps``) to the workspace; day -> snapshot id.

    A day that already has a snapshot has it replaced.
    """
    from evidently.core.serialization import SnapshotModel

    target = prepare(path)
    for day, data in snapshots.items():  # each one readable by Evidently's UI before any is added
        try:
            SnapshotModel.parse_obj(json.loads(data))
        except ValueError as error:
            raise ValueError(f"{day}: not an Evidently snapshot: {error}") from error
    added = {day: write_snapshot(target, data) for day, data in sorted(snapshots.items())}
    register(target, added)
    return added


class EvidentlyWorkspace(dg.ConfigurableResource):
    """Where the daily drift snapshots are added for ``evidently ui`` (a local folder)."""

    path: str = Field(
        description="The Evidently workspace folder (CLAIMS_EVIDENTLY_WORKSPACE, default .local/evidently)."
    )
    enabled: bool = Field(
        default=True, description="Add snapshots at all (off: reports are still stored as files)."
    )

    def target(self) -> tuple[str, str] | None:
        """(folder, project id) for report workers to write snapshots into; None when disabled."""
        return prepare(self.path) if self.enabled else None

    def register(self, target: tuple[str, str], added: Mapping[str, str]) -> None:
        """Record the snapshots the workers wrote, replacing each day's earlier one."""
        register(target, added)
