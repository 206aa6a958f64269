"""What a person does in the Dagster UI, as Playwright steps: open a page and wait until its data is shown.

The UI is a React app that loads everything by GraphQL after the page itself has loaded, so each
step waits for the text a person would look for (a group's name, a partition's metadata key), never
for a fixed time. Shared by the browser test and ``make screenshots``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from playwright.sync_api import Browser, Locator, Page, sync_playwright

from claims_platform_tests.ui.demo_instance import CHROMIUM

VIEWPORT = {"width": 1600, "height": 1000}
TIMEOUT_MS = 60_000  # generous: CI runs the suite on 2 cores, two test files at a time


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless chromium driven by Playwright (no browser of Playwright's own)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, height: int = VIEWPORT["height"]) -> Page:
    page = browser.new_context(viewport={"width": VIEWPORT["width"], "height": height}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


# ------------------------------------------------------------------------------------- the asset graph


def open_asset_graph(page: Page, dagster_url: str, groups: list[str]) -> None:
    """`Lineage` in the navigation: the global asset graph, every group expanded to its assets."""
    page.goto(f"{dagster_url}/asset-groups")
    page.get_by_text("Global asset lineage").wait_for()
    for group in groups:  # each group is a box of the graph and an entry of the sidebar
        page.get_by_text(group, exact=True).last.wait_for()
    # The graph opens with its groups collapsed: the graph settings' "Expand all groups" (⌥E).
    page.keyboard.press("Alt+e")
    graph_node_names(page, wait=True)


def graph_node_names(page: Page, wait: bool = False) -> list[str]:
    """The names on the graph's asset nodes, as shown (long names are cut in the middle with '…')."""
    nodes = page.locator('[class*="AssetNode_assetName"]')
    if wait:
        nodes.first.wait_for()
    return [text.strip() for text in nodes.all_inner_texts()]


def shown_as(name: str, shown: str) -> bool:
    """Whether ``shown`` is ``name`` or the UI's middle-truncation of it (``"reje…_applications"``)."""
    if "…" not in shown:
        return shown == name
    head, tail = shown.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


def expand_sidebar(page: Page, groups: list[str]) -> list[str]:
    """Open every group of the graph's sidebar tree; the entries it then lists, top to bottom."""
    for group in groups:
        arrow = page.locator(
            f'xpath=//*[@title="{group}"]/ancestor::div[.//*[@aria-label="arrow_drop_down"]][1]'
            '//button[.//*[@aria-label="arrow_drop_down"]]'
        )
        arrow.click()
    sidebar = page.locator(
        f'xpath=//*[@title="{groups[0]}"]/ancestor::div[count(.//*[@aria-label="asset_group"]) = {len(groups)}][1]'
    )
    titles = sidebar.locator('[class*="MiddleTruncate_container"]')
    page.wait_for_function(
        "n => document.querySelectorAll('[class*=\"MiddleTruncate_container\"]').length > n", arg=len(groups)
    )
    return [title.get_attribute("title") or "" for title in titles.all()]


# -------------------------------------------------------------------------------- a partition's page


def open_partition(page: Page, dagster_url: str, asset: str, partition: str) -> Locator:
    """The asset's Partitions tab with one partition selected; returns its detail panel's metadata table."""
    page.goto(f"{dagster_url}/assets/{asset}?view=partitions&partition={partition}")
    # The panel's title is the partition (the list beside it shows the same text, hidden or not).
    page.get_by_text(partition, exact=True).filter(visible=True).last.wait_for()
    page.get_by_text("Latest materialization", exact=True).wait_for()
    table = page.locator("table", has=page.locator("td")).last
    table.locator("td").first.wait_for()
    return table


def metadata_row(page: Page, key: str) -> Locator:
    """The metadata table's row whose key is ``key`` (the first cell, exactly)."""
    row = page.locator(
        "tr", has=page.locator("td:first-child", has_text=re.compile(rf"^\s*{re.escape(key)}\s*$"))
    )
    row.first.wait_for()
    return row.first


def metadata_text(page: Page, key: str) -> str:
    """What the metadata row ``key`` shows as its value."""
    return metadata_row(page, key).locator("td").nth(1).inner_text().strip()


def numbers_in(text: str) -> list[int]:
    """The whole numbers a person reads in ``text`` (thousands separators allowed: '1,172', '1 172')."""
    return [
        int(re.sub(r"[,\s\u202f\u2009]", "", n))
        for n in re.findall(r"\d{1,3}(?:[,\u202f\u2009 ]\d{3})+|\d+", text)
    ]


def metadata_link(page: Page, key: str) -> str:
    """The href of the link the metadata row ``key`` shows."""
    link = metadata_row(page, key).locator("a[href]").first
    link.wait_for()
    return link.get_attribute("href") or ""


# --------------------------------------------------------------------------------------- MLflow's UI


def follow_link(page: Page, key: str) -> Page:
    """Click the metadata row's link as a person would (it opens a new tab); the loaded new tab."""
    link = metadata_row(page, key).locator("a[href]").first
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.set_default_timeout(TIMEOUT_MS)
    tab.wait_for_load_state()
    return tab


def wait_for_mlflow_version(tab: Page, model_name: str, version: int) -> None:
    """MLflow's model version page has loaded the version (its title and the model's breadcrumb)."""
    tab.get_by_text(f"Version {version}", exact=True).first.wait_for()
    tab.get_by_text(model_name, exact=True).first.wait_for()


def wait_for_model_card(tab: Page, model_name: str, version: int) -> Locator:
    """MLflow's view of the run's files shows the version's HTML model card (in its frame); its title."""
    title = tab.frame_locator("iframe").first.get_by_text(
        f"Model card: {model_name} version {version}", exact=True
    )
    title.wait_for()
    return title


def close_mlflow_assistant(tab: Page) -> None:
    """MLflow 3 opens its assistant panel beside every page; a screenshot is clearer without it."""
    tab.wait_for_timeout(2000)  # the panel slides in after the page (cosmetic: screenshots only)
    if tab.locator('button[aria-label="New Chat"]').count():
        tab.locator('button[aria-label="Close"]').last.click()
        tab.wait_for_timeout(500)
