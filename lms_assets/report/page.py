"""The study report's HTML: one self-contained page a biostatistician attaches to a review, from the values it is given.

Templates only: every number is computed by the module its section names (``comparison``, ``marks``, ``survival_table``,
``inputs``; ``audit.verification`` for R's QC record) and passed in, and Tables 1, 2 and 4 are laid out by ``tables``
(great_tables); nothing is read here. The page needs no network: styles are in the page, charts are inline PNG data
URIs, and there are no scripts, fonts or external links. A table of contents
heads it; the long appendices (every printed value, every reconstruction result) are folded and compact, so the page
reads as a document, and print CSS prints them open.

One rounding rule: every value is shown half up on its decimal (``printed.fixed``), a recomputed one at the
printed precision plus one digit (``printed.format_value``, as ``printed_audit``'s ``shown``), a printed one at
its printed precision. Each printed value carries one of four marks (``marks.MARKS``), explained in a legend at the top.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Collection, Sequence

import polars as pl

from lms_assets.audit import sensitivity_summary as sensitivity_rules
from lms_assets.audit import verification
from lms_assets.checks import printed_values as audit_rules
from lms_assets.graphs.render import Chart
from lms_assets.report.inputs import ReportInputs, summary_items
from lms_assets.report.marks import (
    BASIS_SHORT,
    BASIS_WORDS,
    MARKS,
    RECONSTRUCTED_DISCREPANCY_WORDS,
    RECONSTRUCTED_MARK,
    RECONSTRUCTED_VALUE_WORDS,
    RECONSTRUCTED_WORDS,
    audit_summary,
    marked_audit,
)
from lms_assets.report.markup import STYLE, cut_words, table_html, text_html
from lms_assets.report.survival_table import survival_rows
from lms_assets.report.tables import comparison_tables_html

# Anchors of the long tables the table of contents links to (a section's own anchor is its id).
AUDIT_NOT_REPRODUCED = "audit-not-reproduced"
AUDIT_ALL_VALUES = "audit-all-values"
SENSITIVITY_RESULTS = "sensitivity-results"
PROVENANCE_VALUES = "provenance-values"


def legend_html() -> str:
    """What each mark beside a printed value means; the page's tables, the audit included, use these marks."""
    items = "".join(
        f'<li><span class="mark status-{key}">{text_html(symbol)}</span> {text_html(words)}</li>' for key, (symbol, words) in MARKS.items()
    )
    items += (
        f'<li><span class="mark status-reproduced reconstructed-basis">✓{RECONSTRUCTED_MARK}</span> '
        f"(and ✓†{RECONSTRUCTED_MARK}) reproduced {text_html(RECONSTRUCTED_WORDS)}</li>"
        f'<li><span class="mark status-discrepancy reconstructed-basis">≠{RECONSTRUCTED_MARK}</span> {text_html(RECONSTRUCTED_DISCREPANCY_WORDS)}</li>'
        f'<li><span class="mark reconstructed-basis">{RECONSTRUCTED_MARK}</span> {text_html(RECONSTRUCTED_VALUE_WORDS)}</li>'
    )
    return (
        '<div class="legend"><p><strong>Marks beside printed values</strong> (printed_audit counts ✓† as a discrepancy):</p>'
        f"<ul>{items}</ul><p>Values are rounded half up: printed values at the printed precision, recomputed ones "
        "with one digit more, so a reader sees how close they came; hover a printed value for the paper's words and "
        "the audit's reason.</p></div>"
    )


def survival_html(summary: pl.DataFrame, registry: pl.DataFrame, reconstructed: Collection[tuple[str, str]] = ()) -> str:
    """The survival section: ``survival_table.survival_rows``, captioned with its cuts and what ``*`` means."""
    frame = survival_rows(summary, registry, reconstructed)
    cuts = summary["data_cut"].unique().sort().to_list()
    marks = f"; {RECONSTRUCTED_MARK}: rests on reconstructed last-contact times (ADTTE AVALRFL = Y)" if reconstructed else ""
    return table_html(frame, f"Median PFS and OS with the 95% CI by each method — {cut_words(cuts)}{marks}")


def charts_html(charts: Sequence[Chart]) -> str:
    values = []
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        values.append(
            f'<figure id="chart-{text_html(chart.name)}"><img src="data:image/png;base64,{data}" alt="{text_html(chart.title)}">'
            f"<figcaption><strong>{text_html(chart.title)}</strong> ({text_html(chart.name)}). <strong>Data cut:</strong> "
            f"{text_html(chart.data_cut)}. {text_html(chart.description)}</figcaption></figure>"
        )
    return "".join(values) or "<p>No charts were materialized.</p>"


def audit_html(audit: pl.DataFrame, registry: pl.DataFrame, cut: dt.date | None) -> str:
    marked = marked_audit(audit, registry)
    short_basis = pl.col("basis").replace_strict(BASIS_SHORT, default=pl.col("basis"))
    moved = pl.col("sensitivity_verdict").is_not_null() & (pl.col("sensitivity_verdict") != sensitivity_rules.FIXED)
    marked = marked.with_columns(
        pl.col("basis").replace_strict(BASIS_WORDS, default=pl.col("basis")).alias("basis"),
        pl.when(moved)
        .then(pl.concat_str([short_basis, pl.col("sensitivity_verdict")], separator=", "))
        .otherwise(short_basis)
        .alias("basis, sensitivity"),
        pl.col("source").alias("printed in"),
    )
    at = f"recomputed at {cut_words([cut])}"
    # Compact: one heading row per printing section instead of the section on every row, the verdict as its mark
    # (the legend at the top says what each means), the reasons and hypotheses on a full-width line under their row.
    # The columns both tables of values lead with.
    value = (
        "printed in",
        "value_id",
        "published",
        "shown",
        pl.col("symbol").alias("mark"),
        pl.col("check_outcome").alias("check"),
        "basis, sensitivity",
    )
    not_reproduced = marked.filter(pl.col("mark") != audit_rules.REPRODUCED).select(
        *value,
        "verdict",
        "explanation",
        "hypotheses",
        "css",
    )
    # Every value in one table that fits the page, folded: the reasons of those not reproduced are in the table
    # above it, the sensitivity ranges in "What the paper's data permits".
    shown = marked.select(
        *value,
        "computed_by",
        "patients",
        "css",
    )
    return (
        table_html(audit_summary(marked), f"Printed values by verdict and basis — {at}")
        + "<p>A value reproduced from <em>reconstructed inputs</em> proves the pipeline's arithmetic, not the paper. "
        "<em>Hypotheses</em> are explanations the numbers fit (a rounded mean printed as a median, another denominator, "
        "another CI method, a copied bound); fitting does not prove them. <em>check</em> is the printed-value check: "
        "WARN only for a reviewed discrepancy (data/known_discrepancies.csv) that still stands. <em>shown</em> is the "
        "recomputed value at the printed precision plus one digit; <em>mark</em> is explained in the legend at the top. "
        "<em>basis</em>: <em>Table 3</em> is the paper's published patient rows, <em>reconstructed</em> the reconstructed "
        "inputs, with its sensitivity verdict when the reconstruction could move the value (robust, or depends on it).</p>"
        + table_html(
            not_reproduced,
            f"{not_reproduced.height} printed values not reproduced, with the reason — {at}",
            "css",
            "audit",
            group_by=["printed in"],
            details=["verdict", "explanation", "hypotheses"],
            anchor=AUDIT_NOT_REPRODUCED,
        )
        + table_html(
            shown,
            f"All {shown.height} printed values: published, recomputed (shown), mark, check, basis and patients — {at}",
            "css",
            "audit",
            group_by=["printed in"],
            anchor=AUDIT_ALL_VALUES,
        )
    )


def provenance_html(files: pl.DataFrame, provenance: pl.DataFrame) -> str:
    marked = provenance.with_columns(pl.format("origin-{}", pl.col("origin")).alias("css"))
    return table_html(files, "Record files read, with the SHA-256 of their content at ingest (each follow-up file is one data cut)") + table_html(
        marked,
        "Where each value came from: transcribed from the paper, or reconstructed (and the constraint it meets) — the records of every data cut",
        row_class="css",
        anchor=PROVENANCE_VALUES,
    )


def study_report_html(inputs: ReportInputs) -> str:
    """The whole report as one HTML document that opens offline: a table of contents, the legend, then the sections."""
    summary = "".join(f"<dt>{text_html(k)}</dt><dd>{text_html(v)}</dd>" for k, v in summary_items(inputs))
    at = cut_words([inputs.published_cut])
    tables = comparison_tables_html(inputs.tables, at)
    versions = pl.DataFrame({"package": list(inputs.versions), "version": list(inputs.versions.values())})
    audited = inputs.audit.height
    not_reproduced = marked_audit(inputs.audit, inputs.registry).filter(pl.col("mark") != audit_rules.REPRODUCED).height if audited else 0
    # (anchor, heading, content, the parts of it the contents link to: (anchor, words)).
    sections: list[tuple[str, str, str, list[tuple[str, str]]]] = [
        ("summary", "Study summary", f'<dl class="summary">{summary}</dl>', []),
        ("tables", "Tables 1, 2 and 4, recomputed beside the printed values", tables, []),
        ("survival", "Survival", survival_html(inputs.survival_summary, inputs.registry, inputs.reconstructed), []),
        ("charts", "Charts", charts_html(inputs.charts), [(f"chart-{c.name}", c.title) for c in inputs.charts]),
        (
            "audit",
            "Audit of every printed value",
            audit_html(inputs.audit, inputs.registry, inputs.published_cut),
            [
                (AUDIT_NOT_REPRODUCED, f"{not_reproduced} printed values not reproduced, with the reason"),
                (AUDIT_ALL_VALUES, f"All {audited} printed values"),
            ],
        ),
        *(
            (
                (
                    "sensitivity",
                    "What the paper's data permits",
                    sensitivity_html(inputs.sensitivity, inputs.published_cut),
                    [(SENSITIVITY_RESULTS, "Results over the consistent reconstructions")],
                ),
            )
            if inputs.sensitivity is not None
            else ()
        ),
        (
            "quarantine",
            "Quarantined record rows",
            table_html(inputs.quarantine, f"{inputs.quarantine.height} problems kept out of the cohort — every file delivered, all data cuts"),
            [],
        ),
        (
            "provenance",
            "Data provenance",
            provenance_html(inputs.files, inputs.provenance),
            [(PROVENANCE_VALUES, "Where each value came from")],
        ),
        *(
            (("changes", "What changed between data cuts", changes_html(inputs.changes, inputs.results_files or {}), []),)
            if inputs.changes is not None
            else ()
        ),
        ("verification", "Independent verification (R)", verification_html(inputs.verification), []),
        ("versions", "Package versions", table_html(versions), []),
    ]
    body = "".join(f'<section id="{anchor}"><h2>{text_html(heading)}</h2>{content}</section>' for anchor, heading, content, _ in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{text_html(inputs.title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{text_html(inputs.title)}</h1>{contents_html(sections, body)}{legend_html()}{body}</body></html>"
    )


def _folded_at(body: str, position: int) -> bool:
    """Whether ``position`` of the page's body lies inside a folded table (``table_html`` never nests them)."""
    start = body.rfind("<details", 0, position)
    return start != -1 and body.find("</details>", start, position) == -1


def contents_html(sections: Sequence[tuple[str, str, str, Sequence[tuple[str, str]]]], body: str) -> str:
    """The table of contents: every section and the parts of it listed, each a link; a folded table is said to be.

    A link into a folded table opens it (the browser unfolds the <details> holding the target). Only anchors the
    page's ``body`` holds are listed, so no link leads nowhere.
    """
    items = []
    for anchor, heading, _, parts in sections:
        found = [(part, words, body.find(f'id="{text_html(part)}"')) for part, words in parts]
        inner = "".join(
            f'<li><a href="#{text_html(part)}">{text_html(words)}</a>' + (" <small>(folded)</small>" if _folded_at(body, at) else "") + "</li>"
            for part, words, at in found
            if at != -1
        )
        items.append(f'<li><a href="#{anchor}">{text_html(heading)}</a>' + (f"<ol>{inner}</ol>" if inner else "") + "</li>")
    return f'<nav class="contents" aria-label="Contents"><h2>Contents</h2><ol>{"".join(items)}</ol></nav>'


def changes_html(changes: pl.DataFrame, results_files: dict[str, str]) -> str:
    """cut_changes as a table, after links to the analysis-results files every statistic of each cut is in."""
    # The report sits in report/ under the outputs folder, the files beside it in results/.
    links = ", ".join(f'<a href="../{text_html(path)}">{text_html(path.rsplit("/", 1)[-1])}</a>' for path in results_files.values())
    files = f"<p>Every statistic of the published cut, one row each (analysis_results): {links}.</p>" if links else ""
    if changes.is_empty():
        return files + "<p>One data cut: nothing changed.</p>"
    shown = changes.with_columns(pl.col("earlier_cut", "later_cut").cast(pl.String))
    return files + table_html(shown, f"{changes.height} changes from each data cut to the next", details=("basis",))


def verification_html(table: pl.DataFrame | None) -> str:
    """The QC record of the double programming: what R reproduced, its versions, how many values agreed, every named exception."""
    if table is None:
        return "<p><strong>Not run:</strong> the r_verification asset was not part of this report.</p>"
    summary = verification.verification_summary(table)
    if not summary["comparisons"]:
        return f"<p><strong>{text_html(summary['status'])}.</strong> Nothing was compared with R, so nothing here is independently verified.</p>"
    headline = (
        f"<p><strong>{summary['agreed']:,} of {summary['comparisons']:,}</strong> values agree with an independent R program "
        f"({text_html(summary['reference'])}; lms_assets/audit/survival_check.R, written from R's survival and stats "
        f"functions and reading only the record files): |ours − R| ≤ {verification.TOLERANCE:g}·max(1, |R|), or both not "
        f"estimable. {summary['disagreed']} disagree; {summary['missing']} are on one side only.</p>"
    )
    values = pl.DataFrame(summary["values"]).select(
        "table", pl.col("value").alias("reproduces"), pl.col("comparisons").alias("values compared"), "agreed"
    )
    exceptions = "".join(
        f"<li><code>{text_html(e['name'])}</code> ({e['comparisons']} comparisons, tolerance {e['tolerance']:g}): {text_html(e['reason'])}</li>"
        for e in summary["exceptions"]
    )
    cuts = table["data_cut"].drop_nulls().unique().sort().to_list()
    problems = table.filter(pl.col("status") != verification.AGREE).select(
        "table", "data_cut", "endpoint", "key", "time", "statistic", "ours", "r", "status"
    )
    return (
        headline
        + table_html(values, f"What R reproduced, per table — {cut_words(cuts)}")
        + f"<p>Named exceptions (the only comparisons made under another convention or tolerance):</p><ul>{exceptions}</ul>"
        + (table_html(problems, f"{problems.height} values that do not agree with R — {cut_words(cuts)}") if problems.height else "")
    )


# Only "depends" is highlighted: a robust result may be a robust discrepancy, so green would mislead.
SENSITIVITY_VERDICT_CSS = {"depends on the reconstruction": "status-not_recomputable"}


def sensitivity_html(table: pl.DataFrame, cut: dt.date | None = None) -> str:
    """Every result resting on reconstructed inputs: its range over the consistent reconstructions, shipped value, coverage and verdict."""
    varied = table.filter(pl.col("reconstructions").is_not_null() | pl.col("conclusion").is_not_null())
    # Compact: what the results rest on and the reconstructions covered are shared by many of them, said once in a
    # heading row over them instead of on every row.
    shown = varied.select(
        "rests_on",
        "coverage",
        "result",
        "value_id",
        "label",
        "verdict",
        "sensitivity_range",
        "note",
        pl.col("verdict").replace_strict(SENSITIVITY_VERDICT_CSS, default="").alias("css"),
    )
    counts = table.group_by("verdict").len("results").sort("verdict")
    return (
        "<p>The records are partly reconstructed: the living patients' last-contact times and the allocation of primary "
        "site and starting dose are chosen to meet what the paper prints. Each result below is recomputed under every "
        "consistent reconstruction (or a seeded sample, where the space is too large; sampled ranges are inner bounds). "
        "<em>Robust</em> means the same conclusion under every reconstruction consistent with the paper's constraints; "
        "it says nothing about patients outside those constraints.</p>"
        + table_html(counts, f"Results and printed values by sensitivity verdict — {cut_words([cut])}")
        + table_html(
            shown,
            f"{shown.height} results over the consistent reconstructions — {cut_words([cut])}",
            "css",
            "audit",
            group_by=["rests_on", "coverage"],
            anchor=SENSITIVITY_RESULTS,
        )
    )
