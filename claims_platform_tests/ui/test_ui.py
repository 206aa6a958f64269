"""What a person sees in the UI, in a real browser: the asset graph, a day's own figures, a model's MLflow link.

One demo-like world for the module (``demo_instance``): three months ingested, March's champion,
five days of April scored as one backfill run. `dagster-webserver` serves its instance and
`mlflow server` its tracking store, as `make dev` would; Debian's headless chromium, driven by
Playwright, opens the pages and waits for what a person would look for. `make screenshots` takes
README's pictures from the same pages.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from claims_platform.core import settings
from claims_platform_tests.ui import demo_instance, pages

pytestmark = pytest.mark.integration

GROUPS = ["ingestion", "training", "models", "scoring", "monitoring"]
MODEL = settings.REGISTERED_MODEL_NAME


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not demo_instance.CHROMIUM.exists():
        message = f"{demo_instance.CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    demo = demo_instance.build(tmp_path_factory.mktemp("ui"))
    with demo_instance.serve(demo):
        yield demo
    demo.world.instance.dispose()


@pytest.fixture(scope="module")
def browser(served):
    with pages.chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    page = pages.new_page(browser)
    yield page
    page.context.close()


def _stored_rows(demo, asset: str, day: str) -> int:
    return pq.read_metadata(demo.storage / asset / f"{day}.parquet").num_rows


def _two_days_with_different_counts(demo) -> tuple[tuple[str, int], tuple[str, int]]:
    days = [f"2025-04-{d:02d}" for d in range(1, 6)]
    rows = {day: _stored_rows(demo, "application_scores", day) for day in days}
    first = days[1]
    other = next(day for day in days if rows[day] != rows[first])
    return (first, rows[first]), (other, rows[other])


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return json.load(response)


def test_the_asset_graph_shows_every_group_with_its_assets(served, page):
    expected: dict[str, list[str]] = defaultdict(list)
    for spec in served.world.defs.resolve_all_asset_specs():
        expected[spec.group_name].append(spec.key.to_user_string())
    assert sorted(expected) == sorted(GROUPS)

    pages.open_asset_graph(page, served.dagster_url, GROUPS)
    # Every asset is a node of the graph (long names are shown cut in the middle).
    shown = pages.graph_node_names(page)
    for asset in (a for assets in expected.values() for a in assets):
        assert any(pages.shown_as(asset, text) for text in shown), f"{asset} not in the graph: {shown}"
    # The sidebar lists the groups, each opening onto its own assets.
    listed: dict[str, list[str]] = defaultdict(list)
    group = None
    for entry in pages.expand_sidebar(page, GROUPS):
        if entry in GROUPS:
            group = entry
        else:
            listed[group].append(entry)
    assert {g: sorted(a) for g, a in listed.items()} == {g: sorted(a) for g, a in expected.items()}


def test_a_days_partition_page_shows_that_days_own_figures(served, page):
    (day, rows), (other_day, other_rows) = _two_days_with_different_counts(served)
    pages.open_partition(page, served.dagster_url, "application_scores", day)
    # The day's own count of scored applications: the rows of its own Parquet file, not the run's total.
    shown = pages.metadata_text(page, "rows_scored")
    assert rows in pages.numbers_in(shown) and other_rows not in pages.numbers_in(shown), shown
    assert pages.metadata_text(page, "model_version").startswith("1")
    assert pages.metadata_link(page, "model") == f"{served.mlflow_url}/#/models/{MODEL}/versions/1"

    pages.open_partition(page, served.dagster_url, "application_scores", other_day)
    shown = pages.metadata_text(page, "rows_scored")
    assert other_rows in pages.numbers_in(shown) and rows not in pages.numbers_in(shown), shown


def test_a_models_page_links_to_its_version_in_mlflow(served, page):
    training = served.world.training
    decision = training.output_for_node("champion_decision")
    candidate = training.output_for_node("candidate_model")
    version = decision["champion"]["version"]
    month = demo_instance.TRAINING_MONTH

    pages.open_partition(page, served.dagster_url, "champion_decision", month)
    assert "first champion" in pages.metadata_text(page, "outcome")
    href = pages.metadata_link(page, "champion")
    assert href == f"{served.mlflow_url}/#/models/{MODEL}/versions/{version}"
    # The link resolves: the MLflow UI answers, and the version its client-side route names exists.
    with urllib.request.urlopen(href, timeout=10) as response:
        assert response.status == 200 and "html" in response.headers.get("Content-Type", "")
    query = urllib.parse.urlencode({"name": MODEL, "version": version})
    found = _json(f"{served.mlflow_url}/api/2.0/mlflow/model-versions/get?{query}")["model_version"]
    assert found["run_id"] == candidate["mlflow_run_id"] and "champion" in found.get("aliases", [])

    # Followed as a person would: a new tab on MLflow's page of that version, naming the run that trained it.
    run = _json(f"{served.mlflow_url}/api/2.0/mlflow/runs/get?run_id={found['run_id']}")["run"]
    run_name = run["info"]["run_name"]
    assert month[:7] in run_name
    tab = pages.follow_link(page, "champion")
    assert tab.url == href
    pages.wait_for_mlflow_version(tab, MODEL, version)
    tab.get_by_text(run_name, exact=True).filter(visible=True).first.wait_for()

    # The month it scores shows the same model.
    pages.open_partition(page, served.dagster_url, "model_in_force", demo_instance.SCORING_MONTH)
    assert pages.metadata_link(page, "model") == href


def test_a_versions_model_card_opens_from_its_candidate_and_its_decision(served, page, tmp_path):
    training = served.world.training
    version = training.output_for_node("candidate_model")["version"]
    month = demo_instance.TRAINING_MONTH
    pages.open_partition(page, served.dagster_url, "candidate_model", month)
    from_candidate = pages.metadata_link(page, "model_card")
    pages.open_partition(page, served.dagster_url, "champion_decision", month)
    assert pages.metadata_link(page, "model_card") == from_candidate
    assert from_candidate.startswith(served.mlflow_url) and from_candidate.endswith(
        "/artifacts/model_card/model_card.html"
    )
    tab = pages.follow_link(page, "model_card")
    pages.wait_for_model_card(tab, MODEL, version)
    card = tab.frame_locator("iframe").first
    card.get_by_text("Outcomes by protected group (holdout)", exact=True).wait_for()
    card.get_by_text("first champion", exact=False).first.wait_for()  # the decision's own section
    tab.screenshot(path=str(tmp_path / "model_card.png"))


def test_the_runs_page_shows_the_runs_that_built_the_world(served, page):
    page.goto(f"{served.dagster_url}/runs")
    for job in ("daily_ingestion", "monthly_training", "nightly_scoring"):
        page.get_by_text(job, exact=True).first.wait_for()
    # The five scored days were one run (a single-run backfill).
    runs = served.world.instance.get_runs()
    assert sum(run.job_name == "nightly_scoring" for run in runs) == 1
