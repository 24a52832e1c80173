"""Rendering Altair charts for the Dagster UI (PNG in markdown) and for people (standalone HTML)."""

from __future__ import annotations

import base64
from pathlib import Path

import altair as alt
import vl_convert as vlc


def png_bytes(chart: alt.TopLevelMixin, scale: float = 1.0) -> bytes:
    """The chart as a PNG image, rendered offline by vl-convert."""
    return vlc.vegalite_to_png(chart.to_json(), scale=scale)


def markdown_image(png: bytes, alt_text: str) -> str:
    """Markdown that shows a PNG inline in Dagster's metadata panel (the quickstart pattern)."""
    return f"![{alt_text}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def save_html(chart: alt.TopLevelMixin, path: Path) -> Path:
    """A standalone interactive HTML file with Vega inlined, so it opens without a network."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    chart.save(str(tmp), format="html", inline=True)
    tmp.replace(path)
    return path


def cell_text(value: object, max_items: int | None = None) -> str:
    """A table cell for people: floats to 4 significant digits, lists joined (capped at ``max_items``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = value if max_items is None else value[:max_items]
        text = ", ".join(str(v) for v in shown)
        return text + (f", … ({len(value)} in all)" if len(shown) < len(value) else "")
    return str(value)
