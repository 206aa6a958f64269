"""Helpers for what assets show in the Dagster UI."""

import base64

import dagster as dg


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG image inline in a markdown metadata value (the UI renders it; no file to host)."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")
