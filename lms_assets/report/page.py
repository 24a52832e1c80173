"""The study report: one self-contained HTML page a biostatistician attaches to a review.

Pure: every input is passed in as a frame or a value; nothing is read here. The page needs no network:
styles are inline, charts are inline PNG data URIs, and there are no scripts or external links. A table of
contents heads it; the long appendices (every printed figure, every reconstruction result) are folded and compact,
so the page reads as a document, and print CSS prints them open.

One rounding rule: every value is shown half up on its decimal (``printed.fixed``), a recomputed one at the
printed precision plus one digit (``printed.format_value``, as ``printed_audit``'s ``shown``), a printed one at
its printed precision. Each printed value carries one of four marks (``MARKS``), explained in a legend at the top.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import html.parser
import importlib.metadata
import platform
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from lms_assets.audit import consistency as audit_rules
from lms_assets.audit import sensitivity as sensitivity_rules
from lms_assets.audit import verification
from lms_assets.audit.basis import basis_words
from lms_assets.graphs import km, render
from lms_assets.graphs.render import Chart
from lms_assets.tables import printed as fig

__all__ = ["Chart", "ReportInputs", "study_report_html"]

COMPARISON_SCHEMA = pl.Schema(
    {
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
        "mark": pl.String,
        "basis": pl.String,
        "explanation": pl.String,
    }
)

# The report's mark of a printed value: printed_audit's status, with "reproduced here but the paper contradicts it
# elsewhere" told apart from a discrepancy (printed_audit counts it as one), so that ≠ never marks a value that agrees.
CONTRADICTED = "contradicted"
MARKS = {
    audit_rules.REPRODUCED: ("✓", "reproduced: the recomputed value agrees at the printed precision"),
    CONTRADICTED: ("✓†", "reproduced here, but the paper contradicts this printing elsewhere"),
    audit_rules.DISCREPANCY: ("≠", "discrepancy: the recomputed value differs, or nothing recomputes it and the paper contradicts it"),
    audit_rules.NOT_RECOMPUTABLE: ("?", "not recomputable: the records hold nothing that gives this value"),
}
# Added to ✓, ✓† and ≠ when the recomputed value rests on reconstructed inputs only, and beside every survival
# estimate that does.
RECONSTRUCTED_MARK = "*"
RECONSTRUCTED_WORDS = "from reconstructed inputs only: shows the pipeline's arithmetic, not that the paper is right"
RECONSTRUCTED_DISCREPANCY_WORDS = "a discrepancy from reconstructed inputs only: the reconstruction may be what differs, not the paper"
RECONSTRUCTED_VALUE_WORDS = "beside a survival estimate: it rests on reconstructed last-contact times (ADTTE AVALRFL = Y)"
RECONSTRUCTED = "reconstructed_inputs"
BASIS_WORDS = {basis: basis_words(basis) for basis in ("published_patient_data", RECONSTRUCTED)}
# The audit's long tables name the basis in a word, with the sensitivity verdict when the reconstruction could move it.
BASIS_SHORT = {"published_patient_data": "Table 3", RECONSTRUCTED: "reconstructed"}

SURVIVAL_METHODS = {
    "spss": "SPSS 24: median ± 1.96·SE, SE = Greenwood SE of S(median) / density (Collett); the paper's method",
    "brookmeyer_crowley_loglog": "Brookmeyer–Crowley: the pointwise log(−log) band crossing S = 0.5 (R survival, lifelines)",
}
# Places of a survival estimate no printing fixes (the SE; a study without a registry).
SURVIVAL_DECIMALS = 2

REPORTED_PACKAGES = (
    "lms-assets",
    "dagster",
    "dagster-webserver",
    "dagster-duckdb-polars",
    "duckdb",
    "polars",
    "pyarrow",
    "lifelines",
    "scipy",
    "numpy",
    "altair",
    "vl-convert-python",
)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; each frame as its asset stores it."""

    title: str
    generated_at: dt.datetime
    run_id: str
    patients: int
    data_cuts: Sequence[str]
    published_cut: dt.date | None  # the cut Tables 1, 2 and 4 and the audit are recomputed at
    tables: dict[str, pl.DataFrame]  # heading -> frame from ``compare_with_printed``
    registry: pl.DataFrame  # printed_values: each printing's value and decimals
    survival_summary: pl.DataFrame
    charts: Sequence[Chart]
    audit: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame  # file, sha256, rows
    provenance: pl.DataFrame
    versions: dict[str, str]
    # ``r_verification`` as stored; None when the report is built without it.
    verification: pl.DataFrame | None = None
    sensitivity: pl.DataFrame | None = None  # sensitivity_ranges; None leaves the section out
    # (data cut, endpoint) whose survival estimates rest on reconstructed follow-up (ADTTE AVALRFL = Y).
    reconstructed: Collection[tuple[str, str]] = ()


def package_versions(names: Iterable[str] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed version of each package (and Python), so a reader can rebuild the environment."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def mark_of(printed_value: float, decimals: int, recomputed: float | None, findings: Sequence[str]) -> str:
    """A printed value's mark (a key of ``MARKS``), from the one comparison and verdict rule of the checks and printed_audit."""
    comparison = fig.compare(printed_value, decimals, recomputed)
    status = audit_rules.status_of(comparison, findings)
    return CONTRADICTED if status == audit_rules.DISCREPANCY and comparison == fig.AGREES else status


def mark_text(mark: str | None, basis: str | None) -> str:
    """The mark's symbol, with ``*`` when the comparison rests on reconstructed inputs only (not on "?": nothing was recomputed)."""
    if mark is None:
        return ""
    symbol = MARKS[mark][0]
    return symbol + RECONSTRUCTED_MARK if mark != audit_rules.NOT_RECOMPUTABLE and basis == RECONSTRUCTED else symbol


def compare_with_printed(spine: pl.DataFrame, figures: pl.DataFrame, registry: pl.DataFrame, audit: pl.DataFrame, source: str) -> pl.DataFrame:
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
    recomputed = pl.DataFrame(cells, schema=["row", "order", "label", "statistic", "quantity", "recomputed"], orient="row").cast(
        {"row": pl.Int64, "order": pl.Int64, "label": pl.String, "statistic": pl.String, "quantity": pl.String, "recomputed": pl.Float64}
    )
    joined = recomputed.join(printed, on="quantity", how="full", coalesce=True)
    unmatched = pl.col("row").is_null()
    joined = joined.with_columns(
        pl.when(unmatched).then(spine.height + pl.int_range(pl.len())).otherwise(pl.col("row")).alias("row"),
        pl.col("order").fill_null(pl.col("quantity").replace_strict(rank, default=None, return_dtype=pl.Int64)),
        pl.when(unmatched).then(pl.col("quantity")).otherwise(pl.col("label")).alias("label"),
        pl.col("statistic").fill_null("value"),
    )
    # The status is decided here, by the same verdict rule as the checks and printed_audit, from the value this
    # table shows and the audit's findings about the printing (test_audit asserts the report, printed_audit and the checks agree).
    verdicts = audit.select("figure_id", "findings", "basis", "explanation", "hypotheses")
    joined = joined.join(verdicts, on="figure_id", how="left")
    judged = [
        (None, None)
        if figure_id is None
        else (
            audit_rules.status_of(fig.compare(printed_value, decimals, recomputed), findings or []),
            mark_of(printed_value, decimals, recomputed, findings or []),
        )
        for figure_id, printed_value, decimals, recomputed, findings in joined.select(
            "figure_id", "printed_value", "decimals", "recomputed", "findings"
        ).iter_rows()
    ]
    explanation = pl.concat_str([pl.col("explanation").fill_null(""), pl.col("hypotheses").fill_null("")], separator=" ").str.strip_chars()
    return (
        joined.with_columns(
            pl.Series("status", [s for s, _ in judged], dtype=pl.String),
            pl.Series("mark", [m for _, m in judged], dtype=pl.String),
            explanation.alias("explanation"),
        )
        .select(list(COMPARISON_SCHEMA))
        .cast(COMPARISON_SCHEMA)
        .sort("row", "order")
    )


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


def _cell_html(value: object) -> str:
    """A table cell's text, escaped, with ``<wbr>`` every LONGEST_UNBROKEN // 2 characters of an over-long run."""
    text = render.clip("" if value is None else str(value), REPORT_CELL_CHARS)
    parts, end = [], 0
    step = LONGEST_UNBROKEN // 2
    for run in _LONG_RUN.finditer(text):
        parts.append(html.escape(text[end : run.start()]))
        parts.append("<wbr>".join(html.escape(run[0][i : i + step]) for i in range(0, len(run[0]), step)))
        end = run.end()
    return "".join(parts) + html.escape(text[end:])


def _recomputed_text(value: float | None, decimals: int | None) -> str:
    """A recomputed value at the printed precision plus one digit (half up, as printed_audit's ``shown``); counts as whole numbers."""
    if value is None:
        return "—"
    if float(value).is_integer() and (decimals is None or decimals == 0):
        return str(int(value))
    return fig.format_value(value, SURVIVAL_DECIMALS - 1 if decimals is None else decimals)


def _statistic_heading(statistic: str) -> str:
    words = {"n": "n", "pct": "%", "g12": "grade 1–2", "g34": "grade 3–4", "g5": "grade 5", "any": "any grade"}
    return " ".join(words.get(part, part.replace("_", " ")) for part in statistic.split("."))


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
            rows.append(f'<tr class="group"><th colspan="{len(columns)}" scope="rowgroup">{_cell_html(" — ".join(named))}</th></tr>')
        rows.append(f"<tr{css}>" + "".join(f"<td>{_cell_html(render.cell_text(record[c]))}</td>" for c in columns) + "</tr>")
        notes = [f"<strong>{text_html(c)}:</strong> {_cell_html(render.cell_text(record[c]))}" for c in details if record[c] not in (None, "")]
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


def comparison_html(cells: pl.DataFrame, caption: str) -> str:
    """One row per table row; per statistic the recomputed value beside the printed one, marked with the audit's verdict."""
    statistics = cells.group_by("statistic").agg(pl.col("order").min()).sort("order")["statistic"].to_list()
    printed_statistics = set(cells.filter(pl.col("printed").is_not_null())["statistic"].to_list())
    top = "".join(
        f'<th colspan="2">{text_html(_statistic_heading(s))}</th>'
        if s in printed_statistics
        else f'<th rowspan="2">{text_html(_statistic_heading(s))}<br><small>not printed</small></th>'
        for s in statistics
    )
    sub = "".join('<th class="sub">recomputed</th><th class="sub">printed</th>' for s in statistics if s in printed_statistics)
    body = []
    for (_row, label), group in cells.group_by("row", "label", maintain_order=True):
        by_statistic = {r["statistic"]: r for r in group.iter_rows(named=True)}
        tds = [f'<th scope="row">{_cell_html(label)}</th>']
        for statistic in statistics:
            cell = by_statistic.get(statistic)
            decimals = cell["decimals"] if cell else None
            tds.append(f'<td class="num">{text_html(_recomputed_text(cell["recomputed"] if cell else None, decimals))}</td>')
            if statistic in printed_statistics:
                tds.append(_printed_td(cell))
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f'<table class="comparison"><caption>{text_html(caption)}</caption>'
        f'<thead><tr><th rowspan="2">Row</th>{top}</tr><tr>{sub}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _printed_td(cell: dict | None) -> str:
    if cell is None or cell["printed_value"] is None:
        return '<td class="num printed">—</td>'
    mark = cell["mark"] or "unaudited"
    reconstructed = mark_text(cell["mark"], cell["basis"]).endswith(RECONSTRUCTED_MARK)
    value = fig.fixed(cell["printed_value"], cell["decimals"])
    words = MARKS[cell["mark"]][1] if cell["mark"] else "not audited"
    tooltip = (
        f"printed: {cell['printed']} ({cell['figure_id']}) — {words}"
        + (f"; {RECONSTRUCTED_WORDS}" if reconstructed else "")
        + (f" — {cell['explanation']}" if cell["explanation"] else "")
    )
    css = f"num printed status-{mark}" + (" reconstructed-basis" if reconstructed else "")
    trace = f'<a href="trace.html#{text_html(cell["figure_id"])}">{text_html(value)}</a>'
    return f'<td class="{text_html(css)}" title="{text_html(tooltip)}">{trace} {text_html(mark_text(cell["mark"], cell["basis"]))}</td>'


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


def _survival_decimals(registry: pl.DataFrame) -> dict[str, int]:
    """Places of each survival estimate: the paper's finest printing of it plus one digit, as the tables above show it."""
    finest = registry.group_by("quantity").agg(pl.col("decimals").max())
    return {quantity: decimals + 1 for quantity, decimals in finest.iter_rows() if decimals is not None}


def survival_html(summary: pl.DataFrame, registry: pl.DataFrame, reconstructed: Collection[tuple[str, str]] = ()) -> str:
    """Median survival per endpoint and data cut, once per confidence-interval method; the estimates of a
    (data cut, endpoint) in ``reconstructed`` marked ``*``: they rest on reconstructed follow-up."""
    places = _survival_decimals(registry)

    def shown(value: float | None, endpoint: str, statistic: str, missing: str = "") -> str:
        return missing if value is None else fig.fixed(value, places.get(f"{endpoint.lower()}.{statistic}", SURVIVAL_DECIMALS))

    def marked(text: str, row: dict) -> str:
        return f"{text} {RECONSTRUCTED_MARK}" if text and (str(row["data_cut"]), row["endpoint"]) in reconstructed else text

    rows = [
        {
            "data cut": str(r["data_cut"]),
            "endpoint": r["endpoint"],
            "95% CI method": SURVIVAL_METHODS.get(r["method"], r["method"]),
            "patients": r["n"],
            "events": r["events"],
            "median (months; first S ≤ 0.5, SPSS)": marked(shown(r["median"], r["endpoint"], "median", "not reached"), r),
            "median (R/SAS plateau midpoint)": marked(shown(r["median_midpoint"], r["endpoint"], "median", "not reached"), r),
            # As the charts state it (km.interval_text), so the report and Figure 1 read the same numbers.
            "95% CI (months)": marked(km.interval_text(r["ci_lower"], r["ci_upper"], km.CI_DECIMALS), r),
            "SE": marked(shown(r["se"], r["endpoint"], "se"), r),
            "note": r["note"],
        }
        for r in summary.sort("data_cut", "endpoint", "method").iter_rows(named=True)
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "data cut": pl.String,
            "endpoint": pl.String,
            "95% CI method": pl.String,
            "patients": pl.Int64,
            "events": pl.Int64,
            "median (months; first S ≤ 0.5, SPSS)": pl.String,
            "median (R/SAS plateau midpoint)": pl.String,
            "95% CI (months)": pl.String,
            "SE": pl.String,
            "note": pl.String,
        },
    )
    cuts = summary["data_cut"].unique().sort().to_list()
    marks = f"; {RECONSTRUCTED_MARK}: rests on reconstructed last-contact times (ADTTE AVALRFL = Y)" if reconstructed else ""
    return table_html(frame, f"Median PFS and OS with the 95% CI by each method — {cut_words(cuts)}{marks}")


def charts_html(charts: Sequence[Chart]) -> str:
    figures = []
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        figures.append(
            f'<figure id="chart-{text_html(chart.name)}"><img src="data:image/png;base64,{data}" alt="{text_html(chart.title)}">'
            f"<figcaption><strong>{text_html(chart.title)}</strong> ({text_html(chart.name)}). <strong>Data cut:</strong> "
            f"{text_html(chart.data_cut)}. {text_html(chart.description)}</figcaption></figure>"
        )
    return "".join(figures) or "<p>No charts were materialized.</p>"


def marked_audit(audit: pl.DataFrame, registry: pl.DataFrame) -> pl.DataFrame:
    """printed_audit with each printed value's mark (``mark_of``), its ``symbol`` (``mark_text``), the symbol with its words (``verdict``) and the row's CSS classes."""
    printed = registry.select("figure_id", pl.col("value").alias("_printed"), pl.col("decimals").alias("_decimals"))
    joined = audit.join(printed, on="figure_id", how="left")
    marks = [
        status if value is None else mark_of(value, decimals, recomputed, findings or [])
        for status, value, decimals, recomputed, findings in joined.select("status", "_printed", "_decimals", "recomputed", "findings").iter_rows()
    ]
    marked = joined.with_columns(pl.Series("mark", marks, dtype=pl.String))
    symbols = [mark_text(mark, basis) for mark, basis in marked.select("mark", "basis").iter_rows()]
    verdicts = [
        f"{symbol} {MARKS[mark][1].split(':')[0]}" + (" (from reconstructed inputs only)" if symbol.endswith(RECONSTRUCTED_MARK) else "")
        for symbol, mark in zip(symbols, marked["mark"])
    ]
    return marked.with_columns(
        pl.Series("symbol", symbols, dtype=pl.String),
        pl.Series("verdict", verdicts, dtype=pl.String),
        pl.format("status-{}", pl.col("mark")).alias("css"),
    ).drop("_printed", "_decimals")


def audit_summary(marked: pl.DataFrame) -> pl.DataFrame:
    """Printed figures by mark and basis."""
    return marked.group_by("verdict", "basis").len("figures").sort("verdict", "basis")


# Anchors of the long tables the table of contents links to (a section's own anchor is its id).
AUDIT_NOT_REPRODUCED = "audit-not-reproduced"
AUDIT_ALL_FIGURES = "audit-all-figures"
SENSITIVITY_RESULTS = "sensitivity-results"
PROVENANCE_VALUES = "provenance-values"


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
    # The columns both tables of figures lead with.
    figure = (
        "printed in",
        "figure_id",
        "published",
        "shown",
        pl.col("symbol").alias("mark"),
        pl.col("check_outcome").alias("check"),
        "basis, sensitivity",
    )
    not_reproduced = marked.filter(pl.col("mark") != audit_rules.REPRODUCED).select(
        *figure,
        "verdict",
        "explanation",
        "hypotheses",
        "css",
    )
    # Every figure in one table that fits the page, folded: the reasons of those not reproduced are in the table
    # above it, the sensitivity ranges in "What the paper's data permits".
    shown = marked.select(
        *figure,
        "computed_by",
        "patients",
        "css",
    )
    return (
        table_html(audit_summary(marked), f"Printed figures by verdict and basis — {at}")
        + "<p>A figure reproduced from <em>reconstructed inputs</em> proves the pipeline's arithmetic, not the paper. "
        "<em>Hypotheses</em> are explanations the numbers fit (a rounded mean printed as a median, another denominator, "
        "another CI method, a copied bound); fitting does not prove them. <em>check</em> is the published-figure check: "
        "WARN only for a reviewed discrepancy (data/known_discrepancies.csv) that still stands. <em>shown</em> is the "
        "recomputed value at the printed precision plus one digit; <em>mark</em> is explained in the legend at the top. "
        "<em>basis</em>: <em>Table 3</em> is the paper's published patient rows, <em>reconstructed</em> the reconstructed "
        "inputs, with its sensitivity verdict when the reconstruction could move the figure (robust, or depends on it).</p>"
        + table_html(
            not_reproduced,
            f"{not_reproduced.height} printed figures not reproduced, with the reason — {at}",
            "css",
            "audit",
            group_by=["printed in"],
            details=["verdict", "explanation", "hypotheses"],
            anchor=AUDIT_NOT_REPRODUCED,
        )
        + table_html(
            shown,
            f"All {shown.height} printed figures: published, recomputed (shown), mark, check, basis and patients — {at}",
            "css",
            "audit",
            group_by=["printed in"],
            anchor=AUDIT_ALL_FIGURES,
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


def _summary_items(inputs: ReportInputs) -> list[tuple[str, str]]:
    marks = dict(marked_audit(inputs.audit, inputs.registry).group_by("mark").len().iter_rows()) if inputs.audit.height else {}
    reconstructed = inputs.provenance.filter(pl.col("origin") == "reconstructed")
    return [
        ("Patients", str(inputs.patients)),
        ("Data cuts", ", ".join(inputs.data_cuts) or "none"),
        ("Published data cut (tables and audit)", str(inputs.published_cut) if inputs.published_cut else "none"),
        ("Printed figures audited", str(inputs.audit.height)),
        *((f"… {MARKS[mark][0]} {MARKS[mark][1].split(':')[0]}", str(marks[mark])) for mark in MARKS if mark in marks),
        ("Quarantined record problems", str(inputs.quarantine.height)),
        ("Reconstructed inputs", f"{reconstructed.height} provenance entries (see Data provenance)"),
        ("Charts", str(len(inputs.charts))),
        ("Dagster run", inputs.run_id),
        ("Written", inputs.generated_at.isoformat(timespec="seconds")),
    ]


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 1200px; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0 1.4rem; font-size: .85rem; max-width: 100%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .45rem; vertical-align: top; text-align: left; overflow-wrap: break-word; }
thead th { background: #f1f3f5; } th.sub { font-weight: 400; font-size: .7rem; padding: .2rem .25rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.comparison { font-size: .8rem; } table.comparison td.num { padding: .25rem .3rem; }
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
.legend { border: 1px solid #d0d0d0; padding: .4rem .9rem; margin: 1rem 0; font-size: .9rem; }
.legend ul { list-style: none; padding: 0; margin: .3rem 0; } .legend li { margin: .15rem 0; }
.mark { display: inline-block; min-width: 2.2rem; text-align: center; font-weight: 600; }
@page { size: A4 landscape; margin: 1.2cm; }
@media print {
  body { margin: 0; padding: 0; max-width: none; font-size: 10pt; }
  details > summary { display: none; }
  nav.contents { break-after: page; }
  details::details-content { content-visibility: visible; display: contents; }
  table, table.audit, table.comparison { font-size: 7.5pt; width: 100%; }
  th, td, table.comparison td.num { padding: .12rem .2rem; } th.sub { font-size: 6.5pt; }
  thead { display: table-header-group; }
  tr, figure, .legend, dl.summary { break-inside: avoid; page-break-inside: avoid; }
  tr.group, tr:has(+ tr.detail) { break-after: avoid; page-break-after: avoid; }
  h2, caption { break-after: avoid; page-break-after: avoid; }
  figure img { max-height: 24cm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def study_report_html(inputs: ReportInputs) -> str:
    """The whole report as one HTML document that opens offline: a table of contents, the legend, then the sections."""
    summary = "".join(f"<dt>{text_html(k)}</dt><dd>{text_html(v)}</dd>" for k, v in _summary_items(inputs))
    at = cut_words([inputs.published_cut])
    tables = "".join(comparison_html(cells, f"{heading} — recomputed at {at}, the paper's") for heading, cells in inputs.tables.items())
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
            "Audit of every printed figure",
            audit_html(inputs.audit, inputs.registry, inputs.published_cut),
            [
                (AUDIT_NOT_REPRODUCED, f"{not_reproduced} printed figures not reproduced, with the reason"),
                (AUDIT_ALL_FIGURES, f"All {audited} printed figures"),
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


def verification_html(table: pl.DataFrame | None) -> str:
    """The QC record of the double programming: what R reproduced, its versions, how many values agreed, every named exception."""
    if table is None:
        return "<p><strong>Not run:</strong> the r_verification asset was not part of this report.</p>"
    summary = verification.verification_summary(table)
    if not summary["comparisons"]:
        return f"<p><strong>{text_html(summary['status'])}.</strong> Nothing was compared with R, so nothing here is independently verified.</p>"
    headline = (
        f"<p><strong>{summary['agreed']:,} of {summary['comparisons']:,}</strong> values agree with an independent R program "
        f"({text_html(summary['reference'])}; lms_assets_tests/reference/survival_check.R, written from R's survival and stats "
        f"functions and reading only the record files): |ours − R| ≤ {verification.TOLERANCE:g}·max(1, |R|), or both not "
        f"estimable. {summary['disagreed']} disagree; {summary['missing']} are on one side only.</p>"
    )
    figures = pl.DataFrame(summary["figures"]).select(
        "table", pl.col("figure").alias("reproduces"), pl.col("comparisons").alias("values compared"), "agreed"
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
        + table_html(figures, f"What R reproduced, per table — {cut_words(cuts)}")
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
        "figure_id",
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
        + table_html(counts, f"Results and printed figures by sensitivity verdict — {cut_words([cut])}")
        + table_html(
            shown,
            f"{shown.height} results over the consistent reconstructions — {cut_words([cut])}",
            "css",
            "audit",
            group_by=["rests_on", "coverage"],
            anchor=SENSITIVITY_RESULTS,
        )
    )


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
            self._cell = {"class": found.get("class", ""), "figure": "", "text": ""}
            self.tables[-1][-1].append(self._cell)
        elif tag == "a" and self._cell is not None and found.get("href", "").startswith("trace.html#"):
            self._cell["figure"] = found["href"].removeprefix("trace.html#")
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
    """Per comparison table of the page, in order: each printed value's figure id to the recomputed text beside it
    and the printed text (its trace link's, without the mark)."""
    parser = _ComparisonCells()
    parser.feed(report_html)
    return [
        {
            cell["figure"]: (row[i - 1]["text"].strip(), cell["text"].strip())
            for row in rows
            for i, cell in enumerate(row)
            if cell["figure"] and i > 0 and "printed" in cell["class"].split()
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
            figure = row["figure_id"]
            recomputed = "—" if row["recomputed"] is None else fig.format_value(row["recomputed"], row["decimals"])
            printed = fig.fixed(row["printed_value"], row["decimals"])
            if figure not in shown:
                problems.append(f"{heading}: {figure} is not shown")
                continue
            for what, text, expected in zip(("recomputed", "printed"), shown[figure], (recomputed, printed)):
                if not _same_number(text, expected):
                    problems.append(f"{heading}: {figure}'s {what} cell shows {text}, the table has {expected}")
    return problems
