"""Evidently's private and legacy APIs the platform relies on, and nothing else (pinned by tests/adapters).

Evidently 0.7's public API builds reports and opens a ``Workspace``; writing one snapshot into a
workspace's file store WITHOUT opening the workspace (which reads every snapshot: 2.7 s for a year,
growing) has no public path, nor has the JSON encoder its own ``Snapshot.dumps`` uses. Each function
here says why; ``claims_platform_tests/adapters/test_evidently_internals.py`` pins what it relies on.
Nor can a standalone HTML report refer to Evidently's script bundle instead of inlining it (3.4 MB a
report): :func:`html_library_files` names the files it inlines.
"""

from __future__ import annotations

import json
from pathlib import Path
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


def html_library_files() -> dict[str, Path]:
    """The two files Evidently inlines into every standalone HTML report: ``"script"``, its UI bundle
    (``index.js``, 3.4 MB, inlined as ``<script>…</script>``), and ``"font"``, its icon font (inlined
    base64 as a ``data:`` URL), from ``evidently/nbextension/static`` where its legacy HTML template
    reads them (``evidently.legacy.utils.dashboard.STATIC_PATH``). The public ``get_html_str`` always
    inlines both; only the legacy ``SaveMode.FOLDER`` of the old ``Suite`` refers to copies instead."""
    from evidently.legacy.utils.dashboard import STATIC_PATH

    static = Path(STATIC_PATH)
    return {"script": static / "index.js", "font": static / "material-ui-icons.woff2"}
