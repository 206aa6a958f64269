"""ReportIOManager on a local folder and on the loopback S3 server: documented keys, HTML that parses, summaries back."""

from html.parser import HTMLParser

import dagster as dg

from claims_platform.monitoring.reports import RenderedReport
from claims_platform.storage.report_io_manager import ReportIOManager
from claims_platform_tests.storage.conftest import StorageBackend

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
DAYS = ["2025-01-01", "2025-01-02", "2025-01-03"]
HTML = "<!DOCTYPE html><html><head><title>{day}</title></head><body><p>drift {day}</p></body></html>"


@dg.asset(partitions_def=DAILY, io_manager_key="reports", backfill_policy=dg.BackfillPolicy.single_run())
def daily_report(context: dg.AssetExecutionContext) -> dict[str, RenderedReport]:
    return {
        day: RenderedReport(
            html=HTML.format(day=day),
            snapshot='{"metric_results": {}}',
            summary={"day": day, "drifted": day == DAYS[1]},
        )
        for day in context.partition_keys
    }


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
def drifted_days(daily_report: dict[str, dict]) -> None:
    drifted_days.loaded = daily_report  # type: ignore[attr-defined]


def _run(backend: StorageBackend, *assets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(assets) if len(assets) > 1 else [*assets],
        resources={"reports": ReportIOManager(base_path=backend.base_path, s3=backend.s3)},
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
        selection=list(assets),
    )


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_each_day_gets_a_folder_with_html_snapshot_and_summary(backend: StorageBackend):
    assert _run(backend, daily_report).success
    expected = sorted(
        f"daily_report/{d}/{f}" for d in DAYS for f in ("report.html", "snapshot.json.gz", "summary.json")
    )
    assert backend.stored_files() == expected
    parser = _Tags()
    parser.feed(backend.read_bytes("daily_report/2025-01-02/report.html").decode())
    assert {"html", "head", "body", "p"} <= set(parser.tags)
    assert backend.read_json("daily_report/2025-01-02/summary.json") == {"day": "2025-01-02", "drifted": True}


def test_a_downstream_asset_loads_each_days_summary_with_where_its_report_is(backend: StorageBackend):
    assert _run(backend, daily_report).success
    result = dg.materialize(
        [daily_report.to_source_asset(), drifted_days],
        resources={"reports": ReportIOManager(base_path=backend.base_path, s3=backend.s3)},
        tags={"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
    )
    assert result.success
    loaded = drifted_days.loaded  # type: ignore[attr-defined]
    assert [loaded[d]["drifted"] for d in DAYS] == [False, True, False]
    assert loaded[DAYS[0]]["report_path"] == backend.full_path(f"daily_report/{DAYS[0]}/report.html")


def test_files_the_reports_share_are_stored_once_beside_the_days_and_never_rewritten(backend, tmp_path):
    library = tmp_path / "library.js"
    library.write_text("var drawn = true;")

    @dg.asset(partitions_def=DAILY, io_manager_key="reports", backfill_policy=dg.BackfillPolicy.single_run())
    def shared_report(context: dg.AssetExecutionContext) -> dict[str, RenderedReport]:
        return {
            day: RenderedReport(
                html=f'<html><body><script src="../_shared/lib-1.js"></script>{day}</body></html>',
                snapshot="{}",
                summary={"day": day},
                shared={"lib-1.js": library},
            )
            for day in context.partition_keys
        }

    assert _run(backend, shared_report).success
    files = backend.stored_files()
    assert [f for f in files if "_shared" in f] == ["shared_report/_shared/lib-1.js"]
    assert len([f for f in files if f.endswith("report.html")]) == len(DAYS)
    assert backend.read_bytes("shared_report/_shared/lib-1.js") == b"var drawn = true;"
    library.write_text("changed content would have a new name")
    assert _run(backend, shared_report).success  # a name already stored is not written again
    assert backend.read_bytes("shared_report/_shared/lib-1.js") == b"var drawn = true;"
    assert not [f for f in backend.stored_files() if "staging" in f]
