"""A stored report's HTML: Evidently's library shared, its data compressed, still a page that draws offline."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from claims_platform.models.reference import reference_drawn_from
from claims_platform.monitoring.drift import DriftSettings, Reference, measure_drift
from claims_platform.monitoring.report_html import compressed_data, for_storage, library, standalone
from claims_platform.monitoring.reports import DriftReportInput, RenderedReport, drift_report
from claims_platform.source.generator import World
from claims_platform.source.scenarios import get_scenario
from claims_platform.storage.report_io_manager import SHARED_FOLDER

WORLD = World.from_seed(20250101)
DAY = date(2025, 6, 1)
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def drifted() -> tuple[str, RenderedReport]:
    """Evidently's own standalone HTML of a day whose income drifted, and the report as stored."""
    rows = pd.concat([WORLD.draw_day(date(2025, 3, 1) + timedelta(days=i)).applications for i in range(10)])
    reference = Reference(
        reference_drawn_from(rows, np.random.default_rng(0).beta(1, 6, len(rows)), 3_000, seed=1)
    )
    draw = get_scenario("income_shift", DAY).apply(WORLD, WORLD.draw_day(DAY))
    current = draw.applications.assign(
        claim_probability=np.random.default_rng(1).beta(1, 6, len(draw.applications))
    )
    result = measure_drift(current, reference)
    frame = pd.DataFrame(reference.columns).assign(claim_probability=reference.prediction)
    spec = DriftReportInput(
        DAY.isoformat(),
        current,
        frame,
        reference.kinds,
        DriftSettings(),
        list(result.drifted_columns),
        result.summary(),
    )
    written: list[str] = []

    def keep_evidentlys_page(html: str):
        written.append(html)
        return for_storage(html)

    with mock.patch("claims_platform.monitoring.report_html.for_storage", keep_evidentlys_page):
        report = drift_report(spec)
    return written[0], report


def _data_of(html: str) -> list:
    """The widgets and graphs a page draws: Evidently's two globals, or the compressed copy."""
    found = re.search(r'var claimsReportData = "([^"]+)"', html)
    if found:
        return json.loads(gzip.decompress(base64.b64decode(found.group(1))))
    info = re.search(r"var (metric_\w+) = (.+);\n\s*var additional_graphs_\1 = (.+);\n", html)
    return [json.loads(info.group(2)), json.loads(info.group(3))]


def test_a_stored_day_is_a_small_page_that_refers_to_one_shared_library(drifted):
    _, report = drifted
    stored = len(report.files()["report.html"]) + len(report.files()["snapshot.json.gz"])
    assert stored < 300_000, stored
    names = sorted(report.shared_files())
    assert [Path(n).suffix for n in names] == [".js", ".woff2"]
    assert all(f"../{SHARED_FOLDER}/{name}" in report.html for name in names)
    assert "<script>" + library()[0].source.read_text(encoding="utf-8")[:1000] not in report.html
    assert json.loads(gzip.decompress(report.files()["snapshot.json.gz"]))["metric_results"]


def test_the_compressed_data_is_evidentlys_own_and_standalone_inlines_the_library_again(drifted, tmp_path):
    standalone_html, report = drifted
    original = json.loads(json.dumps(_data_of(standalone_html)))
    assert _data_of(report.html) == original
    shared = tmp_path / SHARED_FOLDER
    shared.mkdir()
    for name, source in report.shared_files().items():
        shutil.copy(source, shared / name)
    assert standalone(report.html, shared) == compressed_data(standalone_html)
    assert for_storage(standalone_html)[0] == report.html


def test_a_page_not_laid_out_as_evidentlys_template_is_kept_as_it_is():
    html = "<html><body><script>var x = 1;</script></body></html>"
    assert compressed_data(html) == html
    assert for_storage(html) == (html, {})


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_stored_page_draws_its_charts_offline_from_its_folder(drifted, tmp_path):
    _, report = drifted
    day = tmp_path / "applications_drift_report" / DAY.isoformat()
    day.mkdir(parents=True)
    (day / "report.html").write_text(report.html, encoding="utf-8")
    (day.parent / SHARED_FOLDER).mkdir()
    for name, source in report.shared_files().items():
        shutil.copy(source, day.parent / SHARED_FOLDER / name)
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom",
         (day / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "Drift in column 'income'" in dom and "Count of Drifted Columns" in dom
