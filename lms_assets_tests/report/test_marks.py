"""The report marks every cell that rests on reconstruction, and its blocking ``cells_match_tables`` check fails
when a written printed-value cell is not its table's (faults injected into the page code that writes the cells)."""

from __future__ import annotations

import re

import polars as pl
import pytest
from dagster import AssetCheckSeverity

from lms_assets.defs.report import CELLS_MATCH, REPORT_FILE, reconstructed_estimates
from lms_assets.report import comparison, page, readback, tables
from lms_assets_tests.conftest import start_from_shipped_run
from lms_assets_tests.defs.test_fault_injection import _wrap
from lms_assets_tests.records.test_validation import failure_first_lines
from lms_assets_tests.report.test_page import T2_AUDIT, T2_REGISTRY, T2_SPINE, T2_VALUES, _inputs, _printed_cell, _t2_inputs
from lms_assets_tests.tables.test_survival import _shipped_adtte


def test_a_discrepancy_from_reconstructed_inputs_is_marked_with_the_star():
    audit = T2_AUDIT.with_columns(pl.when(pl.col("value_id") == "T2.orr.pct").then(pl.lit("reconstructed_inputs")).otherwise("basis").alias("basis"))
    cells = comparison.compare_with_printed(T2_SPINE, T2_VALUES, T2_REGISTRY, audit, "Table 2")
    html = tables.comparison_table_html(cells, "Table 2", "data cut 2021-03-31", 2)
    _, pct = _printed_cell(html, "ORR")
    assert pct[2] == "15.0 ≠*" and "reconstructed-basis" in pct[1]
    assert "from reconstructed inputs only" in re.search(r'title="([^"]*T2.orr.pct[^"]*)"', html)[1]


def test_the_legend_explains_every_reconstruction_mark():
    legend = page.legend_html()
    assert "≠*" in legend and "the reconstruction may be what differs" in legend
    assert '<span class="mark reconstructed-basis">*</span> beside a survival estimate' in legend


def test_the_survival_table_marks_the_estimates_of_reconstructed_cuts():
    inputs = _inputs()
    cut = str(inputs.survival_summary["data_cut"][0])
    summary = pl.concat([inputs.survival_summary, inputs.survival_summary.with_columns(endpoint=pl.lit("OS"))])
    html = page.survival_html(summary, inputs.registry, {(cut, "OS")})
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    os_rows = [r for r in rows if "<td>OS</td>" in r]
    pfs_rows = [r for r in rows if "<td>PFS</td>" in r]
    assert os_rows and pfs_rows
    # Median, plateau midpoint, CI and SE of every OS row carry the mark where shown; patients and events are recorded counts.
    estimates = [re.findall(r"<td>([^<]*)</td>", r)[3:9] for r in os_rows]
    assert all([c.endswith(" *") for c in row] == [False, False, True, True, True, bool(row[5])] for row in estimates), estimates
    assert not any(" *</td>" in r for r in pfs_rows)
    assert "*: rests on reconstructed last-contact times" in html
    assert " *</td>" not in page.survival_html(summary, inputs.registry)


def test_the_shipped_study_reconstructs_os_at_the_published_cut_only():
    assert reconstructed_estimates(_shipped_adtte()) == {("2021-03-31", "OS")}


# --- the report's blocking check --------------------------------------------------------------------------


def test_the_written_page_shows_its_tables_values():
    inputs = _t2_inputs()
    html = page.study_report_html(inputs)
    [shown] = readback.shown_tables(html)
    # Every recomputed value by its quantity, every printed one by its value id with its mark.
    assert sorted(shown.recomputed) == [("orr.n", "3"), ("orr.pct", "15.80"), ("os.median", "23.50"), ("pfs.ci_upper", "5.238")]
    assert sorted(shown.printed) == [
        ("T2.orr.n", "3", "✓*"),
        ("T2.orr.pct", "15.0", "≠"),
        ("T2.os.median", "23.5", "✓†"),
        ("T2.pfs.ci_upper", "5.24", "✓"),
    ]
    assert readback.comparison_mismatches(html, inputs.tables) == []


# Faults injected into the code that writes Table 2's cells; each must fail the report's blocking check.
def recomputed_one_place_short(mp):
    _wrap(mp, tables, "recomputed_text", lambda original: lambda value, decimals: original(value, None if decimals is None else decimals - 1))


def printed_cell_shows_the_recomputed_value(mp):
    def wrapper(original):
        return lambda cell: original(cell if cell is None or cell["recomputed"] is None else {**cell, "printed_value": cell["recomputed"]})

    _wrap(mp, tables, "printed_html", wrapper)


def printed_value_left_out(mp):
    _wrap(mp, tables, "printed_html", lambda original: lambda cell: tables.MISSING if cell and cell["value_id"] == "T2.orr.pct" else original(cell))


def recomputed_value_under_another_quantity(mp):
    def wrapper(original):
        return lambda cell: original(cell if cell is None or cell["quantity"] != "orr.n" else {**cell, "quantity": "orr.pct"})

    _wrap(mp, tables, "recomputed_html", wrapper)


def reconstruction_mark_dropped(mp):
    _wrap(mp, tables, "mark_text", lambda original: lambda mark, basis: original(mark, None))


CELL_FAULTS = [
    recomputed_one_place_short,
    printed_cell_shows_the_recomputed_value,
    printed_value_left_out,
    recomputed_value_under_another_quantity,
    reconstruction_mark_dropped,
]


@pytest.mark.parametrize("fault", CELL_FAULTS, ids=lambda f: f.__name__)
def test_each_cell_fault_fails_the_report_check(fault, monkeypatch):
    inputs = _t2_inputs()
    fault(monkeypatch)
    assert readback.comparison_mismatches(page.study_report_html(inputs), inputs.tables)


def test_a_missing_table_fails_the_report_check():
    inputs = _t2_inputs()
    assert readback.comparison_mismatches(
        page.study_report_html(inputs), {**inputs.tables, "Table 9": inputs.tables["Table 2. Overall response"]}
    ) == ["the page shows 1 comparison tables, not the 2 it was given"]


@pytest.mark.slow
def test_a_cell_fault_fails_the_report_step_and_keeps_the_last_good_report(shipped_run, platform_env, monkeypatch):
    from dagster import AssetSelection

    from lms_assets_tests.conftest import run_selection

    start_from_shipped_run(shipped_run, platform_env)
    report = platform_env["outputs"] / REPORT_FILE
    good = report.read_bytes()
    recomputed_one_place_short(monkeypatch)
    result = run_selection(AssetSelection.assets("study_report"), platform_env)
    assert failure_first_lines(result)["study_report"].startswith(f"study_report not published: {CELLS_MATCH}: ")
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CELLS_MATCH]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert report.read_bytes() == good and report.with_name("study_report.candidate.html").is_file()
