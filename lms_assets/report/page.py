"""The study report: one self-contained HTML page a biostatistician attaches to a review.

Pure: every input is passed in as a frame or a value; nothing is read here. The page needs no network:
styles are inline, charts are inline PNG data URIs, and there are no scripts or external links.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import importlib.metadata
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from lms_assets.audit import consistency as audit_rules
from lms_assets.audit import verification
from lms_assets.graphs import render
from lms_assets.tables import printed as fig

COMPARISON_SCHEMA = pl.Schema({
    "row": pl.Int64,
    "order": pl.Int64,
    "label": pl.String,
    "statistic": pl.String,
    "quantity": pl.String,
    "recomputed": pl.Float64,
    "figure_id": pl.String,
    "printed": pl.String,
    "printed_value": pl.Float64,
    "decimals": pl.Int64,
    "status": pl.String,
    "explanation": pl.String,
})

# Marks beside a printed value, so the verdict survives printing in black and white.
STATUS_MARKS = {"reproduced": "✓", "discrepancy": "≠", "not_recomputable": "?"}

SURVIVAL_METHODS = {
    "spss": "SPSS 24: median ± 1.96·SE, SE = Greenwood SE of S(median) / density (Collett); the paper's method",
    "brookmeyer_crowley_loglog": "Brookmeyer–Crowley: the pointwise log(−log) band crossing S = 0.5 (R survival, lifelines)",
}

REPORTED_PACKAGES = (
    "lms-assets", "dagster", "dagster-webserver", "dagster-duckdb-polars", "duckdb", "polars", "pyarrow",
    "lifelines", "scipy", "numpy", "altair", "vl-convert-python",
)


@dataclass(frozen=True)
class Chart:
    """A chart as the chart asset rendered it: PNG bytes, a title and what it shows."""

    name: str
    title: str
    description: str
    png: bytes


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; each frame as its asset stores it."""

    title: str
    generated_at: dt.datetime
    run_id: str
    patients: int
    data_cuts: Sequence[str]
    tables: dict[str, pl.DataFrame]  # heading -> frame from ``compare_with_printed``
    survival_summary: pl.DataFrame
    charts: Sequence[Chart]
    audit: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame  # file, sha256, rows
    provenance: pl.DataFrame
    versions: dict[str, str]
    # ``independent_verification`` as stored; None when the report is built without it.
    verification: pl.DataFrame | None = None
    sensitivity: pl.DataFrame | None = None  # reconstruction_sensitivity; None leaves the section out


def package_versions(names: Iterable[str] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed version of each package (and Python), so a reader can rebuild the environment."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def compare_with_printed(
    spine: pl.DataFrame, figures: pl.DataFrame, registry: pl.DataFrame, audit: pl.DataFrame, source: str
) -> pl.DataFrame:
    """Each recomputed figure of a table's rows beside the value the paper printed in ``source``, with the audit's verdict.

    ``spine`` gives the rows (``key``, ``label``) in the table's order; a row's figures are the quantities
    ``key`` or ``key.<statistic>`` of ``figures``. A printed figure of ``source`` that no row recomputes is
    kept as a row of its own, so nothing the paper printed is dropped. ``order`` places the statistics as
    the paper prints them (registry order), then those it does not print.
    """
    printed = registry.filter(pl.col("source") == source).select(
        "figure_id", "quantity", "printed", pl.col("value").alias("printed_value"), "decimals"
    )
    rank = {quantity: i for i, quantity in enumerate(printed["quantity"].to_list())}
    figures_values = list(zip(figures["quantity"].to_list(), figures["value"].to_list()))
    cells = []
    for row, (key, label) in enumerate(spine.select("key", "label").iter_rows()):
        for position, (quantity, value) in enumerate(figures_values):
            if quantity == key or quantity.startswith(f"{key}."):
                order = rank.get(quantity, len(rank) + position)
                cells.append((row, order, label, quantity[len(key) + 1 :] or "value", quantity, value))
    recomputed = pl.DataFrame(
        cells, schema=["row", "order", "label", "statistic", "quantity", "recomputed"], orient="row"
    ).cast({"row": pl.Int64, "order": pl.Int64, "label": pl.String, "statistic": pl.String, "quantity": pl.String, "recomputed": pl.Float64})
    joined = recomputed.join(printed, on="quantity", how="full", coalesce=True)
    unmatched = pl.col("row").is_null()
    joined = joined.with_columns(
        pl.when(unmatched).then(spine.height + pl.int_range(pl.len())).otherwise(pl.col("row")).alias("row"),
        pl.col("order").fill_null(pl.col("quantity").replace_strict(rank, default=None, return_dtype=pl.Int64)),
        pl.when(unmatched).then(pl.col("quantity")).otherwise(pl.col("label")).alias("label"),
        pl.col("statistic").fill_null("value"),
    )
    # The status is decided here, by the same verdict rule as the checks and figure_audit, from the value this
    # table shows and the audit's findings about the printing (test_audit asserts the report, figure_audit and the checks agree).
    verdicts = audit.select("figure_id", "findings", "explanation", "hypotheses")
    joined = joined.join(verdicts, on="figure_id", how="left")
    statuses = [
        None if figure_id is None else audit_rules.status_of(fig.compare(printed_value, decimals, recomputed), findings or [])
        for figure_id, printed_value, decimals, recomputed, findings in joined.select(
            "figure_id", "printed_value", "decimals", "recomputed", "findings"
        ).iter_rows()
    ]
    explanation = pl.concat_str(
        [pl.col("explanation").fill_null(""), pl.col("hypotheses").fill_null("")], separator=" "
    ).str.strip_chars()
    return (
        joined.with_columns(pl.Series("status", statuses, dtype=pl.String), explanation.alias("explanation"))
        .select(list(COMPARISON_SCHEMA))
        .cast(COMPARISON_SCHEMA)
        .sort("row", "order")
    )


# Data-borne text in the page is escaped and clipped: a table row shows at most REPORT_CELL_CHARS characters
# of a cell (the full value stays in the warehouse), and a long table at most REPORT_TABLE_ROWS rows.
REPORT_CELL_CHARS = 1000
REPORT_TABLE_ROWS = 500


def _esc(value: object) -> str:
    return html.escape(render.clip("" if value is None else str(value), REPORT_CELL_CHARS))


def _recomputed_text(value: float | None, decimals: int | None) -> str:
    """A recomputed value at the printed precision plus one digit; counts as whole numbers."""
    if value is None:
        return "—"
    if float(value).is_integer() and (decimals is None or decimals == 0):
        return str(int(value))
    if decimals is None:
        return f"{value:.2f}"
    return fig.format_value(value, decimals)


def _statistic_heading(statistic: str) -> str:
    words = {"n": "n", "pct": "%", "g12": "grade 1–2", "g34": "grade 3–4", "g5": "grade 5", "any": "any grade"}
    return " ".join(words.get(part, part.replace("_", " ")) for part in statistic.split("."))


def table_html(frame: pl.DataFrame, caption: str = "", row_class: str | None = None, table_class: str = "") -> str:
    """A plain HTML table of the first REPORT_TABLE_ROWS rows, saying how many more there are; ``row_class``
    names a column whose value becomes the row's CSS class."""
    columns = [c for c in frame.columns if c != row_class]
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    rows = []
    for record in frame.head(REPORT_TABLE_ROWS).iter_rows(named=True):
        css = f' class="{_esc(record[row_class])}"' if row_class else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{_esc(render.cell_text(record[c]))}</td>" for c in columns) + "</tr>")
    if frame.height > REPORT_TABLE_ROWS:
        more = frame.height - REPORT_TABLE_ROWS
        rows.append(f'<tr><td colspan="{len(columns)}">{more} more rows not shown; the full table is in the warehouse.</td></tr>')
    caption_html = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table class="{table_class}">{caption_html}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def comparison_html(cells: pl.DataFrame, caption: str) -> str:
    """One row per table row; per statistic the recomputed value beside the printed one, marked with the audit's verdict."""
    statistics = cells.group_by("statistic").agg(pl.col("order").min()).sort("order")["statistic"].to_list()
    printed_statistics = set(cells.filter(pl.col("printed").is_not_null())["statistic"].to_list())
    top = "".join(
        f'<th colspan="2">{_esc(_statistic_heading(s))}</th>' if s in printed_statistics else f'<th rowspan="2">{_esc(_statistic_heading(s))}<br><small>not printed</small></th>'
        for s in statistics
    )
    sub = "".join('<th class="sub">recomputed</th><th class="sub">printed</th>' for s in statistics if s in printed_statistics)
    body = []
    for (_row, label), group in cells.group_by("row", "label", maintain_order=True):
        by_statistic = {r["statistic"]: r for r in group.iter_rows(named=True)}
        tds = [f'<th scope="row">{_esc(label)}</th>']
        for statistic in statistics:
            cell = by_statistic.get(statistic)
            decimals = cell["decimals"] if cell else None
            tds.append(f'<td class="num">{_esc(_recomputed_text(cell["recomputed"] if cell else None, decimals))}</td>')
            if statistic in printed_statistics:
                tds.append(_printed_td(cell))
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f'<div class="scroll"><table class="comparison"><caption>{_esc(caption)}</caption>'
        f'<thead><tr><th rowspan="2">Row</th>{top}</tr><tr>{sub}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _printed_td(cell: dict | None) -> str:
    if cell is None or cell["printed_value"] is None:
        return '<td class="num printed">—</td>'
    status = cell["status"] or "unaudited"
    value = f"{cell['printed_value']:.{cell['decimals']}f}"
    tooltip = f"printed: {cell['printed']} ({cell['figure_id']})" + (f" — {cell['explanation']}" if cell["explanation"] else "")
    mark = STATUS_MARKS.get(status, "")
    return f'<td class="num printed status-{_esc(status)}" title="{_esc(tooltip)}">{_esc(value)} {mark}</td>'


def survival_html(summary: pl.DataFrame) -> str:
    """Median survival per endpoint and data cut, once per confidence-interval method."""
    rows = summary.sort("data_cut", "endpoint", "method").select(
        pl.col("data_cut").cast(pl.String).alias("data cut"),
        "endpoint",
        pl.col("method").replace_strict(SURVIVAL_METHODS, default=pl.col("method")).alias("95% CI method"),
        pl.col("n").alias("patients"),
        "events",
        pl.col("median").round(2).alias("median (months; first S ≤ 0.5, SPSS)"),
        pl.col("median_midpoint").round(2).alias("median (R/SAS plateau midpoint)"),
        pl.format(
            "{}–{}", *(pl.col(b).round(2).cast(pl.String).fill_null("not reached") for b in ("ci_lower", "ci_upper"))
        ).alias("95% CI (months)"),
        pl.col("se").round(3).alias("SE"),
        "note",
    )
    return table_html(rows, "Median PFS and OS with the 95% CI by each method")


def charts_html(charts: Sequence[Chart]) -> str:
    figures = []
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        figures.append(
            f'<figure id="chart-{_esc(chart.name)}"><img src="data:image/png;base64,{data}" alt="{_esc(chart.title)}">'
            f"<figcaption><strong>{_esc(chart.title)}</strong> ({_esc(chart.name)}). {_esc(chart.description)}</figcaption></figure>"
        )
    return "".join(figures) or "<p>No charts were materialized.</p>"


def audit_summary(audit: pl.DataFrame) -> pl.DataFrame:
    """Printed figures by audit status and basis."""
    return audit.group_by("status", "basis").len("figures").sort("status", "basis")


def audit_html(audit: pl.DataFrame) -> str:
    shown = audit.select(
        "figure_id", "source", "quantity", "published", "shown", "status", pl.col("check_outcome").alias("check"), "basis",
        "computed_by", "patients", "sensitivity_verdict", "sensitivity_range", "explanation", "hypotheses",
        pl.format("status-{}", pl.col("status")).alias("css"),
    )
    not_reproduced = shown.filter(pl.col("status") != "reproduced").select(
        "figure_id", "published", "shown", "status", "check", "basis", "sensitivity_verdict", "explanation", "hypotheses", "css"
    )
    return (
        table_html(audit_summary(audit), "Printed figures by status and basis")
        + "<p>A figure reproduced from <em>reconstructed inputs</em> proves the pipeline's arithmetic, not the paper. "
        "<em>Hypotheses</em> are explanations the numbers fit (a rounded mean printed as a median, another denominator, "
        "another CI method, a copied bound); fitting does not prove them. <em>check</em> is the published-figure check: "
        "WARN only for a reviewed discrepancy (data/known_discrepancies.csv) that still stands.</p>"
        + table_html(not_reproduced, f"{not_reproduced.height} printed figures not reproduced, with the reason", "css", "audit")
        + f"<details open><summary>All {shown.height} audited figures</summary>"
        + table_html(shown, "Every printed figure: published, recomputed, status, basis and explanation", "css", "audit")
        + "</details>"
    )


def provenance_html(files: pl.DataFrame, provenance: pl.DataFrame) -> str:
    marked = provenance.with_columns(pl.format("origin-{}", pl.col("origin")).alias("css"))
    return (
        table_html(files, "Record files read, with the SHA-256 of their content at ingest")
        + table_html(marked, "Where each value came from: transcribed from the paper, or reconstructed (and the constraint it meets)", row_class="css")
    )


def _summary_items(inputs: ReportInputs) -> list[tuple[str, str]]:
    statuses = dict(inputs.audit.group_by("status").len().iter_rows()) if inputs.audit.height else {}
    reconstructed = inputs.provenance.filter(pl.col("origin") == "reconstructed")
    return [
        ("Patients", str(inputs.patients)),
        ("Data cuts", ", ".join(inputs.data_cuts) or "none"),
        ("Printed figures audited", str(inputs.audit.height)),
        *((f"… {status.replace('_', ' ')}", str(n)) for status, n in sorted(statuses.items())),
        ("Quarantined record problems", str(inputs.quarantine.height)),
        ("Reconstructed inputs", f"{reconstructed.height} provenance entries (see Data provenance)"),
        ("Charts", str(len(inputs.charts))),
        ("Dagster run", inputs.run_id),
        ("Written", inputs.generated_at.isoformat(timespec="seconds")),
    ]


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 1400px; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0 1.4rem; font-size: .85rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .45rem; vertical-align: top; text-align: left; }
thead th { background: #f1f3f5; } th.sub { font-weight: 400; font-size: .75rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status-reproduced { background: #e6f4ea; } .status-discrepancy { background: #fde7e7; }
.status-not_recomputable { background: #fff4d6; } .origin-reconstructed { background: #fff4d6; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2rem 1.2rem; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #444; max-width: 60rem; }
.scroll { overflow-x: auto; } table.audit td:last-child { min-width: 24rem; }
details summary { cursor: pointer; font-weight: 600; margin: .6rem 0; }
.legend span { padding: 0 .4rem; margin-right: .6rem; }
"""


def study_report_html(inputs: ReportInputs) -> str:
    """The whole report as one HTML document that opens offline."""
    summary = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in _summary_items(inputs))
    tables = "".join(comparison_html(cells, heading) for heading, cells in inputs.tables.items())
    versions = pl.DataFrame({"package": list(inputs.versions), "version": list(inputs.versions.values())})
    legend = (
        '<p class="legend">Printed values: <span class="status-reproduced">✓ reproduced</span>'
        '<span class="status-discrepancy">≠ discrepancy</span><span class="status-not_recomputable">? not recomputable</span>'
        "Recomputed values carry one digit more than printed; hover a printed value for the paper's words and the audit's reason.</p>"
    )
    sections = [
        ("summary", "Study summary", f'<dl class="summary">{summary}</dl>'),
        ("tables", "Tables 1, 2 and 4, recomputed beside the printed values", legend + tables),
        ("survival", "Survival", survival_html(inputs.survival_summary)),
        ("charts", "Charts", charts_html(inputs.charts)),
        ("audit", "Audit of every printed figure", audit_html(inputs.audit)),
        *((("sensitivity", "What the paper's data permits", sensitivity_html(inputs.sensitivity)),) if inputs.sensitivity is not None else ()),
        ("quarantine", "Quarantined record rows", table_html(inputs.quarantine, f"{inputs.quarantine.height} problems kept out of the cohort")),
        ("provenance", "Data provenance", provenance_html(inputs.files, inputs.provenance)),
        ("verification", "Independent verification (R)", verification_html(inputs.verification)),
        ("versions", "Package versions", table_html(versions)),
    ]
    nav = " · ".join(f'<a href="#{anchor}">{_esc(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(f'<section id="{anchor}"><h2>{_esc(heading)}</h2>{content}</section>' for anchor, heading, content in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(inputs.title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{_esc(inputs.title)}</h1><nav>{nav}</nav>{body}</body></html>"
    )


def verification_html(table: pl.DataFrame | None) -> str:
    """The QC record of the double programming: what R reproduced, its versions, how many values agreed, every named exception."""
    if table is None:
        return "<p><strong>Not run:</strong> the independent_verification asset was not part of this report.</p>"
    summary = verification.verification_summary(table)
    if not summary["comparisons"]:
        return f"<p><strong>{_esc(summary['status'])}.</strong> Nothing was compared with R, so nothing here is independently verified.</p>"
    headline = (
        f"<p><strong>{summary['agreed']:,} of {summary['comparisons']:,}</strong> values agree with an independent R program "
        f"({_esc(summary['reference'])}; lms_assets_tests/reference/survival_check.R, written from R's survival and stats "
        f"functions and reading only the record files): |ours − R| ≤ {verification.TOLERANCE:g}·max(1, |R|), or both not "
        f"estimable. {summary['disagreed']} disagree; {summary['missing']} are on one side only.</p>"
    )
    figures = pl.DataFrame(summary["figures"]).select(
        "table", pl.col("figure").alias("reproduces"), pl.col("comparisons").alias("values compared"), "agreed"
    )
    exceptions = "".join(
        f"<li><code>{_esc(e['name'])}</code> ({e['comparisons']} comparisons, tolerance {e['tolerance']:g}): {_esc(e['reason'])}</li>"
        for e in summary["exceptions"]
    )
    problems = table.filter(pl.col("status") != verification.AGREE).select(
        "table", "data_cut", "endpoint", "key", "time", "statistic", "ours", "r", "status"
    )
    return (
        headline
        + table_html(figures, "What R reproduced, per table")
        + f"<p>Named exceptions (the only comparisons made under another convention or tolerance):</p><ul>{exceptions}</ul>"
        + (table_html(problems, f"{problems.height} values that do not agree with R") if problems.height else "")
    )


# Only "depends" is highlighted: a robust result may be a robust discrepancy, so green would mislead.
SENSITIVITY_VERDICT_CSS = {"depends on the reconstruction": "status-not_recomputable"}


def sensitivity_html(table: pl.DataFrame) -> str:
    """Every result resting on reconstructed inputs: its range over the consistent reconstructions, shipped value, coverage and verdict."""
    varied = table.filter(pl.col("reconstructions").is_not_null() | pl.col("conclusion").is_not_null())
    shown = varied.select(
        "result", "figure_id", "label", "rests_on", "verdict", "sensitivity_range", "coverage", "note",
        pl.col("verdict").replace_strict(SENSITIVITY_VERDICT_CSS, default="").alias("css"),
    )
    counts = table.group_by("verdict").len("results").sort("verdict")
    return (
        "<p>The records are partly reconstructed: the living patients' last-contact times and the allocation of primary "
        "site and starting dose are chosen to meet what the paper prints. Each result below is recomputed under every "
        "consistent reconstruction (or a seeded sample, where the space is too large; sampled ranges are inner bounds). "
        "<em>Robust</em> means the same conclusion under every reconstruction consistent with the paper's constraints; "
        "it says nothing about patients outside those constraints.</p>"
        + table_html(counts, "Results and printed figures by sensitivity verdict")
        + table_html(shown, f"{shown.height} results over the consistent reconstructions", "css", "audit")
    )
