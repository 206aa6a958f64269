"""Helpers for what assets show in the Dagster UI."""

import base64

import dagster as dg


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG image inline in a markdown metadata value (the UI renders it; no file to host)."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def figure_markdown(fig, alt: str) -> dg.MarkdownMetadataValue:
    """A matplotlib figure as an inline PNG (see :func:`png_markdown`); the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_markdown(buffer.getvalue(), alt)
