"""Group ``report``: the study report, one self-contained HTML file for a reviewer, written to the outputs folder."""

import base64
import datetime as dt
import re
from pathlib import Path
from typing import cast

import polars as pl
from dagster import AssetExecutionContext, AssetIn, AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset

from lms_assets import config
from lms_assets.defs import graphs, records
from lms_assets.defs.audit.published import FIGURE_SOURCES
from lms_assets.defs.constants import DUCKDB_POOL, OWNERS, REPORT
from lms_assets.defs.metadata import preview
from lms_assets.records import schemas, validation
from lms_assets.report import page

TITLE = "Anlotinib in advanced leiomyosarcoma (real-world study): recomputation and audit of the published figures"
REPORT_FILE = Path("report") / "study_report.html"

# Every chart asset and every raw record file, found in their modules so a new one is reported without an edit here.
# Tuples, not lists: load_assets_from_modules would collect a list of assets as this module's own.
CHART_ASSETS = tuple(a for a in vars(graphs).values() if isinstance(a, AssetsDefinition))
RAW_ASSETS = tuple(a for a in vars(records).values() if isinstance(a, AssetsDefinition) and a.key.path[-1].startswith("raw_"))
# One file each, its SHA-256 in the materialization's metadata; the follow-up cuts are read from raw_followup's rows.
SINGLE_FILE_RAW_ASSETS = tuple(a for a in RAW_ASSETS if a.key.path[-1] != "raw_followup")

_PNG_IN_MARKDOWN = re.compile(r"!\[(?P<title>[^\]]*)\]\(data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)\)")

# Each table as the paper prints it: heading, the registry's source name, and the owner tables whose rows make it.
TABLES = (
    ("Table 1. Patient demographics and clinical characteristics", "Table 1", ("baseline_characteristics",)),
    ("Table 2. Overall response to treatment", "Table 2", ("response_summary", "survival_summary")),
    ("Table 4. Adverse events (each patient once per term, at the worst grade)", "Table 4", ("adverse_event_summary",)),
)
# survival_summary has no key column: its rows in Table 2 are named here (its figures use the SPSS method).
SURVIVAL_ROWS = pl.DataFrame(
    {"key": ["pfs", "os"], "label": ["Median PFS, months (95% CI, SPSS method)", "Median OS, months (95% CI, SPSS method)"]}
)


def _latest_metadata(context: AssetExecutionContext, key: AssetKey) -> dict:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise ValueError(f"{key.to_user_string()} has never been materialized; materialize it before the report")
    return dict(event.asset_materialization.metadata)


def _chart_images(context: AssetExecutionContext) -> list[page.Chart]:
    """Every chart exactly as its asset rendered it for the UI (the PNG in its latest materialization)."""
    found = []
    for chart_asset in CHART_ASSETS:
        key = chart_asset.key
        description = chart_asset.descriptions_by_key.get(key, "")
        for value in _latest_metadata(context, key).values():
            text = getattr(value, "md_str", None) or ""
            for match in _PNG_IN_MARKDOWN.finditer(text):
                found.append(page.Chart(key.path[-1], match["title"], description, base64.b64decode(match["data"])))
    return found


def _record_files(context: AssetExecutionContext, raw_followup: pl.DataFrame) -> pl.DataFrame:
    """Each record file with the SHA-256 the ingest recorded; follow-up cuts from the stacked follow-up table."""
    rows = []
    for raw_asset in SINGLE_FILE_RAW_ASSETS:
        metadata = _latest_metadata(context, raw_asset.key)
        # An optional file the study lacks is recorded as "absent: <path>", without a hash.
        source = str(metadata["source_file"].value)
        rows.append(
            {
                "file": Path(source.removeprefix("absent: ")).name,
                "sha256": metadata["content_hash"].value if "content_hash" in metadata else "absent",
                "rows": metadata["dagster/row_count"].value,
            }
        )
    cuts = raw_followup.group_by("_file", "content_hash", maintain_order=True).len("rows")
    rows += [{"file": f, "sha256": h, "rows": n} for f, h, n in cuts.iter_rows()]
    return pl.DataFrame(rows, schema={"file": pl.String, "sha256": pl.String, "rows": pl.Int64}).sort("file")


def _spines(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The rows (key, label) of each owner table in its own order."""

    def labelled(table: pl.DataFrame, label: pl.Expr) -> pl.DataFrame:
        return table.select("key", label.alias("label"))

    return {
        "baseline_characteristics": labelled(tables["baseline_characteristics"], pl.format("{} — {}", "characteristic", "level")),
        "response_summary": labelled(tables["response_summary"], pl.col("row")),
        "survival_summary": SURVIVAL_ROWS,
        "adverse_event_summary": labelled(tables["adverse_event_summary"], pl.col("term")),
    }


def _comparisons(tables: dict[str, pl.DataFrame], registry: pl.DataFrame, audit: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Tables 1, 2 and 4: every recomputed figure of their rows beside the printed one."""
    cut = cast(dt.date | None, registry["published_cut"].drop_nulls().max()) if registry.height else None
    spines = _spines(tables)
    return {
        heading: page.compare_with_printed(
            pl.concat([spines[owner] for owner in owners]),
            pl.concat([FIGURE_SOURCES[owner](tables[owner], cut) for owner in owners]),
            registry,
            audit,
            source,
        )
        for heading, source, owners in TABLES
    }


@asset(
    group_name=REPORT,
    kinds={"html"},
    owners=OWNERS,
    # It reads the warehouse; in the pool it never meets a run that is writing it.
    pool=DUCKDB_POOL,
    # raw_followup is an input below; Dagster refuses narrowing the columns of an asset also named in deps.
    deps=[*CHART_ASSETS, *SINGLE_FILE_RAW_ASSETS],
    # The patient count and the follow-up files are all it reads of ADSL and the (millions of) follow-up rows.
    ins={
        "adsl": AssetIn(metadata={"columns": ["SUBJID"]}),
        "raw_followup": AssetIn(metadata={"columns": ["_file", "content_hash"]}),
    },
    description=(
        "The study report a biostatistician attaches to a review: one self-contained HTML file (inline styles and "
        "PNG charts, no scripts, opens offline) in the outputs folder (`report/study_report.html`). Study summary; "
        "Tables 1, 2 and 4 recomputed, each value beside the printed one with the audit's verdict; median PFS and OS "
        "with both CI methods; every chart; the audit of every printed figure (status, basis, explanation); "
        "quarantined rows; data provenance (files, SHA-256, what is reconstructed); the independent verification by R "
        "(what it reproduced, R's and survival's versions, values compared and agreed, named exceptions); package "
        "versions. Downstream of "
        "every checked table, so a failed blocking (ERROR) check upstream stops it."
    ),
)
def study_report(
    context: AssetExecutionContext,
    adsl: pl.DataFrame,
    baseline_characteristics: pl.DataFrame,
    response_summary: pl.DataFrame,
    adverse_event_summary: pl.DataFrame,
    survival_summary: pl.DataFrame,
    figure_audit: pl.DataFrame,
    reconstruction_sensitivity: pl.DataFrame,
    quarantine: pl.DataFrame,
    published_figures: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    raw_followup: pl.DataFrame,
    independent_verification: pl.DataFrame,
) -> MaterializeResult:
    registry = published_figures
    tables = {
        "baseline_characteristics": baseline_characteristics,
        "response_summary": response_summary,
        "adverse_event_summary": adverse_event_summary,
        "survival_summary": survival_summary,
    }
    images = _chart_images(context)
    files = _record_files(context, raw_followup)
    inputs = page.ReportInputs(
        title=TITLE,
        generated_at=dt.datetime.now(dt.UTC),
        run_id=context.run.run_id,
        patients=adsl.height,
        # The cuts analysed (published survival), not every file present: a cut held back by its checks is not one.
        data_cuts=survival_summary["data_cut"].unique().sort().cast(pl.String).to_list(),
        tables=_comparisons(tables, registry, figure_audit),
        survival_summary=survival_summary,
        charts=images,
        audit=figure_audit,
        quarantine=quarantine,
        files=files,
        provenance=validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine()).select(
            schemas.PROVENANCE.column_names
        ),
        versions=page.package_versions(),
        verification=independent_verification,
        sensitivity=reconstruction_sensitivity,
    )
    path = config.output_dir() / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page.study_report_html(inputs), encoding="utf-8")
    tmp.replace(path)
    context.log.info(f"Study report written to {path.resolve()} ({len(images)} charts)")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.path(str(path.resolve())),
            "report_url": MetadataValue.url(path.resolve().as_uri()),
            "charts": len(images),
            "audited_figures": figure_audit.height,
            "preview": preview(files),
            "size_kib": round(path.stat().st_size / 1024, 1),
        }
    )
