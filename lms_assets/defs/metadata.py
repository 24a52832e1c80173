"""Metadata shared by every domain: readable table previews for the UI."""

import re

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output, TableColumn, TableMetadataValue, TableRecord, TableSchema

from lms_assets.defs.gate import exclusion_metadata
from lms_assets.graphs import render
from lms_assets.tables.printed import fixed

PREVIEW_ROWS = 25
# Every materialization's metadata is kept in the event log for good: a preview holds at most
# PREVIEW_ROWS rows of PREVIEW_CELL_CHARS characters per column, whatever a cell of the input holds.
PREVIEW_CELL_CHARS = 500
# Decimals of every float in a preview: the paper prints at most one or two, and a reader sees one digit more.
PREVIEW_DECIMALS = 2


# Polars names a bare count ``len``; a reader looks for ``n``.
_HEADER_NAMES = {"len": "n"}
# A bound the estimate does not give (an upper confidence limit not reached), as R prints it.
MISSING_BOUND = "NA"
# A lower and upper bound become one "lo–hi" cell: ci_lower/ci_upper → ci, hr_ci_lower/hr_ci_upper → hr_ci.
_LOWER = re.compile(r"^(.*)_lower(.*)$")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return fixed(value, PREVIEW_DECIMALS)
    return render.cell_text(value, max_items=20, max_chars=PREVIEW_CELL_CHARS)


def _reader_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as a reader scans it: each bound pair as one interval cell, list columns (patient ids, terms) last,
    so long cells never push the estimates out of sight."""
    pairs = {}
    for name in frame.columns:
        match = _LOWER.match(name)
        if match and (upper := f"{match[1]}_upper{match[2]}") in frame.columns:
            pairs[name] = (f"{match[1]}{match[2]}", upper)
    uppers = {upper for _, upper in pairs.values()}
    cells = []
    for name in frame.columns:
        if name in pairs:
            label, upper = pairs[name]
            bounds = zip(frame[name].to_list(), frame[upper].to_list())
            # Word joiners keep "2.96–5.24" on one line: a browser may break after an en dash.
            shown = [
                "" if lo is None and hi is None else "\u2060–\u2060".join(MISSING_BOUND if b is None else _cell(b) for b in (lo, hi))
                for lo, hi in bounds
            ]
            cells.append((label, shown))
        elif name not in uppers:
            cells.append((_HEADER_NAMES.get(name, name), [_cell(v) for v in frame[name].to_list()]))
    lists = {_HEADER_NAMES.get(c, c) for c, t in frame.schema.items() if isinstance(t, pl.List)}
    ordered = [c for c in cells if c[0] not in lists] + [c for c in cells if c[0] in lists]
    return pl.DataFrame(dict(ordered), schema=dict.fromkeys(dict(ordered), pl.String))


def preview(frame: pl.DataFrame, limit: int = PREVIEW_ROWS) -> TableMetadataValue:
    """The first ``limit`` rows as a table the UI shows on the page: every cell text, floats at PREVIEW_DECIMALS
    places (half up), each interval one cell."""
    shown = _reader_frame(frame.head(limit))
    schema = TableSchema(columns=[TableColumn(name, "string") for name in shown.columns])
    return MetadataValue.table([TableRecord(row) for row in shown.iter_rows(named=True)], schema=schema)


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
