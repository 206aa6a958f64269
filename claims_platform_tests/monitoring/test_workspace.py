"""The Evidently workspace: one snapshot per day, and the series `evidently ui` plots read back from it."""

import asyncio
import json
import uuid
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from claims_platform.models.reference import reference_drawn_from
from claims_platform.monitoring.drift import DriftSettings, Reference, measure_drift
from claims_platform.monitoring.reports import DriftReportInput, drift_report
from claims_platform.monitoring.workspace import INDEX_FILE, add_snapshots
from claims_platform.source.generator import World
from claims_platform.source.scenarios import get_scenario

WORLD = World.from_seed(20250101)
DAYS = [date(2025, 6, 1) + timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def snapshots() -> dict[str, str]:
    rows = pd.concat(
        [WORLD.draw_day(date(2025, 3, 1) + timedelta(days=i)).applications for i in range(5)],
        ignore_index=True,
    )
    reference = reference_drawn_from(rows, np.random.default_rng(0).beta(1, 6, len(rows)), 3_000, seed=1)
    prepared = Reference(reference)
    shift = get_scenario("income_shift", DAYS[-1])
    out = {}
    for day in DAYS:
        draw = WORLD.draw_day(day)
        current = (shift.apply(WORLD, draw) if shift.applies_to(day) else draw).applications
        current = current.assign(
            claim_probability=np.random.default_rng(day.toordinal()).beta(1, 6, len(current))
        )
        result = measure_drift(current, prepared)
        spec = DriftReportInput(
            day.isoformat(),
            current,
            reference,
            prepared.kinds,
            DriftSettings(),
            list(result.drifted_columns),
            result.summary(),
        )
        out[day.isoformat()] = drift_report(spec).snapshot
    return out


def _series(folder, project_id: str) -> list[float]:
    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.common import NoopAuthManager
    from evidently.ui.service.storage.local import create_local_project_manager
    from evidently.ui.service.type_aliases import ZERO_UUID

    manager = create_local_project_manager(str(folder), False, NoopAuthManager())
    share = SeriesFilter(
        metric="evidently:metric_v2:DriftedColumnsCount",
        metric_labels={"value_type": "share"},
        tags=[],
        metadata={},
    )
    response = asyncio.run(manager.get_data_series(ZERO_UUID, uuid.UUID(project_id), [share], None, None))
    return [value for series in response.series for value in series.values]


def _thresholds(snapshot: str) -> dict:
    for result in json.loads(snapshot)["metric_results"].values():
        if result["display_name"] == "Count of Drifted Columns":
            return result["metric_value_location"]["metric"]["params"]["per_column_threshold"]
    raise AssertionError("no DriftedColumnsCount")


def test_each_day_is_one_snapshot_and_the_ui_reads_the_drift_series(tmp_path, snapshots):
    added = add_snapshots(snapshots, tmp_path)
    assert set(added) == {d.isoformat() for d in DAYS}
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    # The share of drifted columns per day, as the dashboard panel plots it: the last day drifted (2 of 40).
    # One series, although each day's thresholds are its own (calibrated to its row count).
    assert _series(tmp_path, index["project_id"]) == [0.0, 0.0, 0.05]
    assert len({json.dumps(_thresholds(text), sort_keys=True) for text in snapshots.values()}) == 3

    # The last day re-reported: its snapshot is replaced, not added.
    again = add_snapshots({DAYS[-1].isoformat(): snapshots[DAYS[-1].isoformat()]}, tmp_path)
    files = list((tmp_path / index["project_id"] / "snapshots").glob("*.json"))
    assert len(files) == 3 and again[DAYS[-1].isoformat()] in {f.stem for f in files}
    assert _series(tmp_path, index["project_id"]) == [0.0, 0.0, 0.05]
