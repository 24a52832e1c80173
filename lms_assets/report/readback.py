"""The written page read back: each comparison table's printed-value cells against the table they come from.

``study_report``'s blocking check uses it, so a page that shows another number than its table is never published.
"""

from __future__ import annotations

import html.parser

import polars as pl

from lms_assets.tables.printed import fixed, format_value


class _ComparisonCells(html.parser.HTMLParser):
    """Each comparison table's cell texts, row by row: (classes, trace link target, text shown, marks left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[dict[str, str]]]] = []
        self._inside = False
        self._cell: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and "comparison" in found.get("class", "").split():
            self._inside = True
            self.tables.append([])
        elif not self._inside:
            return
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag == "td" and self.tables[-1]:
            self._cell = {"class": found.get("class", ""), "value": "", "text": ""}
            self.tables[-1][-1].append(self._cell)
        elif tag == "a" and self._cell is not None and found.get("href", "").startswith("trace.html#"):
            self._cell["value"] = found["href"].removeprefix("trace.html#")
            self._cell["text"] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        if tag in ("td", "a", "table"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def shown_comparison_cells(report_html: str) -> list[dict[str, tuple[str, str]]]:
    """Per comparison table of the page, in order: each printed value's value id to the recomputed text beside it
    and the printed text (its trace link's, without the mark)."""
    parser = _ComparisonCells()
    parser.feed(report_html)
    return [
        {
            cell["value"]: (row[i - 1]["text"].strip(), cell["text"].strip())
            for row in rows
            for i, cell in enumerate(row)
            if cell["value"] and i > 0 and "printed" in cell["class"].split()
        }
        for rows in parser.tables
    ]


def _same_number(shown: str, expected: str) -> bool:
    """Whether two texts are the same number (a count shows 19 where the rounding rule writes 19.0)."""
    try:
        return float(shown) == float(expected)
    except ValueError:
        return shown == expected


def comparison_mismatches(report_html: str, tables: dict[str, pl.DataFrame]) -> list[str]:
    """Where a written page's printed-value cells are not their table's: beside each printed value, the recomputed
    cell must read ``printed.format_value`` of its ``compare_with_printed`` value (— where none) and the printed cell
    ``printed.fixed`` of the printed value at its precision. ``tables``: the page's tables, heading to frame, in page order."""
    pages = shown_comparison_cells(report_html)
    if len(pages) != len(tables):
        return [f"the page shows {len(pages)} comparison tables, not the {len(tables)} it was given"]
    problems = []
    for (heading, cells), shown in zip(tables.items(), pages):
        for row in cells.filter(pl.col("printed_value").is_not_null()).iter_rows(named=True):
            value = row["value_id"]
            recomputed = "—" if row["recomputed"] is None else format_value(row["recomputed"], row["decimals"])
            printed = fixed(row["printed_value"], row["decimals"])
            if value not in shown:
                problems.append(f"{heading}: {value} is not shown")
                continue
            for what, text, expected in zip(("recomputed", "printed"), shown[value], (recomputed, printed)):
                if not _same_number(text, expected):
                    problems.append(f"{heading}: {value}'s {what} cell shows {text}, the table has {expected}")
    return problems
