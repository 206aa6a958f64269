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

from claims_platform import settings
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
            [PanelMetric(metric="DriftedColumnsCount", metric_labels={"value_type": "share"}, legend="share")],
            description="Pinned tests: normed Wasserstein (numbers), Jensen-Shannon (levels).",
            size="half",
        )
    )
    project.dashboard.add_panel(
        line_plot_panel(
            "Prediction drift score",
            [PanelMetric(metric="ValueDrift", metric_labels={"column": PREDICTION_COLUMN}, legend="claim_probability")],
            description="Normed Wasserstein distance of the predicted claim probabilities from the reference's.",
            size="half",
        )
    )
    return str(project.id)


def add_snapshots(snapshots: Mapping[str, str], path: Path | str | None = None) -> dict[str, str]:
    """Add each day's snapshot (JSON from ``Snapshot.dumps``) to the workspace; day -> snapshot id.

    A day that already has a snapshot has it replaced. Snapshots are written with the workspace's
    own file store (``LocalState``, what ``Workspace.add_run`` uses), not through ``Workspace``,
    whose opening reads every snapshot of the folder (2.7 s for a year of days, growing).
    """
    from evidently.core.serialization import SnapshotModel
    from evidently.legacy.core import new_id
    from evidently.ui.storage.local.base import LocalState

    folder = Path(path) if path is not None else default_workspace_path()
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / INDEX_FILE
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    project_id = index.get("project_id")
    if not project_id or not (folder / project_id).is_dir():
        index = {"project_id": _create_project(folder), "days": {}}
        project_id = index["project_id"]
    state = LocalState(str(folder))
    added = {}
    for day, data in sorted(snapshots.items()):
        previous = index["days"].get(day)
        if previous is not None:
            # A snapshot already deleted by hand must not stop the day's report.
            with contextlib.suppress(Exception):
                state.delete_snapshot(project_id, previous)
        snapshot_id = str(new_id())
        state.write_snapshot(project_id, snapshot_id, SnapshotModel.parse_obj(json.loads(data)))
        index["days"][day] = added[day] = snapshot_id
    partial = index_path.with_suffix(".partial")
    partial.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(partial, index_path)
    return added


class EvidentlyWorkspace(dg.ConfigurableResource):
    """Where the daily drift snapshots are added for ``evidently ui`` (a local folder)."""

    path: str = Field(description="The Evidently workspace folder (CLAIMS_EVIDENTLY_WORKSPACE, default .local/evidently).")
    enabled: bool = Field(default=True, description="Add snapshots at all (off: reports are still stored as files).")

    def add(self, snapshots: Mapping[str, str]) -> dict[str, str]:
        """Add (or replace) each day's snapshot; day -> snapshot id ({} when disabled)."""
        return add_snapshots(snapshots, self.path) if self.enabled else {}
