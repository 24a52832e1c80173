"""The written page read back: every value of each report table (Tables 1, 2 and 4) against the table it comes from.

``study_report``'s blocking check uses it, so a page that shows another number than its table is never published.
It reads the elements ``tables`` writes, whatever great_tables puts around them: each table's container
(``tables.TABLE_ID_PREFIX``), a recomputed value's ``span.recomputed`` (its quantity in ``data-quantity``) and a
printed value's ``span.printed`` (its value id in the trace link, then its mark).
"""

from __future__ import annotations

import html.parser
from dataclasses import dataclass, field

import polars as pl

from lms_assets.report.marks import mark_text
from lms_assets.report.survival_table import SURVIVAL_DECIMALS
from lms_assets.report.tables import PRINTED_CLASS, RECOMPUTED_CLASS, TABLE_ID_PREFIX
from lms_assets.tables.printed import fixed, format_value


@dataclass
class ShownTable:
    """One report table as the page shows it: each recomputed value by quantity, each printed value by value id as
    (its number, its mark). A value shown twice is kept twice, so a duplicate is seen."""

    recomputed: list[tuple[str, str]] = field(default_factory=list)
    printed: list[tuple[str, str, str]] = field(default_factory=list)


class _ReportTables(html.parser.HTMLParser):
    """The values of every report table of a page, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[ShownTable] = []
        self._inside = False
        # What is being read: ("recomputed", quantity) or ("printed", value id), and the text so far.
        self._value: list[str] | None = None
        self._mark: list[str] | None = None
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        classes = found.get("class", "").split()
        if tag == "div" and found.get("id", "").startswith(TABLE_ID_PREFIX):
            self._inside = True
            self.tables.append(ShownTable())
        elif not self._inside or tag not in ("span", "a"):
            return
        elif tag == "span" and RECOMPUTED_CLASS in classes:
            self._value = ["recomputed", found.get("data-quantity", ""), ""]
        elif tag == "span" and PRINTED_CLASS in classes:
            self._value, self._mark = ["printed", "", ""], []
        elif tag == "a" and self._value is not None and self._value[0] == "printed" and found.get("href", "").startswith("trace.html#"):
            self._value[1] = found["href"].removeprefix("trace.html#")
            self._in_link = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._inside:
            self._inside = False
        elif tag == "a":
            self._in_link = False
        elif tag == "span" and self._value is not None:
            kind, key, text = self._value
            if kind == "recomputed":
                self.tables[-1].recomputed.append((key, text.strip()))
            else:
                self.tables[-1].printed.append((key, text.strip(), "".join(self._mark or []).strip()))
            self._value, self._mark = None, None

    def handle_data(self, data: str) -> None:
        if self._value is None:
            return
        if self._value[0] == "printed" and not self._in_link:
            if self._mark is not None:
                self._mark.append(data)
        else:
            self._value[2] += data


def shown_tables(report_html: str) -> list[ShownTable]:
    """Every report table of the page, in page order, with the values it shows."""
    parser = _ReportTables()
    parser.feed(report_html)
    return parser.tables


def _same_number(shown: str, expected: str) -> bool:
    """Whether two texts are the same number (a count shows 19 where the rounding rule writes 19.0)."""
    try:
        return float(shown) == float(expected)
    except ValueError:
        return shown == expected


def _expected(cells: pl.DataFrame) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """What the page must show for a ``compare_with_printed`` frame: each quantity's recomputed value at the printed
    precision plus one digit (two places where nothing is printed; — where nothing recomputes it), and each printed
    value at its printed precision with its mark."""
    recomputed: dict[str, tuple[str, ...]] = {}
    printed: dict[str, tuple[str, ...]] = {}
    for row in cells.iter_rows(named=True):
        value = row["recomputed"]
        places = SURVIVAL_DECIMALS - 1 if row["decimals"] is None else row["decimals"]
        recomputed[row["quantity"]] = ("—" if value is None else format_value(value, places),)
        if row["printed_value"] is not None:
            printed[row["value_id"]] = (fixed(row["printed_value"], row["decimals"]), mark_text(row["mark"], row["basis"]))
    return recomputed, printed


def comparison_mismatches(report_html: str, tables: dict[str, pl.DataFrame]) -> list[str]:
    """Where a written page's report tables are not their frames: every recomputed value must read ``format_value``
    of its ``compare_with_printed`` value, every printed value ``printed.fixed`` at its precision with its mark; each
    shown exactly once, and nothing else shown. ``tables``: the page's tables, heading to frame, in page order."""
    pages = shown_tables(report_html)
    if len(pages) != len(tables):
        return [f"the page shows {len(pages)} comparison tables, not the {len(tables)} it was given"]
    problems = []
    for (heading, cells), shown in zip(tables.items(), pages):
        recomputed, printed = _expected(cells)
        expectations: tuple[tuple[str, dict[str, tuple[str, ...]], list[tuple[str, tuple[str, ...]]]], ...] = (
            ("recomputed", recomputed, [(key, (text,)) for key, text in shown.recomputed]),
            ("printed", printed, [(key, (text, mark)) for key, text, mark in shown.printed]),
        )
        for what, expected, seen in expectations:
            keys = [key for key, _ in seen]
            problems += [f"{heading}: {key}'s {what} value is shown {keys.count(key)} times" for key in sorted(set(keys)) if keys.count(key) > 1]
            problems += [
                f"{heading}: shows a {what} value for {key or 'nothing'}, which its table does not have" for key in sorted(set(keys) - set(expected))
            ]
            problems += [f"{heading}: {key}'s {what} value is not shown" for key in expected if key not in keys]
            for key, texts in seen:
                want = expected.get(key)
                if want is not None and not (_same_number(texts[0], want[0]) and texts[1:] == want[1:]):
                    problems.append(f"{heading}: {key}'s {what} cell shows {' '.join(texts)}, the table has {' '.join(want)}")
    return problems
