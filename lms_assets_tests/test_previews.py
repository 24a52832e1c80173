"""Table previews a reader can use: patient ids as ranges, estimates before long list cells, no ``len`` header,
and a ``~`` that stays a character instead of starting strikethrough."""

import polars as pl
from markdown_it import MarkdownIt

from lms_assets.defs.metadata import markdown_table
from lms_assets.graphs.render import cell_text, id_ranges


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
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown_table(frame))
    assert "<s>" not in html and "<del>" not in html and "14.2~32.7" in html
