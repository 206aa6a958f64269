"""A report's HTML without Evidently's script bundle in it (pure string work, no Evidently run).

Evidently's standalone HTML inlines its UI bundle (3.4 MB of JavaScript) and its icon font (0.1 MB) into
every report: a year of daily drift reports was 1.4 GB of the same 3.5 MB. A stored report instead
refers to ONE copy of each, kept in the report asset's ``_shared/`` folder beside the partitions'
folders (:data:`~claims_platform.storage.report_io_manager.SHARED_FOLDER`)::

    <storage>/applications_drift_report/_shared/evidently-0.7.x-<hash>.js
    <storage>/applications_drift_report/2026-03-04/report.html     <script src="../_shared/evidently-…js">

so a day's report.html still opens in a browser with no network (a page read from disk may load a script
from a folder beside it), from the storage folder or from a copy of the asset's folder. The files are
named by their content, so a newer Evidently adds its own and never changes what an older report reads.
:func:`standalone` inlines them again: one file to mail or attach (``claims-platform export-report``).

The report's own data (its widgets and their plots: ~35 KB of JSON per column's distribution, floats at
full precision) is inlined gzipped and base64-encoded, and the page inflates it with the browser's own
``DecompressionStream`` before Evidently draws it: a sixth of the size (Chromium, Firefox and Safari have
had it since 2020–2023). A page whose data block is not where Evidently's template puts it keeps its data
as it is: bigger, never broken.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from claims_platform.storage.report_io_manager import SHARED_FOLDER


@dataclass(frozen=True)
class SharedFile:
    """A file Evidently inlines into each report: how it is inlined, and how a stored report refers to it."""

    name: str  # in SHARED_FOLDER; named by content
    source: Path  # where it is read from to be stored
    inlined: str
    referred: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@cache
def library() -> tuple[SharedFile, ...]:
    """Evidently's script bundle and icon font, as its standalone HTML inlines them."""
    import evidently

    from claims_platform.adapters.evidently_internals import html_library_files

    files = html_library_files()
    script, font = files["script"].read_bytes(), files["font"].read_bytes()
    script_name = f"evidently-{evidently.__version__}-{_digest(script)}.js"
    font_name = f"material-ui-icons-{_digest(font)}.woff2"
    return (
        SharedFile(
            script_name,
            files["script"],
            f"<script>{script.decode('utf-8')}</script>",
            f'<script src="../{SHARED_FOLDER}/{script_name}"></script>',
        ),
        SharedFile(
            font_name,
            files["font"],
            f"url(data:font/ttf;base64,{base64.b64encode(font).decode()})",
            f"url(../{SHARED_FOLDER}/{font_name})",
        ),
    )


def for_storage(html: str) -> tuple[str, dict[str, Path]]:
    """Evidently's standalone HTML as a report stores it: its data compressed, its library shared (the
    files it refers to, by name)."""
    html, shared = referring(html)
    return compressed_data(html), shared


# Evidently's template: the data block (two globals holding JSON, one line each) and the call that draws it.
_DATA = re.compile(r"<script>\s*var (metric_\w+) = (.+);\n\s*var additional_graphs_\1 = (.+);\n</script>")
_DRAW = re.compile(
    r"window\.drawDashboard\((metric_\w+),\s*new Map\(Object\.entries\(additional_graphs_\1\)\),\s*\"root_\1\"\s*\);"
)
_INFLATE = """(async () => {{
        const bytes = Uint8Array.from(atob(claimsReportData), (c) => c.charCodeAt(0));
        const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        const [info, graphs] = JSON.parse(await new Response(inflated).text());
        window.drawDashboard(info, new Map(Object.entries(graphs)), "root_{id}");
    }})();"""


def compressed_data(html: str) -> str:
    """``html`` with Evidently's data block gzipped and base64-encoded, inflated by the page before it draws."""
    data, draw = _DATA.search(html), _DRAW.search(html)
    if data is None or draw is None or data.group(1) != draw.group(1):
        return html
    payload = f"[{data.group(2)},{data.group(3)}]".encode()
    encoded = base64.b64encode(gzip.compress(payload, compresslevel=9, mtime=0)).decode()
    html = html[: draw.start()] + _INFLATE.format(id=draw.group(1)) + html[draw.end() :]
    return html[: data.start()] + f'<script>var claimsReportData = "{encoded}";</script>' + html[data.end() :]


def referring(html: str) -> tuple[str, dict[str, Path]]:
    """``html`` (Evidently's standalone HTML) with each inlined library file replaced by a reference to its
    shared copy, and those files by name. A file not found inlined stays as it is (the report is then
    standalone and large, never broken)."""
    shared: dict[str, Path] = {}
    for file in library():
        if file.inlined in html:
            html = html.replace(file.inlined, file.referred, 1)
            shared[file.name] = file.source
    return html, shared


_SCRIPT = re.compile(rf'<script src="\.\./{SHARED_FOLDER}/([^"/]+\.js)"></script>')
_FONT = re.compile(rf"url\(\.\./{SHARED_FOLDER}/([^)/]+\.woff2)\)")


def standalone(html: str, shared_folder: Path) -> str:
    """A stored report's HTML as one file again: each shared file it refers to inlined from
    ``shared_folder`` (the asset's ``_shared/``), as Evidently inlines it."""

    def script(match: re.Match) -> str:
        return "<script>" + (shared_folder / match.group(1)).read_text(encoding="utf-8") + "</script>"

    def font(match: re.Match) -> str:
        data = base64.b64encode((shared_folder / match.group(1)).read_bytes()).decode()
        return f"url(data:font/ttf;base64,{data})"

    return _FONT.sub(font, _SCRIPT.sub(script, html))
