"""Group ``report``: the study report, one self-contained HTML file for a reviewer, written to the outputs folder.

Built only from its inputs: the summaries, the audit, the charts as their assets returned them (through the chart
IO manager) and the raw tables' ``content_hash`` columns. Nothing here reads Dagster's event log.
"""

import datetime as dt
from pathlib import Path
from typing import cast

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
)

from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES
from lms_assets.defs import gate, graphs, records
from lms_assets.defs.constants import REPORT, asset_defaults
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.metadata import preview
from lms_assets.defs.resources import OutputsFolder, StudyFolder
from lms_assets.graphs import render
from lms_assets.records import errors, schemas, validation
from lms_assets.records.study import STUDY_FILE, Study
from lms_assets.report import comparison, page, readback, trace
from lms_assets.report.inputs import ReportInputs, package_versions
from lms_assets.results import export as results_export
from lms_assets.tables.printed import published_cut

report_asset = asset_defaults(group=REPORT, kinds={"html"})
# After the study's own title (its study.toml).
TITLE_SUFFIX = "recomputation and audit of the printed values"
REPORT_FILE = Path("report") / "study_report.html"

# Every chart (the charts step's, in its order) and every raw record file, found in their modules so a new one is
# reported without an edit here. Tuples, not lists: load_assets_from_modules would collect a list of assets as this module's own.
CHART_NAMES = graphs.CHART_NAMES
RAW_NAMES = records.RAW_TABLES
# Where each raw table's file sits in the study folder, for a table with no rows (an optional file the study lacks).
RAW_LOCATIONS = {f"raw_{s.name}": s.location for s in vars(schemas).values() if isinstance(s, schemas.FileSchema)}
NO_ROWS = "absent, or no data rows"
# The ADaM datasets whose rows the trace page lists for each printed value.
TRACED = ("adsl", "adrs", "adtr", "adtte", "adae")
# The report's blocking check: the written page's printed-value cells are its tables' cells.
CELLS_MATCH = "cells_match_tables"
# The failure's description quotes this many mismatches; the check's metadata lists them all.
QUOTED_MISMATCHES = 3


def record_files(raw_tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Each record file read, with the SHA-256 the ingest stored on its rows and its row count (one per follow-up cut)."""
    rows = []
    for name, table in raw_tables.items():
        if table.is_empty():
            rows.append({"file": RAW_LOCATIONS.get(name, name), "sha256": NO_ROWS, "rows": 0})
        rows += [
            {"file": f, "sha256": h, "rows": n} for f, h, n in table.group_by("_file", "content_hash", maintain_order=True).len("rows").iter_rows()
        ]
    return pl.DataFrame(rows, schema={"file": pl.String, "sha256": pl.String, "rows": pl.Int64}).sort("file")


# Each asset's section of the report, for the link on its page; an asset not named here is traced in provenance.
REPORT_SECTIONS = {
    **dict.fromkeys(("baseline_summary", "response_summary", "ae_summary", "tumour_shrinkage", "survival_followup", "survival_subgroups"), "tables"),
    **dict.fromkeys(("survival_summary", "survival_curves", "survival_landmarks", "median_history"), "survival"),
    **dict.fromkeys(("printed_audit", "printed_values", "paper_consistency"), page.AUDIT_ALL_VALUES),
    "sensitivity_ranges": "sensitivity",
    "quarantine": "quarantine",
    "r_verification": "verification",
    "analysis_results": "changes",
    "cut_changes": "changes",
    "study_report": "summary",
}


def report_place(asset_name: str) -> str:
    """Where the report shows ``asset_name``: the report's path in the outputs folder and the anchor of its section."""
    anchor = f"chart-{asset_name}" if asset_name in CHART_NAMES else REPORT_SECTIONS.get(asset_name, "provenance")
    return f"{REPORT_FILE.as_posix()}#{anchor}"


def _write(path: Path, text: str) -> None:
    """``text`` in ``path`` whole or not at all: a reader never opens a half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _spines(tables: dict[str, pl.DataFrame], study: Study) -> dict[str, pl.DataFrame]:
    """The rows (key, label) of each owner table in its own order; survival_summary's are labelled by the study.
    Table 1's rows are grouped under their characteristic, as the paper prints them."""

    def labelled(table: pl.DataFrame, label: pl.Expr) -> pl.DataFrame:
        return table.select("key", label.alias("label"))

    return {
        "baseline_summary": tables["baseline_summary"].select("key", pl.col("characteristic").alias("group"), pl.col("level").alias("label")),
        "response_summary": labelled(tables["response_summary"], pl.col("row")),
        "survival_summary": pl.DataFrame(list(study.survival_rows), schema=["key", "label"], orient="row"),
        "ae_summary": labelled(tables["ae_summary"], pl.col("term")),
    }


def _comparisons(tables: dict[str, pl.DataFrame], registry: pl.DataFrame, audit: pl.DataFrame, study: Study) -> dict[str, pl.DataFrame]:
    """The study's report tables (study.toml, ``[[report_tables]]``): every recomputed value of their rows beside the printed one.

    Raises ``RecordFileError`` naming the file and key when a table names an owner the report is not given.
    """
    spines = _spines(tables, study)
    for i, table in enumerate(study.report_tables, start=1):
        unknown = [owner for owner in table.owners if owner not in spines]
        if unknown:
            raise errors.RecordFileError(
                f"{STUDY_FILE}: report_tables[{i}].owners names {', '.join(map(repr, unknown))}, not a table the report "
                f"lays out ({', '.join(spines)})"
            )
    # The cut the report tables and the audit are recomputed at.
    cut = published_cut(registry)
    return {
        table.heading: comparison.compare_with_printed(
            pl.concat([spines[owner] for owner in table.owners], how="diagonal"),
            pl.concat([PRINTED_VALUE_SOURCES[owner](tables[owner], cut) for owner in table.owners]),
            registry,
            audit,
            table.source,
        )
        for table in study.report_tables
    }


@report_asset(
    # The raw tables and ADaM datasets whole: the trace page shows each printed value's rows and raw lines (on a large
    # study this loads the follow-up table's millions of rows); the charts come through the chart IO manager.
    ins={
        **{name: AssetIn() for name in (*RAW_NAMES, *CHART_NAMES, *TRACED)},
        # Not shown, but the report must wait for its blocking check: the report links the files it exports.
        "analysis_results": AssetIn(metadata={"columns": ["data_cut"]}),
    },
    description=(
        "The study report a biostatistician attaches to a review: one self-contained HTML file (inline styles and "
        "PNG charts, no scripts, opens offline) in the outputs folder (`report/study_report.html`). Study summary; "
        "Tables 1, 2 and 4 recomputed, each value beside the printed one with the audit's verdict; median PFS and OS "
        "with both CI methods; every chart; the audit of every printed value (status, basis, explanation); "
        "quarantined rows; data provenance (files, SHA-256, what is reconstructed); the independent verification by R "
        "(what it reproduced, R's and survival's versions, values compared and agreed, named exceptions); package "
        "versions. Each printed value is marked reproduced, reproduced here but contradicted elsewhere in the paper, "
        "discrepancy or not recomputable (a legend heads the page), every table and chart names its data cut, and it "
        "prints cleanly to PDF. Beside it, `report/trace.html`: each printed value's ADaM rows and raw lines. Built from "
        "its inputs only (the chart assets' returned images, the ADaM datasets and the raw tables), not the event log. Downstream of every checked table, so a failed blocking (ERROR) "
        "check upstream stops it. Cells resting on reconstructed inputs are marked *."
    ),
    check_specs=[
        AssetCheckSpec(
            CELLS_MATCH,
            asset="study_report",
            blocking=True,
            description="The written page's report tables show each recomputed and printed value (and mark) of the tables they come from, once.",
        )
    ],
)
def study_report(
    context: AssetExecutionContext,
    study_folder: StudyFolder,
    outputs_folder: OutputsFolder,
    baseline_summary: pl.DataFrame,
    response_summary: pl.DataFrame,
    ae_summary: pl.DataFrame,
    survival_summary: pl.DataFrame,
    printed_audit: pl.DataFrame,
    sensitivity_ranges: pl.DataFrame,
    quarantine: pl.DataFrame,
    printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    r_verification: pl.DataFrame,
    analysis_results: pl.DataFrame,
    cut_changes: pl.DataFrame,
    **inputs: pl.DataFrame | render.Chart,
):
    # Dagster passes every other declared input by name: the raw tables, the ADaM datasets and the charts.
    raw_tables = {name: raw_provenance if name == "raw_provenance" else cast(pl.DataFrame, inputs[name]) for name in RAW_NAMES}
    datasets = {name: cast(pl.DataFrame, inputs[name]) for name in TRACED}
    images = [cast(render.Chart, inputs[name]) for name in CHART_NAMES]
    registry = printed_values
    tables = {
        "baseline_summary": baseline_summary,
        "response_summary": response_summary,
        "ae_summary": ae_summary,
        "survival_summary": survival_summary,
    }
    files = record_files(raw_tables)
    study = records.study_of(study_folder)
    # A report table naming a table the report is not given fails the step naming study.toml and the key.
    with records.refusing_bad_files(study_folder.root):
        comparisons = _comparisons(tables, registry, printed_audit, study)
    report = ReportInputs(
        title=f"{study.title}: {TITLE_SUFFIX}",
        generated_at=dt.datetime.now(dt.UTC),
        run_id=context.run.run_id,
        patients=datasets["adsl"].height,
        # The cuts analysed (published survival), not every file present: a cut held back by its checks is not one.
        data_cuts=survival_summary["data_cut"].unique().sort().cast(pl.String).to_list(),
        published_cut=published_cut(registry),
        tables=comparisons,
        registry=registry,
        survival_summary=survival_summary,
        charts=images,
        audit=printed_audit,
        quarantine=quarantine,
        files=files,
        provenance=validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine()).select(schemas.PROVENANCE.column_names),
        versions=package_versions(),
        verification=r_verification,
        sensitivity=sensitivity_ranges,
        reconstructed=reconstructed_estimates(datasets["adtte"]),
        changes=cut_changes,
        results_files={kind: f.as_posix() for kind, f in results_export.files(published_cut(registry)).items()} if analysis_results.height else {},
    )
    path = outputs_folder.root / REPORT_FILE
    # The page is checked as written, in a candidate file beside the report: a failed check leaves the last good report.
    candidate = path.with_name(f"{path.stem}.candidate.html")
    _write(candidate, page.study_report_html(report))
    problems = readback.comparison_mismatches(candidate.read_text(encoding="utf-8"), comparisons)
    shown = "; ".join(problems[:QUOTED_MISMATCHES]) + (f"; and {len(problems) - QUOTED_MISMATCHES} more" if len(problems) > QUOTED_MISMATCHES else "")
    check = AssetCheckResult(
        check_name=CELLS_MATCH,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(f"{shown} (the page is in {candidate.name})")
        if problems
        else "Every recomputed and printed value of the report's tables, with its mark, is its table's.",
        metadata={"mismatches": MetadataValue.json(problems)},
    )

    def publish() -> MaterializeResult:
        candidate.replace(path)
        _write(
            path.parent / trace.TRACE_FILE,
            trace.trace_page_html(study.title, printed_audit, registry, datasets, ae_summary, raw_tables, published_cut(registry)),
        )
        context.log.info(f"Study report written to {path.resolve()} ({len(images)} charts)")
        return _report_result(path, outputs_folder, images, printed_audit, files)

    yield from gate.checked(context, [check], publish)


def reconstructed_estimates(adtte: pl.DataFrame) -> set[tuple[str, str]]:
    """(data cut, endpoint) whose survival estimates rest on reconstructed last-contact times (ADTTE AVALRFL = "Y")."""
    flagged = adtte.filter(pl.col("AVALRFL") == "Y").select(pl.col("DCUTDT").cast(pl.String), "PARAMCD").unique()
    return set(flagged.iter_rows())


def _report_result(
    path: Path, outputs_folder: OutputsFolder, images: list[render.Chart], printed_audit: pl.DataFrame, files: pl.DataFrame
) -> MaterializeResult:
    """The report's materialization: links to the report and trace pages, what it holds and its size."""
    return MaterializeResult(
        metadata={
            "report_page": MetadataValue.url(outputs_folder.url(REPORT_FILE.as_posix())),
            "trace_page": MetadataValue.url(outputs_folder.url(f"{REPORT_FILE.parent.as_posix()}/{trace.TRACE_FILE}")),
            "file": MetadataValue.path(str(path.resolve())),
            "charts": len(images),
            "audited_values": printed_audit.height,
            "preview": preview(files),
            "size_kib": round(path.stat().st_size / 1024, 1),
        }
    )
