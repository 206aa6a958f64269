"""`make screenshots`: README's pictures of the UI, from the browser test's own world and pages.

    python -m claims_platform_tests.ui.screenshots [FOLDER]     # default docs/screenshots

Builds the small demo-like world (``demo_instance``) in a temporary folder, serves it with
`dagster-webserver` and `mlflow server`, and has Debian's headless chromium take:

- ``asset-graph.png``           the global asset graph, groups expanded, the sidebar listing each group's assets
- ``daily-partition.png``       a day of ``application_scores``: that day's own figures and its model's link
- ``model-decision.png``        March's ``champion_decision``: the outcome and the champion's MLflow link
- ``mlflow-model-version.png``  where that link leads: the version in MLflow's model registry
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

from claims_platform.core import settings
from claims_platform_tests.ui import demo_instance, pages

GROUPS = ["ingestion", "training", "models", "scoring", "monitoring"]
DAY = "2025-04-02"


def take(demo: demo_instance.DemoInstance, folder: Path) -> list[Path]:
    """The four screenshots of a served world, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    with pages.chromium() as browser:
        page = pages.new_page(browser)
        pages.open_asset_graph(page, demo.dagster_url, GROUPS)
        pages.expand_sidebar(page, GROUPS)
        shots.append(_shot(page, folder / "asset-graph.png"))

        page = pages.new_page(browser, height=1100)  # down to the day's model link
        pages.open_partition(page, demo.dagster_url, "application_scores", DAY)
        pages.metadata_link(page, "model")
        shots.append(_shot(page, folder / "daily-partition.png"))

        pages.open_partition(page, demo.dagster_url, "champion_decision", demo_instance.TRAINING_MONTH)
        pages.metadata_link(page, "champion")
        shots.append(_shot(page, folder / "model-decision.png"))

        tab = pages.follow_link(page, "champion")
        pages.wait_for_mlflow_version(tab, settings.REGISTERED_MODEL_NAME, 1)
        pages.close_mlflow_assistant(tab)
        shots.append(_shot(tab, folder / "mlflow-model-version.png"))
    return shots


def _shot(page, path: Path) -> Path:
    page.mouse.move(0, 0)  # no hover highlight or tooltip in the picture
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    return path


def _stop_cleanly(number, frame) -> None:
    raise KeyboardInterrupt  # so the servers are stopped on the way out


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else demo_instance.REPO_ROOT / "docs" / "screenshots").resolve()
    if not demo_instance.CHROMIUM.exists():
        print(f"{demo_instance.CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _stop_cleanly)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="claims-screenshots-") as base:
        print("building a small demo-like world (about a minute)...", file=sys.stderr, flush=True)
        demo = demo_instance.build(Path(base))
        with demo_instance.serve(demo):
            shots = take(demo, folder)
        demo.world.instance.dispose()
    for shot in shots:
        print(
            shot.relative_to(demo_instance.REPO_ROOT)
            if shot.is_relative_to(demo_instance.REPO_ROOT)
            else shot
        )
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
