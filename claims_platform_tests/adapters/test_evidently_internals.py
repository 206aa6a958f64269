"""What the platform relies on of Evidently's private and legacy APIs (``claims_platform.adapters.evidently_internals``)."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np

os.environ.setdefault("DO_NOT_TRACK", "1")

from claims_platform.adapters import evidently_internals as internals  # noqa: E402


def test_a_snapshot_written_to_the_file_store_is_where_evidently_reads_it_and_can_be_deleted(tmp_path):
    from evidently.ui.storage.local.base import LocalState

    project = str(uuid.uuid4())
    snapshot = internals.new_snapshot_id()
    assert uuid.UUID(snapshot)
    internals.write_snapshot_file(str(tmp_path), project, snapshot, '{"hello": 1}')
    state = LocalState(str(tmp_path))
    written = state._snapshot_path(project, snapshot)
    with state.location.open(written) as file:
        assert json.loads(file.read()) == {"hello": 1}
    internals.delete_snapshot(str(tmp_path), project, snapshot)
    assert not state.location.exists(written)


def test_snapshot_json_encodes_numpy_as_evidently_does():
    text = internals.snapshot_json({"a": np.float64(0.5), "b": np.array([1, 2]), "c": np.int64(3)})
    assert json.loads(text) == {"a": 0.5, "b": [1, 2], "c": 3}


def test_evidently_inlines_exactly_the_library_files_into_a_standalone_report():
    import base64

    import pandas as pd
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    files = internals.html_library_files()
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50)})
    html = (
        Report([ValueDrift(column="x")])
        .run(current_data=Dataset.from_pandas(frame), reference_data=Dataset.from_pandas(frame))
        .get_html_str(as_iframe=False)
    )
    assert f"<script>{files['script'].read_text(encoding='utf-8')}</script>" in html
    assert f"url(data:font/ttf;base64,{base64.b64encode(files['font'].read_bytes()).decode()})" in html
