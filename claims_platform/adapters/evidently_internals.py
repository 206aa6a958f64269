"""Evidently's private and legacy APIs the platform relies on, and nothing else (pinned by tests/adapters).

Evidently 0.7's public API builds reports and opens a ``Workspace``; writing one snapshot into a
workspace's file store WITHOUT opening the workspace (which reads every snapshot: 2.7 s for a year,
growing) has no public path, nor has the JSON encoder its own ``Snapshot.dumps`` uses. Each function
here says why; ``claims_platform_tests/adapters/test_evidently_internals.py`` pins what it relies on.
"""

from __future__ import annotations

import json
from typing import Any


def new_snapshot_id() -> str:
    """A new snapshot id as Evidently makes them (``evidently.legacy.core.new_id``: a time-ordered UUID
    that its UI sorts by)."""
    from evidently.legacy.core import new_id

    return str(new_id())


def write_snapshot_file(folder: str, project_id: str, snapshot_id: str, text: str) -> None:
    """Write one snapshot's JSON text where ``Workspace.add_run`` would (``LocalState``'s private
    ``_snapshot_dir`` and ``_snapshot_path``): the public path serialises the model again (0.1 s a report)
    and needs an opened workspace. One file per snapshot, so several processes may write at once."""
    from evidently.ui.storage.local.base import LocalState

    state = LocalState(folder)
    state.location.makedirs(state._snapshot_dir(project_id))
    with state.location.open(state._snapshot_path(project_id, snapshot_id), "w") as file:
        file.write(text)


def delete_snapshot(folder: str, project_id: str, snapshot_id: str) -> None:
    """Delete one snapshot from the workspace's file store (``LocalState.delete_snapshot``), without
    opening the workspace."""
    from evidently.ui.storage.local.base import LocalState

    LocalState(folder).delete_snapshot(project_id, snapshot_id)


def snapshot_json(data: dict[str, Any]) -> str:
    """A snapshot's JSON text as ``Snapshot.dumps`` writes it (its ``NumpyEncoder``, kept under
    ``evidently.legacy``), so numpy values in a report's results serialise as Evidently's own do."""
    from evidently.legacy.utils import NumpyEncoder

    return json.dumps(data, cls=NumpyEncoder)
