"""A tiny code location for looking at how the Dagster UI renders each kind of metadata value.

Not collected by pytest (no ``test_`` prefix). Used by hand, for the findings in docs/architecture.md:

    export DAGSTER_HOME=/tmp/ui_home     # an empty folder
    .venv/bin/python -m claims_platform_tests.scoring.ui_render_defs             # materializes the last week
    .venv/bin/dagster-webserver -m claims_platform_tests.scoring.ui_render_defs -h 127.0.0.1 -p 3999

then open ``/assets/ui_probe?view=partitions&partition=<day>`` (every raw form) and
``/assets/platform_forms?view=partitions&partition=<day>`` (what the platform's helpers emit), and the
Overview's Metadata "Plots" toggle, with a browser or headless Chromium.
"""

import base64
import io
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd

from claims_platform.core import figures, pictures, table_schemas

# The last week before today: the UI's "Plots by partition" view graphs the latest 120 partition keys.
DAYS = dg.DailyPartitionsDefinition(start_date=(date.today() - timedelta(days=7)).isoformat())


def _matplotlib_png(width: int, height: int) -> bytes:
    """A small chart drawn with matplotlib, as PNG bytes (a few kB even at this size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width / 80, height / 80), dpi=80)
    ax.plot([1, 3, 2, 5, 4, 6], color="tab:blue")
    ax.fill_between(range(6), [0, 2, 1, 4, 3, 5], [2, 4, 3, 6, 5, 7], alpha=0.2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _raw_forms(n: int) -> dict:
    """Every raw metadata form once: which ones does the UI show inline?"""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='24'>"
        "<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='0,20 20,12 40,16 60,4 80,8 100,2 120,6'/></svg>"
    )
    return {
        "md_png_big": pictures.png_markdown(_matplotlib_png(400, 240), "big"),
        "md_svg_base64": dg.MetadataValue.md(
            f"![svg](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
        ),
        "md_svg_url_encoded": dg.MetadataValue.md(
            f"![svg](data:image/svg+xml;utf8,{svg.replace('<', '%3C').replace('>', '%3E')})"
        ),
        "md_http_image": dg.MetadataValue.md("![http](http://127.0.0.1:3999/favicon.png)"),
        "md_table": dg.MetadataValue.md(
            "| day | claims |\n|---|---:|\n| 2026-01-01 | 20.1 |\n| 2026-01-02 | 22.4 |"
        ),
        "text_sparkline": "▁▃▂▅▄▇ 20.1 → 22.4 claims",
        "json_small": dg.MetadataValue.json({"income": 0.21, "age": 0.12}),
        "table": dg.MetadataValue.table(
            records=[
                dg.TableRecord({"day": "2026-01-01", "claims": 20.1}),
                dg.TableRecord({"day": "2026-01-02", "claims": 22.4}),
            ],
            schema=dg.TableSchema(
                columns=[dg.TableColumn("day", "string"), dg.TableColumn("claims", "float")]
            ),
        ),
        "url": dg.MetadataValue.url("https://example.com/report.html"),
        "float_unrounded": 20.0 + n / 7,
        "expected_claims": round(20.0 + n * 1.37, 1),
    }


def _platform_forms(day: str, n: int) -> dict:
    """What the platform's helpers emit for a day: a reserve forecast, a drift picture, a backtest, a schema."""
    from claims_platform.scoring.assets import forecast_metadata

    rng = np.random.default_rng(n)
    expected = 18.0 + n
    row = {
        "accept_count": 1000 + n,
        "refer_count": 150,
        "decline_count": 50,
        "accepted_expected_claims": expected,
        "accepted_claims_low": int(expected) - 8,
        "accepted_claims_high": int(expected) + 9,
        "accepted_reserve": expected * 12_000,
        "accepted_reserve_low": (int(expected) - 8) * 12_000,
        "accepted_reserve_high": (int(expected) + 9) * 12_000,
        "all_expected_claims": expected + 60.3,
        "all_reserve": (expected + 60.3) * 12_000,
        "average_claim_cost": 12_000.0,
        "currency": "GBP",
    }
    daily = rng.uniform(15, 25, 31)
    applications = pd.DataFrame(
        {"application_id": ["a"], "application_date": [date.today()], "income": [1], "income level": [0]}
    )
    return {
        **forecast_metadata(row),
        "column_drift": pictures.bars_markdown(
            list(rng.uniform(0, 1.4, 40)), "drift score / threshold per column"
        ),
        "backtest_days": pictures.sparkline_markdown(
            daily, "backtest", low=daily - 8, high=daily + 8, marks=daily + rng.normal(0, 6, 31)
        ),
        "drift_share": figures.percent(0.025 * n),
        "dagster/row_count": 1000 + n,
        "dagster/column_schema": table_schemas.table_schema(applications),
    }


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def ui_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One materialization per day, each with every raw kind of metadata value."""
    for i, day in enumerate(context.partition_keys):
        context.add_asset_metadata(_raw_forms(i), partition_key=day)
    return dg.MaterializeResult()


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def platform_forms(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One materialization per day, with what claims_platform's metadata helpers emit."""
    for i, day in enumerate(context.partition_keys):
        context.add_asset_metadata(_platform_forms(day, i), partition_key=day)
    return dg.MaterializeResult()


defs = dg.Definitions(assets=[ui_probe, platform_forms])


if __name__ == "__main__":
    from claims_platform_tests.dagster_helpers import range_tags

    keys = DAYS.get_partition_keys()
    result = dg.materialize(
        [ui_probe, platform_forms], instance=dg.DagsterInstance.get(), tags=range_tags(keys[0], keys[-1])
    )
    print("materialized", result.success, keys[0], "to", keys[-1])
