"""Metadata shared by every domain: readable table previews and chart images for the UI."""

import re
from pathlib import Path

import altair as alt
import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output

from lms_assets.defs.gate import exclusion_metadata
from lms_assets.graphs import render

PREVIEW_ROWS = 25
# Every materialization's metadata is kept in the event log for good: a preview holds at most
# PREVIEW_ROWS rows of PREVIEW_CELL_CHARS characters per column, whatever a cell of the input holds.
PREVIEW_CELL_CHARS = 500


# Backslash-escaped, a punctuation character is shown as itself (CommonMark): the UI then shows a cell as
# stored, instead of rendering markup, emphasis, links or entities in it or sanitising them away. A pipe
# would end the table cell, a newline the row.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>|~&!#])")


def escape_markdown(text: str) -> str:
    """``text`` shown as itself wherever Dagster renders Markdown (check and asset descriptions, Markdown
    metadata): every Markdown and HTML character backslash-escaped, line breaks folded to spaces."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _cell(value: object) -> str:
    return escape_markdown(render.cell_text(value, max_items=20, max_chars=PREVIEW_CELL_CHARS))


# Polars names a bare count ``len``; a reader looks for ``n``.
_HEADER_NAMES = {"len": "n"}


def _reader_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Key and value columns first, list columns (patient ids, terms) last: long cells never push the
    estimates out of the visible part of the preview."""
    lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    return frame.select([c for c in frame.columns if c not in lists] + lists)


def markdown_table(frame: pl.DataFrame, limit: int = PREVIEW_ROWS) -> str:
    """A markdown table of the first ``limit`` rows, saying how many were left out."""
    shown = _reader_order(frame.head(limit))
    lines = [
        "| " + " | ".join(_cell(_HEADER_NAMES.get(c, c)) for c in shown.columns) + " |",
        "|" + "---|" * len(shown.columns),
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.iter_rows()),
    ]
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows not shown; the full table is in DuckDB._")
    return "\n".join(lines)


def preview(frame: pl.DataFrame, limit: int = PREVIEW_ROWS) -> MetadataValue:
    """A capped, readable preview of a table for the materialization's metadata."""
    return MetadataValue.md(markdown_table(frame, limit))


# The UI shows the PNG in a dialog about 730 px wide; at twice the chart's size with larger type it stays
# legible there and is sharp when opened on its own (at least 600 px wide for every chart).
PNG_SCALE = 2.0


def legible(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Larger axis and legend type, and legend labels never cut short ("…(publish…")."""
    return chart.configure_axis(labelFontSize=13, titleFontSize=14).configure_legend(labelFontSize=13, titleFontSize=13, labelLimit=0, symbolLimit=0)


def chart_output(chart: alt.TopLevelMixin, title: str, data_cut: str, outputs: Path, **extra) -> Output[render.Chart]:
    """A chart asset's output: the chart rendered to PNG once, those bytes shown inline in the UI (the first entry,
    so it heads the asset page's metadata) and returned in a ``render.Chart`` for the chart IO manager and the
    report, beside the path of its interactive HTML in the outputs folder ``outputs``."""
    context = AssetExecutionContext.get()
    name = context.asset_key.path[-1]
    chart = legible(chart)
    png, html_path = render.render_chart(chart, outputs / "charts" / f"{name}.html", scale=PNG_SCALE)
    html = str(html_path.resolve())
    value = render.Chart(name, title, context.assets_def.descriptions_by_key.get(context.asset_key, ""), data_cut, png, html)
    return Output(
        value,
        metadata={
            "chart": MetadataValue.md(render.markdown_image(png, title)),
            "interactive_html": MetadataValue.path(html),
            "data_cut": MetadataValue.text(data_cut),
            **extra,
        },
    )


def table_output(frame: pl.DataFrame, shown: pl.DataFrame | None = None, limit: int = PREVIEW_ROWS, **extra) -> Output:
    """A table asset's output with the metadata every table carries: row count and a capped preview (of ``shown``),
    and, where the study lets quarantined rows be left out, how many patients were (``gate.exclusion_metadata``)."""
    return Output(
        frame,
        metadata={
            "dagster/row_count": frame.height,
            "preview": preview(frame if shown is None else shown, limit),
            **exclusion_metadata(AssetExecutionContext.get()),
            **extra,
        },
    )
