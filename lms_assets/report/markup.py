"""The HTML building blocks of the study report and the trace page: escaped text, bounded tables, the shared style.

Data-borne text is escaped and clipped wherever it is written, and a long table is cut and folded, so no input can
make the page unbounded or inject markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import polars as pl

from lms_assets.graphs import render

# Data-borne text in the page is escaped and clipped: a table row shows at most REPORT_CELL_CHARS characters
# of a cell (the full value stays in the warehouse), and a long table at most REPORT_TABLE_ROWS rows.
REPORT_CELL_CHARS = 1000
REPORT_TABLE_ROWS = 500
# A table longer than this is an appendix: folded (closed) in a <details> element, so the page reads as a document
# and the table of contents says what is folded; a reader opens it with a click, and print CSS prints it open.
FOLDED_ROWS = 40


def text_html(value: object) -> str:
    """``value`` as HTML text: escaped, clipped at REPORT_CELL_CHARS."""
    return html.escape(render.clip("" if value is None else str(value), REPORT_CELL_CHARS))


# A run of more non-space characters than this (data-borne text; a SHA-256 is 64) gets break opportunities, so that
# no cell's narrowest width pushes its table past the page, while words and numbers are never split.
LONGEST_UNBROKEN = 64
_LONG_RUN = re.compile(rf"\S{{{LONGEST_UNBROKEN + 1},}}")


def cell_html(value: object) -> str:
    """A table cell's text, escaped, with ``<wbr>`` every LONGEST_UNBROKEN // 2 characters of an over-long run."""
    text = render.clip("" if value is None else str(value), REPORT_CELL_CHARS)
    parts, end = [], 0
    step = LONGEST_UNBROKEN // 2
    for run in _LONG_RUN.finditer(text):
        parts.append(html.escape(text[end : run.start()]))
        parts.append("<wbr>".join(html.escape(run[0][i : i + step]) for i in range(0, len(run[0]), step)))
        end = run.end()
    return "".join(parts) + html.escape(text[end:])


def cut_words(cuts: Sequence[object]) -> str:
    """The data cut(s) a table rests on, for its caption."""
    named = [str(c) for c in cuts if c not in (None, "")]
    if not named:
        return "no data cut"
    return f"data cut {named[0]}" if len(named) == 1 else f"data cuts {', '.join(named)}"


def table_html(
    frame: pl.DataFrame,
    caption: str = "",
    row_class: str | None = None,
    table_class: str = "",
    *,
    group_by: Sequence[str] = (),
    details: Sequence[str] = (),
    anchor: str | None = None,
) -> str:
    """A plain HTML table of the first REPORT_TABLE_ROWS rows, saying how many more there are. Cells wrap (see
    STYLE): no table is wider than the page.

    ``row_class`` names a column whose value becomes the row's CSS class(es). Compact forms for long tables:
    consecutive rows sharing the ``group_by`` columns' values get one heading row naming them instead of repeating
    them on every row, and the ``details`` columns (long text) go in a full-width line under their row rather than
    a narrow column. ``anchor`` is the table's id, for the table of contents. Over FOLDED_ROWS rows, folded.
    """
    hidden = {row_class, *group_by, *details}
    columns = [c for c in frame.columns if c not in hidden]
    head = "".join(f"<th>{text_html(c)}</th>" for c in columns)
    rows, group = [], None
    for record in frame.head(REPORT_TABLE_ROWS).iter_rows(named=True):
        css = f' class="{text_html(record[row_class])}"' if row_class and record[row_class] else ""
        if group_by and (key := tuple(record[c] for c in group_by)) != group:
            group = key
            named = [
                render.cell_text(v) if i == 0 else f"{c}: {render.cell_text(v)}" for i, (c, v) in enumerate(zip(group_by, key)) if v not in (None, "")
            ]
            rows.append(f'<tr class="group"><th colspan="{len(columns)}" scope="rowgroup">{cell_html(" — ".join(named))}</th></tr>')
        rows.append(f"<tr{css}>" + "".join(f"<td>{cell_html(render.cell_text(record[c]))}</td>" for c in columns) + "</tr>")
        notes = [f"<strong>{text_html(c)}:</strong> {cell_html(render.cell_text(record[c]))}" for c in details if record[c] not in (None, "")]
        if notes:
            detail_css = f"detail {record[row_class]}" if row_class and record[row_class] else "detail"
            rows.append(f'<tr class="{text_html(detail_css)}"><td colspan="{len(columns)}">{"<br>".join(notes)}</td></tr>')
    if frame.height > REPORT_TABLE_ROWS:
        more = frame.height - REPORT_TABLE_ROWS
        rows.append(f'<tr><td colspan="{len(columns)}">{more} more rows not shown; the full table is in the warehouse.</td></tr>')
    caption_html = f"<caption>{text_html(caption)}</caption>" if caption else ""
    table_id = f' id="{text_html(anchor)}"' if anchor else ""
    table = f'<table{table_id} class="{table_class}">{caption_html}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    if frame.height > FOLDED_ROWS:
        return f"<details><summary>{text_html(caption)} — {frame.height} rows, folded: click to open</summary>{table}</details>"
    return table


# The page's own tables (``table_html``) are styled here; Tables 1, 2 and 4 are great_tables tables (``tables``), styled
# by their own scoped rules, save for the lines below that keep their values on one line and mark each printed value.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 1200px; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table:not(.gt_table) { border-collapse: collapse; margin: .8rem 0 1.4rem; font-size: .85rem; max-width: 100%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
table:not(.gt_table) :is(th, td) { border: 1px solid #d0d0d0; padding: .25rem .45rem; vertical-align: top; text-align: left; overflow-wrap: break-word; }
table:not(.gt_table) thead th { background: #f1f3f5; }
.gt_table td.gt_row { white-space: nowrap; font-variant-numeric: tabular-nums; }
.printed { padding: 0 .2em; border-radius: 2px; } .printed.reconstructed-basis { padding-left: .5em; }
table.audit { width: 100%; font-size: .78rem; }
.status-reproduced { background: #e6f4ea; } .status-contradicted { background: #e8eefc; }
.status-discrepancy { background: #fde7e7; } .status-not_recomputable { background: #fff4d6; }
.origin-reconstructed { background: #fff4d6; }
.reconstructed-basis, tr.reconstructed-basis td:first-child { box-shadow: inset 4px 0 0 #c98a00; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2rem 1.2rem; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #444; max-width: 60rem; }
details summary { cursor: pointer; font-weight: 600; margin: .6rem 0; color: #0b4f8a; }
tr.group th { background: #f1f3f5; font-size: .8rem; padding: .2rem .45rem; }
tr.detail td { font-size: .74rem; color: #333; padding: .15rem .45rem .35rem 1.2rem; border-top: none; }
nav.contents { border: 1px solid #d0d0d0; padding: .2rem 1rem .5rem; margin: 1rem 0; font-size: .9rem; }
nav.contents h2 { border: none; margin: .4rem 0; font-size: 1.1rem; }
nav.contents ol { margin: .2rem 0; padding-left: 1.4rem; } nav.contents ol ol { font-size: .85rem; }
/* Two columns: the contents fit one screen beside each other rather than one long list. */
nav.contents > ol { columns: 2; column-gap: 2rem; } nav.contents > ol > li { break-inside: avoid; }
.legend { border: 1px solid #d0d0d0; padding: .4rem .9rem; margin: 1rem 0; font-size: .9rem; }
.legend ul { list-style: none; padding: 0; margin: .3rem 0; } .legend li { margin: .15rem 0; }
.mark { display: inline-block; min-width: 2.2rem; text-align: center; font-weight: 600; }
@page { size: A4 landscape; margin: 1.2cm; }
@media print {
  body { margin: 0; padding: 0; max-width: none; font-size: 10pt; }
  details > summary { display: none; }
  nav.contents { break-after: page; }
  details::details-content { content-visibility: visible; display: contents; }
  table:not(.gt_table) { font-size: 7.5pt; width: 100%; }
  table:not(.gt_table) :is(th, td) { padding: .12rem .2rem; }
  thead { display: table-header-group; }
  tr, figure, .legend, dl.summary { break-inside: avoid; page-break-inside: avoid; }
  tr.group, tr.gt_group_heading_row, tr:has(+ tr.detail) { break-after: avoid; page-break-after: avoid; }
  .gt_table tfoot { display: table-row-group; }  /* the notes print once, after the last row, not on every page */
  h2, caption { break-after: avoid; page-break-after: avoid; }
  figure img { max-height: 24cm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
