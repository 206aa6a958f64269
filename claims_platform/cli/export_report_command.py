"""`claims-platform export-report DAY|MONTH`: a stored Evidently report as ONE standalone HTML file.

A stored report refers to Evidently's script bundle, kept once per report asset in ``_shared/``
(:mod:`claims_platform.monitoring.report_html`); this writes the day's drift report (``YYYY-MM-DD``) or
the month's performance report (``YYYY-MM``) with the bundle inlined again: a file to mail or attach that
opens in any browser, offline.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from claims_platform.cli.errors import UserError
from claims_platform.core import settings

DRIFT_REPORT = "applications_drift_report"
PERFORMANCE_REPORT = "model_performance"


def report_folder(when: str) -> tuple[str, str]:
    """The report asset and partition of ``when``: a day's drift report or a month's performance report."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
        return DRIFT_REPORT, when
    if re.fullmatch(r"\d{4}-\d{2}", when):
        return PERFORMANCE_REPORT, f"{when}-01"
    raise UserError(
        f"{when!r} is neither a day (YYYY-MM-DD: its drift report) nor a month (YYYY-MM: its performance report)"
    )


def cmd_export_report(args: argparse.Namespace) -> int:
    """Write the standalone HTML of the stored report of ``args.when`` to ``args.out`` (or stdout for -)."""
    from claims_platform.core.redaction import redact_url
    from claims_platform.monitoring.report_html import standalone
    from claims_platform.storage.locations import storage_root
    from claims_platform.storage.report_io_manager import REPORT_FILE, SHARED_FOLDER

    asset, partition = report_folder(args.when)
    url = settings.default_storage_url()
    folder = storage_root(url) / asset
    stored = folder / partition / REPORT_FILE
    if not stored.exists():
        raise UserError(
            f"no {asset} report for {args.when} under {redact_url(url)}: run the platform on that "
            f"{'day' if asset == DRIFT_REPORT else 'month'} first (claims-platform run, or make demo)"
        )
    html = standalone(stored.read_text(encoding="utf-8"), folder / SHARED_FOLDER)
    out = args.out or f"{asset}-{args.when}.html"
    if out == "-":
        sys.stdout.write(html)
        return 0
    Path(out).write_text(html, encoding="utf-8")
    print(f"Wrote {out} ({len(html.encode()) / 1e6:.1f} MB, opens offline in any browser)")
    return 0
