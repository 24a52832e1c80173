"""The study report: recomputed beside printed, self-contained HTML, and never written past a failed ERROR check."""

import base64
import dataclasses
import datetime as dt
import hashlib
import inspect
import re

import dagster
import polars as pl
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from lms_assets.definitions import build_defs
from lms_assets.defs import report as report_defs
from lms_assets.defs.report import CHART_NAMES, REPORT_FILE
from lms_assets.graphs import render
from lms_assets.records.errors import RecordFileError
from lms_assets.report import comparison, marks, markup, page, tables
from lms_assets.report.inputs import ReportInputs, package_versions
from lms_assets.tables.printed import format_value as fig_format
from lms_assets.tables.printed import values_frame
from lms_assets_tests.conftest import defs_for, start_from_shipped_run
from lms_assets_tests.records.test_validation import failure_first_lines

REGISTRY_SCHEMA = {
    "value_id": pl.String,
    "source": pl.String,
    "quantity": pl.String,
    "printed": pl.String,
    "value": pl.Float64,
    "decimals": pl.Int64,
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def registry(*rows):
    return pl.DataFrame(rows, schema=REGISTRY_SCHEMA, orient="row")


def audit(*rows, basis="published_patient_data"):
    """printed_audit rows: (value_id, status, explanation, findings); the report derives the status from the findings."""
    schema = {"value_id": pl.String, "status": pl.String, "explanation": pl.String, "findings": pl.List(pl.String)}
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.lit(None, dtype=pl.String).alias("hypotheses"), pl.lit(basis).alias("basis")
    )


SPINE = pl.DataFrame({"key": ["sex.male", "age.median"], "label": ["Gender — Male", "Age (years) — Median"]})
VALUES = values_frame([("sex.male.n", 5, [1, 2]), ("sex.male.pct", 26.315789, [1, 2]), ("age.median", 52.0, []), ("ecog.0.n", 5, [3])])
REGISTRY = registry(
    ("T1.sex.male.n", "Table 1", "sex.male.n", "5", 5.0, 0),
    ("T1.sex.male.pct", "Table 1", "sex.male.pct", "26.3%", 26.3, 1),
    ("T1.age.median", "Table 1", "age.median", "53", 53.0, 0),
    ("T1.metastasis.distant.pct", "Table 1", "metastasis.distant.pct", "30%", 30.0, 0),
    ("ABS.sex.male.n", "Abstract", "sex.male.n", "5 male", 5.0, 0),
)
AUDIT = audit(
    ("T1.sex.male.n", "reproduced", "", []),
    ("T1.sex.male.pct", "reproduced", "", []),
    ("T1.age.median", "discrepancy", "Table 1 prints '53' but Table 3's patient rows give 52.0", []),
    ("T1.metastasis.distant.pct", "not_recomputable", "The study's records hold nothing", []),
)


def test_recomputed_values_sit_beside_the_printed_ones_of_their_table():
    cells = comparison.compare_with_printed(SPINE, VALUES, REGISTRY, AUDIT, "Table 1")
    by_quantity = {r["quantity"]: r for r in cells.iter_rows(named=True)}

    assert set(by_quantity) == {"sex.male.n", "sex.male.pct", "age.median", "metastasis.distant.pct"}
    pct = by_quantity["sex.male.pct"]
    assert (pct["label"], pct["statistic"], pct["recomputed"], pct["printed_value"], pct["status"]) == (
        "Gender — Male",
        "pct",
        26.315789,
        26.3,
        "reproduced",
    )
    age = by_quantity["age.median"]
    assert (age["statistic"], age["recomputed"], age["printed_value"], age["status"]) == ("value", 52.0, 53.0, "discrepancy")
    # Printed but recomputed by no row: kept, after the table's rows, with nothing recomputed.
    printed_only = by_quantity["metastasis.distant.pct"]
    assert printed_only["recomputed"] is None and printed_only["row"] >= SPINE.height
    assert printed_only["status"] == "not_recomputable"
    # The Abstract's printing of the same quantity belongs to another source.
    assert by_quantity["sex.male.n"]["value_id"] == "T1.sex.male.n"


def _row(html: str, label: str) -> str:
    """The body row of a great_tables table whose stub is ``label``."""
    return next(r for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if re.search(rf'class="gt_row gt_left gt_stub">{re.escape(label)}</th>', r))


def _values(html: str) -> dict[str, tuple[str, str, str]]:
    """Each quantity a table shows: (its recomputed text, its printed span's classes, the printed span's text)."""
    recomputed = dict(re.findall(r'<span class="recomputed" data-quantity="([^"]+)">([^<]*)</span>', html))
    printed = {
        q: (css, re.sub(r"<[^>]+>", "", inner))
        for css, q, inner in re.findall(r'<span class="([^"]*)" data-quantity="([^"]+)"[^>]*>(.*?)</span>', html)
    }
    return {q: (text, *printed.get(q, ("", ""))) for q, text in recomputed.items()}


def test_comparison_table_lays_out_the_paper_and_shows_each_pair_in_one_row_with_the_verdict():
    cells = comparison.compare_with_printed(SPINE, VALUES, REGISTRY, AUDIT, "Table 1")
    html = tables.comparison_table_html(cells, "Table 1. Demographics", "data cut 2021-03-31", 1)
    # The title, the data cut, one spanner over the recomputed and printed values of n (%), a source note.
    assert ">Table 1. Demographics</td>" in html and "Recomputed at data cut 2021-03-31, beside the paper&#x27;s printed values" in html
    assert re.findall(r'<span class="gt_column_spanner">([^<]+)</span>', html) == ["n (%)"]
    assert "Printed: the paper&#x27;s values at their printed precision" in html
    # Gender — Male: n (%) in one cell, recomputed beside printed; each printed value links to its trace, with its mark.
    male = _row(html, "Gender — Male")
    assert re.findall(r'<td [^>]*class="gt_row gt_right">(.*?)</td>', male) == [
        '<span class="recomputed" data-quantity="sex.male.n">5</span> (<span class="recomputed" data-quantity="sex.male.pct">26.32</span>)',
        re.search(r'(<span class="printed status-reproduced".*)</td>', male)[1],
    ]
    assert _values(html)["sex.male.n"] == ("5", "printed status-reproduced", "5 ✓")
    assert _values(html)["sex.male.pct"] == ("26.32", "printed status-reproduced", "26.3 ✓")
    assert '<a href="trace.html#T1.sex.male.pct">26.3</a>' in male
    # Age: 52 beside the printed 53, marked ≠, the audit's reason in its tooltip and a numbered footnote.
    assert _values(html)["age.median"] == ("52", "printed status-discrepancy", "53 ≠")
    assert "gt_footnote_marks" in _row(html, "Age (years) — Median")
    assert re.search(
        r'<td class="gt_footnote"[^>]*><span class="gt_footnote_marks"[^>]*>1</span> Table 1 prints &#x27;53&#x27; but Table 3&#x27;s', html
    )
    assert re.search(r'title="[^"]*Table 3&#x27;s patient rows give 52.0"', _row(html, "Age (years) — Median"))
    # Printed but recomputed by no row: a row of its own, nothing recomputed, "?".
    assert _values(html)["metastasis.distant.pct"] == ("—", "printed status-not_recomputable", "30 ?")


def test_table_1_rows_are_grouped_under_their_characteristic_and_table_4_grades_are_spanners():
    spine = pl.DataFrame({"key": ["sex.male", "sex.female"], "group": ["Gender"] * 2, "label": ["Male", "Female"]})
    values = values_frame([("sex.male.n", 5, []), ("sex.male.pct", 26.3, []), ("sex.female.n", 14, []), ("sex.female.pct", 73.7, [])])
    html = tables.comparison_table_html(comparison.compare_with_printed(spine, values, REGISTRY, AUDIT, "Table 1"), "T1", "data cut 2021-03-31", 1)
    assert re.findall(r'<th class="gt_group_heading"[^>]*>([^<]+)</th>', html) == ["Gender"]
    assert "— (—)" in _row(html, "Female")  # not printed in this registry
    ae = values_frame([(f"ae.rash.{grade}.{s}", v, []) for grade in ("any", "g12", "g34", "g5") for s, v in (("n", 1), ("pct", 5.26))])
    t4 = registry(("T4.ae.rash.any.n", "Table 4", "ae.rash.any.n", "1", 1.0, 0), ("T4.ae.rash.g34.pct", "Table 4", "ae.rash.g34.pct", "5.3", 5.3, 1))
    cells = comparison.compare_with_printed(pl.DataFrame({"key": ["ae.rash"], "label": ["Rash"]}), ae, t4, audit(), "Table 4")
    html = tables.comparison_table_html(cells, "Table 4", "data cut 2021-03-31", 3)
    # In the paper's order (the registry's), then the grades it does not print; no row groups.
    assert re.findall(r'<span class="gt_column_spanner">([^<]+)</span>', html) == [
        "Any grade, n (%)",
        "Grade 3–4, n (%)",
        "Grade 1–2, n (%): not printed",
        "Grade 5, n (%): not printed",
    ]
    assert '<th class="gt_group_heading"' not in html and 'id="report-table-3"' in html


def _inputs(**overrides) -> ReportInputs:
    cells = comparison.compare_with_printed(SPINE, VALUES, REGISTRY, AUDIT, "Table 1")
    defaults = dict(
        title="Study <report>",
        generated_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        run_id="run-1",
        patients=19,
        data_cuts=["2021-03-31"],
        published_cut=dt.date(2021, 3, 31),
        tables={"Table 1": cells},
        registry=REGISTRY,
        survival_summary=pl.DataFrame(
            {
                "data_cut": [dt.date(2021, 3, 31)] * 2,
                "endpoint": ["PFS", "PFS"],
                "method": ["spss", "brookmeyer_crowley_loglog"],
                "n": [19, 19],
                "events": [19, 19],
                "median": [4.1, 4.1],
                "median_midpoint": [4.1, 4.1],
                "se": [0.58, None],
                "ci_lower": [2.962474, 1.9],
                "ci_upper": [5.237526, 6.2],
                "note": [None, None],
            }
        ),
        charts=[
            render.Chart("waterfall_chart", "Waterfall plot", "Best % change.", "none applies: every assessment", PNG_MAGIC + b"body", "/x.html")
        ],
        audit=AUDIT.join(
            VALUES.select("quantity", pl.col("value").alias("recomputed")).join(REGISTRY.select("value_id", "quantity"), on="quantity"),
            on="value_id",
            how="left",
        ).with_columns(
            pl.lit("Table 1").alias("source"),
            pl.lit("q").alias("quantity"),
            pl.lit("p").alias("published"),
            pl.lit("1.00").alias("shown"),
            pl.lit("passed").alias("check_outcome"),
            pl.lit("published_patient_data").alias("basis"),
            pl.lit("baseline_summary").alias("computed_by"),
            pl.lit([1, 2]).alias("patients"),
            pl.lit("fixed by the paper").alias("sensitivity_verdict"),
            pl.lit(None, pl.String).alias("sensitivity_range"),
        ),
        quarantine=pl.DataFrame({"file": ["patients.csv"], "row": [3], "column": ["age"], "value": ["<b>x</b>"], "reason": ["not a number"]}),
        files=pl.DataFrame({"file": ["patients.csv"], "sha256": ["ab" * 32], "rows": [19]}),
        provenance=pl.DataFrame(
            {
                "file": ["patients.csv"],
                "column": ["*"],
                "patient_ids": ["all"],
                "origin": ["reconstructed"],
                "location": ["Table 3"],
                "constraint": ["counts"],
            }
        ),
        versions={"python": "3.11", "dagster": "1.13"},
    )
    return ReportInputs(**{**defaults, **overrides})


def test_report_is_one_offline_document_with_every_section():
    html = page.study_report_html(_inputs())

    for heading in (
        "Study summary",
        "Tables 1, 2 and 4",
        "Survival",
        "Charts",
        "Audit of every printed value",
        "Quarantined record rows",
        "Data provenance",
        "Package versions",
    ):
        assert f">{heading}" in html
    assert not re.search(r"https?://|<script|<link|<iframe|url\(", html)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert [base64.b64decode(i) for i in images] == [PNG_MAGIC + b"body"]
    # Both CI methods of the survival table, with their intervals.
    assert "2.96–5.24" in html and "1.90–6.20" in html and "SPSS 24" in html and "Brookmeyer–Crowley" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "Study &lt;report&gt;" in html
    assert 'class="origin-reconstructed"' in html and "ab" * 32 in html


# Table 2 as the paper prints it: a median the paper contradicts elsewhere, a CI bound at a rounding boundary
# (5.2375: its binary double lies just below the half), a count from reconstructed inputs, and a discrepancy.
T2_SPINE = pl.DataFrame({"key": ["os", "pfs", "orr"], "label": ["Median OS", "Median PFS", "ORR"]})
T2_VALUES = values_frame([("os.median", 23.5, []), ("pfs.ci_upper", 5.2375, []), ("orr.n", 3, [1, 2, 3]), ("orr.pct", 15.8, [1, 2, 3])])
T2_REGISTRY = registry(
    ("T2.os.median", "Table 2", "os.median", "23.5 (14.2~32.7)", 23.5, 1),
    ("T2.pfs.ci_upper", "Table 2", "pfs.ci_upper", "4.1 (2.96~5.24)", 5.24, 2),
    ("T2.orr.n", "Table 2", "orr.n", "3", 3.0, 0),
    ("T2.orr.pct", "Table 2", "orr.pct", "15.0%", 15.0, 1),
)
T2_AUDIT = pl.concat(
    [
        audit(("T2.os.median", "discrepancy", "Another printing differs", ["printings_disagree"])),
        audit(("T2.pfs.ci_upper", "reproduced", "", [])),
        audit(("T2.orr.n", "reproduced", "", []), basis="reconstructed_inputs"),
        audit(("T2.orr.pct", "discrepancy", "Table 2 prints 15.0", [])),
    ]
)


def _printed_cell(html: str, label: str) -> list[tuple[str, str, str]]:
    """The values the row ``label`` prints: (recomputed text, printed span's classes, printed span's text), in order."""
    row = _row(html, label)
    return [_values(row)[q] for q in re.findall(r'<span class="printed[^"]*" data-quantity="([^"]+)"', row)]


def test_each_mark_says_one_thing_and_never_marks_agreeing_values_unequal():
    cells = comparison.compare_with_printed(T2_SPINE, T2_VALUES, T2_REGISTRY, T2_AUDIT, "Table 2")
    html = tables.comparison_table_html(cells, "Table 2", "data cut 2021-03-31", 2)
    # 23.50 agrees with the printed 23.5: reproduced here, the paper contradicting it elsewhere; never ≠.
    [(recomputed, css, printed)] = _printed_cell(html, "Median OS")
    assert (recomputed, printed) == ("23.50", "23.5 ✓†") and "status-contradicted" in css
    # Half up on the decimal: 5.2375 is shown 5.238, never 5.237, and agrees with the printed 5.24.
    [(recomputed, css, printed)] = _printed_cell(html, "Median PFS")
    assert (recomputed, printed) == ("5.238", "5.24 ✓") and "status-reproduced" in css
    # Reproduced only because its inputs were reconstructed: said by the mark, the value's class and its tooltip.
    n, pct = _printed_cell(html, "ORR")
    assert n[0] == "3" and n[2] == "3 ✓*" and "reconstructed-basis" in n[1]
    assert "from reconstructed inputs only" in re.search(r'title="([^"]*T2.orr.n[^"]*)"', html)[1]
    assert pct == ("15.80", "printed status-discrepancy", "15.0 ≠")
    # The four marks, each distinct.
    symbols = [symbol for symbol, _ in marks.MARKS.values()]
    assert len(set(symbols)) == 4 and set(cells["mark"]) == {"contradicted", "reproduced", "discrepancy"}


def _t2_inputs() -> ReportInputs:
    cells = comparison.compare_with_printed(T2_SPINE, T2_VALUES, T2_REGISTRY, T2_AUDIT, "Table 2")
    base = _inputs()
    summary = base.survival_summary.with_columns(pl.Series("ci_upper", [5.2375, 6.2]))
    audited = (
        T2_AUDIT.join(
            T2_VALUES.select("quantity", pl.col("value").alias("recomputed")).join(
                T2_REGISTRY.select("value_id", "quantity", "printed", "decimals"), on="quantity"
            ),
            on="value_id",
        )
        .with_columns(
            pl.struct("recomputed", "decimals")
            .map_elements(lambda r: fig_format(r["recomputed"], r["decimals"]), return_dtype=pl.String)
            .alias("shown"),
            pl.lit("Table 2").alias("source"),
            pl.col("printed").alias("published"),
            pl.lit("passed").alias("check_outcome"),
            pl.lit("response_summary").alias("computed_by"),
            pl.lit([1, 2, 3, 4, 5, 9]).alias("patients"),
            pl.lit("robust").alias("sensitivity_verdict"),
            pl.lit(None, pl.String).alias("sensitivity_range"),
        )
        .drop("printed", "decimals")
    )
    return ReportInputs(
        **{**base.__dict__, "tables": {"Table 2. Overall response": cells}, "registry": T2_REGISTRY, "survival_summary": summary, "audit": audited}
    )


def test_a_value_is_shown_at_one_rounding_everywhere_and_the_legend_heads_the_page():
    html = page.study_report_html(_t2_inputs())
    # 5.2375 in Table 2, the survival table (at the paper's finest precision of it, plus one digit) and the audit.
    assert re.findall(r"5\.23\d+", html) and set(re.findall(r"5\.23\d+", html)) == {"5.238"}
    # 23.5 agrees: the audit tables show it contradicted elsewhere, not as a discrepancy.
    audit_rows = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html) if "T2.os.median" in r]
    assert audit_rows and all("≠" not in r and "✓†" in r for r in audit_rows)
    # Marked ✓* in the audit's table of all values (its mark column holds the symbol alone), which the legend explains.
    assert any("<td>✓*</td>" in r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html) if "T2.orr.n" in r)
    assert f"reproduced {marks.RECONSTRUCTED_WORDS}" in html.replace("&#x27;", "'")
    # Patients as ranges, not one number per line.
    assert "<td>1–5, 9</td>" in html
    # The legend comes before the first table, and names every mark.
    legend = html.index('class="legend"')
    assert legend < html.index("<table")
    for symbol, words in marks.MARKS.values():
        assert f">{symbol}</span> {words}" in html.replace("&#x27;", "'")


def test_every_table_and_chart_names_its_data_cut_and_the_page_prints_whole():
    html = page.study_report_html(_t2_inputs())
    captions = re.findall(r"<caption>(.*?)</caption>", html) + re.findall(r"<figcaption>(.*?)</figcaption>", html)
    # Tables 1, 2 and 4 (great_tables) name it under their title.
    captions += re.findall(r'class="gt_heading gt_subtitle[^"]*"[^>]*>(.*?)</td>', html)
    assert len(captions) >= 9 and re.search(r'class="gt_heading gt_subtitle[^"]*"[^>]*>Recomputed at data cut 2021-03-31', html)
    assert all("data cut" in c.lower() for c in captions), [c for c in captions if "data cut" not in c.lower()]
    assert "recomputed at data cut 2021-03-31" in html
    assert "<strong>Data cut:</strong> none applies: every assessment" in html
    # Print: folded tables print open, rows are not split across pages, the header repeats.
    style = re.search(r"<style>(.*)</style>", html, re.S)[1]
    print_css = style[style.index("@media print") :]
    assert "details::details-content { content-visibility: visible" in print_css
    assert "break-inside: avoid" in print_css and "table-header-group" in print_css
    # Wrap-friendly: cells may break anywhere; only short numeric cells keep to one line.
    assert "overflow-wrap: anywhere" in style and re.findall(r"([^\n{}]+)\{[^}]*nowrap", style) == [".gt_table td.gt_row "]


def test_long_appendices_are_folded_compact_and_listed_in_the_contents():
    base = _t2_inputs()
    # 48 printed values: past FOLDED_ROWS, so the table of all of them is an appendix.
    many = pl.concat([base.audit.with_columns(pl.format("{}.{}", "value_id", pl.lit(i)).alias("value_id")) for i in range(12)])
    assert many.height > markup.FOLDED_ROWS
    html = page.study_report_html(ReportInputs(**{**base.__dict__, "audit": many}))

    # Folded, closed, and saying so; the shorter table of those not reproduced stays open.
    assert re.findall(r"<details[^>]*>", html) == ["<details>"]
    assert (
        f'<summary>All 48 printed values: published, recomputed (shown), mark, check, basis and patients — recomputed at data cut 2021-03-31 — 48 rows, folded: click to open</summary><table id="{page.AUDIT_ALL_VALUES}"'
        in html
    )
    # Compact: the printing section is a heading row over its values, not a cell of every row.
    start = html.index(f'id="{page.AUDIT_ALL_VALUES}"')
    table = html[start : html.index("</table>", start)]
    assert re.findall(r'<tr class="group"><th colspan="\d+" scope="rowgroup">([^<]*)</th></tr>', table) == ["Table 2"]
    assert len(re.findall(r'<tr class="status-', table)) == 48 and "<td>Table 2</td>" not in table
    # The reasons of the values not reproduced: a full-width line under each row, not a narrow column.
    start = html.index(f'id="{page.AUDIT_NOT_REPRODUCED}"')
    not_reproduced = html[start : html.index("</table>", start)]
    # Two per copy: a copy's value_id is not in the registry, so it keeps the audit's status (os.median, orr.pct: discrepancies).
    rows = re.findall(r'<tr class="status-discrepancy">', not_reproduced)
    lines = re.findall(
        r'<tr class="detail status-discrepancy"><td colspan="\d+"><strong>verdict:</strong> ≠ discrepancy<br><strong>explanation:</strong>',
        not_reproduced,
    )
    assert len(rows) == len(lines) == 24

    # The contents head the page, before the legend: every section and the folded table, each a link to an anchor the page has.
    nav = html[html.index('<nav class="contents"') : html.index("</nav>")]
    assert html.index("</nav>") < html.index('class="legend"')
    sections = re.findall(r'<section id="([^"]+)">', html)
    links = re.findall(r'href="#([^"]+)"', nav)
    assert sections and set(sections) <= set(links)
    assert all(f'id="{anchor}"' in html for anchor in links)
    assert f'<a href="#{page.AUDIT_ALL_VALUES}">All 48 printed values</a> <small>(folded)</small>' in nav
    assert (
        f'<a href="#{page.AUDIT_NOT_REPRODUCED}">' in nav
        and "<small>(folded)</small>" not in nav.split(page.AUDIT_NOT_REPRODUCED)[1].split("</li>")[0]
    )


def test_package_versions_are_the_installed_ones():
    versions = package_versions(["dagster", "surely-not-a-package-name"])
    assert versions["dagster"] == dagster.__version__
    assert versions["surely-not-a-package-name"] == "not installed"


def test_every_blocking_check_guards_an_asset_upstream_of_the_report():
    graph = build_defs().resolve_asset_graph()
    # The report's own check (its cells are its tables') guards the report itself.
    upstream = graph.get_ancestor_asset_keys(AssetKey("study_report")) | {AssetKey("study_report")}
    guarded = {key.asset_key for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}
    assert AssetKey("adtte") in guarded and AssetKey("baseline_summary") in guarded
    # The ADaM exports are a publication of their own beside the report (outputs/adam/), with ADTR, which only they carry.
    exports = {AssetKey("adam_exports"), AssetKey("adtr")}
    assert guarded <= upstream | exports, sorted(k.to_user_string() for k in guarded - upstream - exports)


def _run_everything(paths):
    job = defs_for(paths).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(raise_on_error=False)


def _materialized(result) -> set[str]:
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def test_real_study_report_is_written_where_its_metadata_links(shipped_run, platform_env):
    result, outputs, study = shipped_run["result"], shipped_run["outputs"], shipped_run["data"]
    failed_errors = [
        (e.asset_key.to_user_string(), e.check_name)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.ERROR
    ]
    # The paper's own contradictions fail as WARN; an ERROR would be a regression and rightly stop the report.
    assert not failed_errors and "study_report" in _materialized(result), failed_errors

    written = outputs / REPORT_FILE
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("study_report"))
    metadata = event.materialization.metadata
    assert metadata["file"].value == str(written.resolve()) and metadata["report_page"].value.endswith(REPORT_FILE.as_posix())
    html = written.read_text(encoding="utf-8")
    assert not re.search(r"https?://|<script|<link", html)

    images = [base64.b64decode(i) for i in re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)]
    assert len(images) == len(CHART_NAMES) == metadata["charts"].value
    assert all(i.startswith(PNG_MAGIC) for i in images)
    # Each chart rendered once: the PNG the UI's metadata links (by its digest), the stored PNG and the report's image
    # are the same bytes.
    for chart, image in zip(CHART_NAMES, images):
        shown = next(e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(chart))
        digest = re.search(r"\?sha256=([0-9a-f]{12})$", shown.materialization.metadata["picture"].value)[1]
        assert digest == hashlib.sha256(image).hexdigest()[:12] and image == (outputs / "charts" / f"{chart}.png").read_bytes()
    # Beside the report, its trace page: a section per printed value, each printed cell linking to its own.
    traces = (written.parent / "trace.html").read_text(encoding="utf-8")
    linked = set(re.findall(r'<a href="trace.html#([^"]+)">', html))
    assert linked and all(f'<section id="{value}">' in traces for value in linked)

    # Table 1: Table 3's ages give a median of 52 where the paper prints 53, side by side in one row.
    assert _values(_row(html, "Median"))["age.median"] == ("52", "printed status-discrepancy", "53 ≠")
    # Survival: both CI methods of the PFS median, at the places the charts state them (two), so the report and
    # Figure 1 read the same numbers; the OS log(−log) upper bound is not reached (R: NA).
    assert "2.96–5.24" in html and "Brookmeyer–Crowley" in html and "6.90–not reached" in html
    # The QC record: R reproduced the tables (or, without R, the report says it did not run).
    assert ">Independent verification (R)<" in html
    assert re.search(r"<strong>([\d,]+) of \1</strong> values agree", html) or "not run: Rscript not found" in html

    for name in ("patients.csv", "response.csv", "adverse_events.csv", "provenance.csv", "printed_values.csv"):
        assert hashlib.sha256((study / name).read_bytes()).hexdigest() in html
    assert hashlib.sha256((study / "followup" / "2021-03-31.csv").read_bytes()).hexdigest() in html
    assert f"<td>dagster</td><td>{dagster.__version__}</td>" in html
    # No printed value agreeing at the printed precision is marked ≠: each ≠ is a recomputed value that differs.
    shown = [v for table in html.split(f'id="{tables.TABLE_ID_PREFIX}')[1:] for v in _values(table).values() if "status-discrepancy" in v[1]]
    assert shown
    for recomputed, _, printed in shown:
        assert recomputed == "—" or round(float(recomputed), 6) != float(printed.split()[0]), (recomputed, printed)

    # Built from its inputs: rebuilt alone, on a copy of that run's warehouse and outputs and a fresh instance whose
    # event log has never seen a chart or a raw file.
    assert not re.search(r"\.instance\b|get_latest_materialization|event_log", inspect.getsource(report_defs))
    start_from_shipped_run(shipped_run, platform_env)
    written = platform_env["outputs"] / REPORT_FILE
    written.unlink()
    alone = (
        defs_for(platform_env)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(asset_selection=[AssetKey("study_report")], instance=DagsterInstance.ephemeral())
    )
    assert alone.success and _materialized(alone) == {"study_report"}
    rebuilt = written.read_text(encoding="utf-8")
    assert [base64.b64decode(i) for i in re.findall(r'<img src="data:image/png;base64,([^"]+)"', rebuilt)] == images
    assert hashlib.sha256((platform_env["data"] / "patients.csv").read_bytes()).hexdigest() in rebuilt


@pytest.mark.slow
def test_failed_error_check_upstream_stops_the_report(platform_env):
    cut = pl.read_csv(platform_env["data"] / "followup" / "2021-03-31.csv")
    # A later cut that undoes patient 3's death: `followup_cuts_consistent` (blocking, ERROR) fails on adtte.
    cut.with_columns(pl.when(pl.col("patient_id") == 3).then(0).otherwise(pl.col("died")).alias("died")).write_csv(
        platform_env["data"] / "followup" / "2022-03-31.csv"
    )
    result = _run_everything(platform_env)

    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_consistent")
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    # Write-audit-publish: the check runs on the candidate in the ADaM step, which fails without storing it.
    assert "adtte" not in _materialized(result)
    assert [e.step_key for e in result.get_step_failure_events()] == ["adam"]
    assert list(failure_first_lines(result)) == ["adtte"]
    assert "study_report" not in _materialized(result)
    assert not (platform_env["outputs"] / REPORT_FILE).exists()


def _laid_out_tables() -> dict[str, pl.DataFrame]:
    """Empty summary tables with the columns the report's row labels come from."""
    return {
        "baseline_summary": pl.DataFrame(schema={"key": pl.String, "characteristic": pl.String, "level": pl.String}),
        "response_summary": pl.DataFrame(schema={"key": pl.String, "row": pl.String}),
        "ae_summary": pl.DataFrame(schema={"key": pl.String, "term": pl.String}),
        "survival_summary": pl.DataFrame(schema={"data_cut": pl.Date}),
    }


def test_the_report_tables_and_survival_labels_come_from_the_study_file():
    from lms_assets.records.study import ReportTable
    from lms_assets_tests.conftest import SHIPPED_STUDY

    study = dataclasses.replace(SHIPPED_STUDY, survival_rows=(("os", "OS, months"),))
    assert report_defs._spines(_laid_out_tables(), study)["survival_summary"].rows() == [("os", "OS, months")]
    unlaid = dataclasses.replace(
        study, report_tables=(*study.report_tables, ReportTable("Table 5", "Table 5", ("response_summary", "tumour_shrinkage")))
    )
    with pytest.raises(RecordFileError) as refused:
        report_defs._comparisons(_laid_out_tables(), registry(), audit(), unlaid)
    assert str(refused.value).startswith("study.toml: report_tables[4].owners names 'tumour_shrinkage', not a table the report lays out (")
