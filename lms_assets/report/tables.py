"""Tables 1, 2 and 4 of the report as great_tables tables: each recomputed value beside the printed one, laid out as
the paper prints them.

One builder for the three (``comparison_table_html``), from a ``comparison.compare_with_printed`` frame: the rows in
the paper's order under its row headings (Table 1's characteristics), a count with its percentage in one cell
("n (%)"), a median with its confidence interval in one ("median (lower–upper)"), and a spanner per kind of cell
(Table 4's grades) over the recomputed value and the printed one. Each printed value links to its trace and carries its
mark (``marks.MARKS``, with ``*`` when it rests on reconstructed inputs); the audit's reason for a value not plainly
reproduced is a numbered footnote; source notes say where the values come from and how they are rounded.

great_tables escapes every text it is given (title, labels, row headings, footnotes, source notes). The cells are
HTML built here from escaped parts and passed through ``GT.fmt`` unchanged. ``readback`` finds every value on the
written page by its element: a recomputed value is a ``span.recomputed``, a printed value the trace link inside a
``span.printed``, each naming its quantity (``data-quantity``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from great_tables import GT, loc

from lms_assets.checks import printed_values as audit_rules
from lms_assets.graphs import render
from lms_assets.report.comparison import recomputed_text
from lms_assets.report.marks import MARKS, RECONSTRUCTED_MARK, RECONSTRUCTED_WORDS, mark_text
from lms_assets.report.markup import REPORT_CELL_CHARS, text_html
from lms_assets.tables import printed

# The id of each table's container on the page (its number after the prefix), which scopes great_tables' style and
# marks the tables ``readback`` reads.
TABLE_ID_PREFIX = "report-table-"
RECOMPUTED_CLASS = "recomputed"
PRINTED_CLASS = "printed"
MISSING = "—"

# Statistics the paper prints together in one cell, and how: a count with its percentage, an estimate with its CI.
KINDS = {
    "n (%)": (("n", "pct"), "{} ({})"),
    "median (95% CI)": (("median", "ci_lower", "ci_upper"), "{} ({}–{})"),
}
_KIND_PARTS = frozenset(part for parts, _ in KINDS.values() for part in parts)
# A statistic shown in a row's main cell on its own (Table 1's median age); any other is a column of its own.
PLAIN = "value"
MAIN = "main"
# What a statistic's prefix means (Table 4's grades).
PREFIX_WORDS = {"any": "Any grade", "g12": "Grade 1–2", "g34": "Grade 3–4", "g5": "Grade 5"}


@dataclass(frozen=True)
class _Column:
    """One spanner of the table: the statistics of one prefix shown in one cell per row."""

    prefix: str
    family: str  # "main" (the kinds and plain values) or a statistic shown alone
    parts: frozenset[str]  # the statistics (without the prefix) under it
    printed: bool  # whether the paper prints any of its values

    @property
    def key(self) -> str:
        return f"{self.prefix}.{self.family}"

    @property
    def label(self) -> str:
        """The spanner's words: the grade (if any) and the kinds of cell under it, as the paper heads its columns."""
        kinds = [kind for kind, (kind_parts, _) in KINDS.items() if self.parts & set(kind_parts)]
        what = (" or ".join(kinds) or PLAIN) if self.family == MAIN else self.family.replace("_", " ")
        words = f"{PREFIX_WORDS.get(self.prefix, self.prefix.replace('_', ' '))}, {what}" if self.prefix else what
        return words if self.printed else f"{words}: not printed"


def _split(statistic: str) -> tuple[str, str]:
    """``g12.n`` -> (``g12``, ``n``); ``median`` -> ("", ``median``)."""
    prefix, _, part = statistic.rpartition(".")
    return prefix, part


def _family(part: str) -> str:
    return MAIN if part in _KIND_PARTS or part == PLAIN else part


def _columns(cells: pl.DataFrame) -> list[_Column]:
    """The table's spanners in the order the paper prints their first value (registry order), then those it does not."""
    parts: dict[tuple[str, str], set[str]] = {}
    printed_columns = set()
    for statistic, value_id in cells.sort("order").select("statistic", "value_id").iter_rows():
        prefix, part = _split(statistic)
        parts.setdefault((prefix, _family(part)), set()).add(part)
        if value_id is not None:
            printed_columns.add((prefix, _family(part)))
    return [_Column(prefix, family, frozenset(under), (prefix, family) in printed_columns) for (prefix, family), under in parts.items()]


def recomputed_html(cell: dict | None) -> str:
    """A recomputed value as the page shows it (``recomputed_text``), naming its quantity for ``readback``."""
    if cell is None:
        return MISSING
    text = recomputed_text(cell["recomputed"], cell["decimals"])
    return f'<span class="{RECOMPUTED_CLASS}" data-quantity="{text_html(cell["quantity"])}">{text_html(text)}</span>'


def printed_html(cell: dict | None) -> str:
    """A printed value at its printed precision, linked to its trace, with its mark; the paper's words and the audit's
    reason in its tooltip."""
    if cell is None or cell["printed_value"] is None:
        return MISSING
    symbol = mark_text(cell["mark"], cell["basis"])
    reconstructed = symbol.endswith(RECONSTRUCTED_MARK)
    words = MARKS[cell["mark"]][1] if cell["mark"] else "not audited"
    tooltip = (
        f"printed: {cell['printed']} ({cell['value_id']}) — {words}"
        + (f"; {RECONSTRUCTED_WORDS}" if reconstructed else "")
        + (f" — {cell['explanation']}" if cell["explanation"] else "")
    )
    css = f"{PRINTED_CLASS} status-{cell['mark'] or 'unaudited'}" + (" reconstructed-basis" if reconstructed else "")
    value = printed.fixed(cell["printed_value"], cell["decimals"])
    link = f'<a href="trace.html#{text_html(cell["value_id"])}">{text_html(value)}</a>'
    mark = f" {text_html(symbol)}" if symbol else ""
    return f'<span class="{text_html(css)}" data-quantity="{text_html(cell["quantity"])}" title="{text_html(tooltip)}">{link}{mark}</span>'


def _cell(statistics: dict[str, dict], column: _Column, shown: Callable[[dict | None], str]) -> str:
    """One row's cell of ``column``: each kind in its pattern, a plain value alone, ``shown`` rendering each value."""
    parts = {}
    for statistic, cell in statistics.items():
        prefix, part = _split(statistic)
        if prefix == column.prefix:
            parts[part] = cell
    if column.family != MAIN:
        return shown(parts.get(column.family))
    texts = [
        pattern.format(*(shown(parts.get(part)) for part in kind_parts)) for kind_parts, pattern in KINDS.values() if parts.keys() & set(kind_parts)
    ]
    texts += [shown(parts[PLAIN])] if PLAIN in parts else []
    return "; ".join(texts) or MISSING


def _footnotes(cells: pl.DataFrame) -> list[tuple[int, str, str]]:
    """(row, statistic, the audit's reason) of each printed value not plainly reproduced: a gt footnote on its cell."""
    return [
        (row, statistic, render.clip(explanation, REPORT_CELL_CHARS))
        for row, statistic, mark, explanation in cells.select("row", "statistic", "mark", "explanation").iter_rows()
        if mark not in (None, audit_rules.REPRODUCED) and explanation
    ]


def comparison_table(cells: pl.DataFrame, heading: str, at: str, number: int) -> GT:
    """A ``compare_with_printed`` frame as a great_tables table: the paper's layout, recomputed beside printed."""
    columns = _columns(cells)
    names = {i: [f"c{i}_recomputed", *([f"c{i}_printed"] if column.printed else [])] for i, column in enumerate(columns)}
    rows: list[dict[str, str | None]] = []
    index: dict[int, int] = {}
    for (row, group, label), group_cells in cells.group_by("row", "group", "label", maintain_order=True):
        by_statistic = {r["statistic"]: r for r in group_cells.iter_rows(named=True)}
        index[row] = len(rows)
        shown = {"group": group, "label": label}
        for i, column in enumerate(columns):
            for name, shows in zip(names[i], (recomputed_html, printed_html)):
                shown[name] = _cell(by_statistic, column, shows)
        rows.append(shown)
    cell_columns = [name for under in names.values() for name in under]
    frame = pl.DataFrame(rows, schema={"group": pl.String, "label": pl.String, **dict.fromkeys(cell_columns, pl.String)})
    grouped = frame["group"].drop_nulls().len() > 0
    table = GT(frame, rowname_col="label", groupname_col="group" if grouped else None, id=f"{TABLE_ID_PREFIX}{number}")
    if not grouped:
        table = table.cols_hide("group")
    table = (
        table.tab_header(title=heading, subtitle=f"Recomputed at {at}, beside the paper's printed values")
        .tab_stubhead("Row")
        # The cells are HTML built from escaped parts: passed through as they are.
        .fmt(lambda html: html, columns=cell_columns)
        .cols_label(cases={name: name.rsplit("_", 1)[1] for name in cell_columns})
        .cols_align("right", columns=cell_columns)
    )
    for i, column in enumerate(columns):
        table = table.tab_spanner(column.label, columns=names[i], id=column.key)
    column_of = {column.key: i for i, column in enumerate(columns)}
    for row, statistic, reason in _footnotes(cells):
        prefix, part = _split(statistic)
        place = loc.body(columns=f"c{column_of[f'{prefix}.{_family(part)}']}_printed", rows=[index[row]])
        table = table.tab_footnote(reason, locations=place, placement="right")
    return (
        # The marks' legend heads the report; a table says only what its two columns are.
        table.tab_source_note(
            f"Printed: the paper's values at their printed precision, each linked to its trace. Recomputed: from the "
            f"records at {at}, one digit more, rounded half up (counts whole). Marks: the legend at the top; numbered "
            "notes: the audit's reason."
        )
        # Sizes relative to the page's text (em), so the table follows the page on screen and in print (10 pt); the
        # page's fonts (no web font); not centred.
        .tab_options(
            table_font_names=["system-ui", "sans-serif"],
            table_font_size="0.8em",
            table_margin_left="0",
            table_margin_right="0",
            heading_align="left",
            heading_title_font_size="1.1em",
            data_row_padding="0.2em",
            column_labels_padding="0.2em",
            row_group_padding="0.25em",
            container_padding_y="0.5em",
        )
    )


def comparison_table_html(cells: pl.DataFrame, heading: str, at: str, number: int) -> str:
    """``comparison_table`` as an HTML fragment: its scoped style and the table, nothing fetched from elsewhere."""
    return comparison_table(cells, heading, at, number).as_raw_html(inline_css=False, make_page=False)


def comparison_tables_html(tables: dict[str, pl.DataFrame], at: str) -> str:
    """Every report table, heading to ``compare_with_printed`` frame, numbered in page order."""
    return "".join(comparison_table_html(cells, heading, at, number) for number, (heading, cells) in enumerate(tables.items(), start=1))
