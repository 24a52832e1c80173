"""Table previews a reader can use: patient ids as ranges, estimates before long list cells, no ``len`` header,
a ``~`` that stays a character instead of starting strikethrough, and printed_audit's discrepancies with their reasons."""

import re
from html import unescape

import polars as pl
from markdown_it import MarkdownIt

from lms_assets.defs.metadata import PREVIEW_CELL_CHARS, markdown_table
from lms_assets.defs.report import REPORT_FILE
from lms_assets.graphs.render import cell_text
from lms_assets.tables.printed import id_ranges
from lms_assets_tests.test_audit import shipped_audit  # noqa: F401 (the fixture: printed_audit on the shipped study)

UI_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def test_patient_ids_are_shown_as_ranges():
    assert id_ranges([8, 1, 2, 3, 5, 7, 2]) == "1–3, 5, 7–8"
    assert cell_text(list(range(1, 20))) == "1–19"
    assert cell_text(["Nausea", "Fatigue"]) == "Nausea, Fatigue"
    assert cell_text(73.6842105263158) == "73.68"
    assert [cell_text(v) for v in (5.2375, 1200.0, 0.000123456, -2.5, 5.2)] == ["5.238", "1200", "0.0001235", "-2.5", "5.2"]


def test_preview_puts_estimates_before_lists_and_names_a_count_n():
    frame = pl.DataFrame({"patients": [[1, 2, 3, 9]], "len": [4], "median": [5.2375], "ci": ["23.5 (14.2~32.7)"]})
    header, _, row = markdown_table(frame).splitlines()[:3]
    assert header == "| n | median | ci | patients |"
    assert row == r"| 4 | 5.238 | 23.5 (14.2\~32.7) | 1–3, 9 |"
    html = UI_MARKDOWN.render(markdown_table(frame))
    assert "<s>" not in html and "<del>" not in html and "14.2~32.7" in html


def test_printed_audit_preview_lists_each_discrepancy_with_its_reason_and_points_to_the_report(shipped_audit):  # noqa: F811 (the fixture imported above)
    result, table, _ = shipped_audit
    metadata = result.asset_materializations_for_node("printed_audit")[0].metadata
    discrepancies = table.filter(pl.col("status") == "discrepancy")
    assert discrepancies.height > 0
    html = UI_MARKDOWN.render(metadata["discrepancies"].value)
    assert "<s>" not in html and "<del>" not in html
    # As the UI shows it: a narrow table (figure, printed, shown, check outcome, reason), one row per discrepancy.
    rows = [[unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", row, re.S)] for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]
    assert rows[0] == ["figure_id", "published", "shown", "check", "reason"]
    reasons = {cells[0]: cells[-1] for cells in rows[1:]}
    assert len(reasons) == len(rows) - 1 == discrepancies.height
    for figure_id, explanation in discrepancies.select("figure_id", "explanation").iter_rows():
        # A long reason is clipped, saying so (PREVIEW_CELL_CHARS); the report has it whole.
        assert explanation and reasons[figure_id].startswith(explanation[:PREVIEW_CELL_CHARS]), figure_id
    # The full list is the report's: the 14-column table of every figure is no longer in the UI's metadata.
    assert "audit" not in metadata
    assert metadata["full_list"].value.endswith(str(REPORT_FILE))
