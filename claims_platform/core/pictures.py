"""Pictures that assets show inline in the Dagster UI: PNG markdown, sparklines and bars.

What the Dagster 1.13 UI shows inline in a materialization's metadata table (the asset's Overview,
Events and Partitions pages; ``MetadataEntry.tsx`` of dagster-webserver, checked with screenshots,
see docs/architecture.md):

- numbers, text, URLs and paths: always, as they are (a float is shown unrounded, so round it first);
- a table (``MetadataValue.table``): always, as a table;
- markdown SHORTER than :data:`INLINE_MARKDOWN_CHARS` characters, images included (``data:`` PNG or
  SVG too); longer markdown is a "[Show Markdown]" link that opens a dialog. A readable matplotlib
  chart is tens of kB, so it is always one click away; a sparkline drawn here fits inline;
- JSON under 1,000 characters, and column schemas of fewer than 5 columns; longer ones are links.

Every numeric entry is also graphed by the UI's "Plots" view of the asset, by partition (the latest
120 partitions) or by time: a day's own numbers on its own partition make that picture.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import dagster as dg

# Markdown this long or longer is a "[Show Markdown]" link in the UI's metadata tables, not shown inline.
INLINE_MARKDOWN_CHARS = 1000

# Sparkline colours (palette PNG), readable on the UI's light and dark themes: transparent background,
# band, line, marks inside the band, marks outside it / over the limit, the limit.
_PALETTE = (255, 255, 255, 198, 219, 239, 31, 119, 180, 44, 160, 44, 214, 39, 40, 127, 127, 127)
_BACKGROUND, _BAND, _LINE, _MARK, _ALERT, _LIMIT = range(6)


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG image in a markdown metadata value (no file to host).

    The UI shows it inline only when the whole markdown is under :data:`INLINE_MARKDOWN_CHARS`
    characters (a sparkline); a full chart is behind a "[Show Markdown]" link that opens it.
    """
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def figure_markdown(fig, alt: str) -> dg.MarkdownMetadataValue:
    """A matplotlib figure as a PNG in markdown (see :func:`png_markdown`: one click away); the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_markdown(buffer.getvalue(), alt)


def is_inline(value: dg.MarkdownMetadataValue) -> bool:
    """Whether the UI shows this markdown in the metadata table itself rather than behind a link."""
    return len(value.md_str) < INLINE_MARKDOWN_CHARS


# ----------------------------------------------------------------------------------- sparklines


def sparkline_markdown(
    values: Sequence[float],
    alt: str,
    *,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    marks: Sequence[float] | None = None,
    height: int = 32,
) -> dg.MarkdownMetadataValue:
    """A small line chart the UI shows inline: ``values`` as a line, an optional band from ``low`` to
    ``high`` (e.g. a 95% interval) and optional dots at ``marks`` (e.g. what actually happened).

    Drawn as a 5-colour palette PNG (a few hundred bytes), narrowed until the markdown fits under
    :data:`INLINE_MARKDOWN_CHARS`. The picture has no axes: put the numbers beside it.
    """
    values, low, high, marks = (
        None if s is None else [float(v) for v in s] for s in (values, low, high, marks)
    )
    series = [s for s in (values, low, high, marks) if s is not None]
    n = len(values)
    if n == 0 or any(len(s) != n for s in series):
        raise ValueError(
            "sparkline_markdown needs values and, if given, low/high/marks of the same non-zero length"
        )
    finite = [v for s in series for v in s if math.isfinite(v)]
    bottom, top = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if top == bottom:
        bottom, top = bottom - 1.0, top + 1.0

    def draw(step: int) -> bytes:
        from PIL import Image, ImageDraw

        width = step * (n - 1) + 5
        image = Image.new("P", (width, height), _BACKGROUND)
        image.putpalette(_PALETTE)
        pen = ImageDraw.Draw(image)

        def xy(i: int, v: float) -> tuple[int, int]:
            return 2 + i * step, round(2 + (height - 5) * (top - v) / (top - bottom))

        if low is not None and high is not None:
            for i in range(n):
                if math.isfinite(low[i]) and math.isfinite(high[i]):
                    x, y_high = xy(i, high[i])
                    pen.rectangle([x - step // 2, y_high, x + (step - 1) // 2, xy(i, low[i])[1]], fill=_BAND)
        line = [xy(i, v) for i, v in enumerate(values) if math.isfinite(v)]
        if len(line) > 1:
            pen.line(line, fill=_LINE, width=1)
        for i, v in enumerate(marks or ()):
            if math.isfinite(v):
                x, y = xy(i, v)
                outside = low is not None and high is not None and not (low[i] <= v <= high[i])
                pen.rectangle([x - 1, y - 1, x + 1, y + 1], fill=_ALERT if outside else _MARK)
        return _png_bytes(image)

    return _fitted(draw, alt, n)


def bars_markdown(ratios: Sequence[float], alt: str, *, height: int = 32) -> dg.MarkdownMetadataValue:
    """Small bars the UI shows inline: each value as a share of its limit (1.0 = at the limit), drawn
    red above the limit, which a grey line marks. E.g. each column's drift score / threshold."""
    ratios = [float(r) for r in ratios]
    if not ratios:
        raise ValueError("bars_markdown needs at least one value")
    top = max(1.25, max((r for r in ratios if math.isfinite(r)), default=0.0))

    def draw(step: int) -> bytes:
        from PIL import Image, ImageDraw

        width = step * len(ratios) + 1
        image = Image.new("P", (width, height), _BACKGROUND)
        image.putpalette(_PALETTE)
        pen = ImageDraw.Draw(image)

        def y(ratio: float) -> int:
            return round((height - 1) * (1 - min(ratio, top) / top))

        for i, ratio in enumerate(ratios):
            if not math.isfinite(ratio) or ratio <= 0:
                continue
            x0, x1 = i * step, i * step + max(step - 2, 0)
            pen.rectangle([x0, y(min(ratio, 1.0)), x1, height - 1], fill=_LINE)
            if ratio > 1.0:
                pen.rectangle([x0, y(ratio), x1, y(1.0)], fill=_ALERT)
        pen.line([(0, y(1.0)), (width - 1, y(1.0))], fill=_LIMIT, width=1)
        return _png_bytes(image)

    return _fitted(draw, alt, len(ratios))


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, transparency=_BACKGROUND)
    return buffer.getvalue()


def _fitted(draw, alt: str, points: int) -> dg.MarkdownMetadataValue:
    """The widest drawing (up to 6 px a point) whose markdown the UI still shows inline."""
    for step in (6, 5, 4, 3, 2, 1):
        if points * step > 400 and step > 1:
            continue
        value = png_markdown(draw(step), alt)
        if is_inline(value):
            return value
    raise ValueError(f"{alt!r}: {points} points do not fit in a sparkline the UI shows inline")
