"""Group ``audit``: which printed figures the patient rows support, which the paper contradicts, and where each comes from."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from lms_assets.analysis import audit
from lms_assets.defs.constants import AUDIT, DUCKDB_POOL, OWNERS
from lms_assets.defs.metadata import markdown_table, preview
from lms_assets.defs.published import FIGURE_SOURCES, owner_of, published_cut, typed_registry
from lms_assets.analysis import validation, schemas

KINDS = {"polars", "duckdb"}

# Methods: patients were treated "from January 2018"; no follow-up can be longer than from then to the cut.
ENROLMENT_START = dt.date(2018, 1, 1)
DAYS_PER_MONTH = 365.25 / 12


def _feasibility(adtte: pl.DataFrame, cut: dt.date | None) -> audit.Feasibility | None:
    if cut is None:
        return None
    at_cut = adtte.filter(pl.col("DATACUT") == cut)
    os_ = at_cut.filter(pl.col("PARAMCD") == "OS")
    pfs = at_cut.filter(pl.col("PARAMCD") == "PFS").select("SUBJID", pl.col("AVAL").alias("PFS"))
    censored = os_.filter(pl.col("CNSR") == 1).join(pfs, on="SUBJID")
    if os_.is_empty() or censored.is_empty():
        return None
    window = (cut - ENROLMENT_START).days / DAYS_PER_MONTH
    return audit.os_feasibility(
        os_.filter(pl.col("CNSR") == 0)["AVAL"].to_list(),
        [(lower, window) for lower in censored["PFS"].to_list()],
    )


@asset(
    group_name=AUDIT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    # Only the columns read are loaded: on a large study ADSL and ADTTE whole cost seconds and gigabytes.
    ins={
        "raw_published_figures": AssetIn(),
        "raw_provenance": AssetIn(),
        "adsl": AssetIn(metadata={"columns": ["SUBJID"]}),
        "adtte": AssetIn(metadata={"columns": ["DATACUT", "PARAMCD", "SUBJID", "AVAL", "CNSR"]}),
    },
    description=(
        "Per printed figure, what the paper says against itself, found without recomputing anything: percentages "
        "impossible for the cohort size (GRIM), printed k/n that disagree with their own percentage or the cohort, "
        "printings of one quantity that disagree across places, and OS figures no placement of the unpublished "
        "last-contact times can reach under the paper's method (an exact search). Also each figure's basis: "
        "Table 3's rows or reconstructed inputs (from provenance.csv). The published-figure checks read this to "
        "tell a paper-internal contradiction (WARN) from a regression (ERROR)."
    ),
)
def paper_consistency(
    context: AssetExecutionContext,
    raw_published_figures: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    adsl: pl.DataFrame,
    adtte: pl.DataFrame,
) -> Output[pl.DataFrame]:
    registry = typed_registry(raw_published_figures)
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine())
    feasibility = _feasibility(adtte, published_cut(registry))
    table = audit.paper_consistency(registry, provenance, adsl.height, feasibility)
    flagged = table.filter(pl.col("findings").list.len() > 0)
    searched = (
        f"{feasibility.patterns_examined} placements of the censored patients examined, {feasibility.patterns_feasible} feasible"
        if feasibility
        else "no censored OS at the published cut: nothing to search"
    )
    context.log.info(f"{flagged.height} printed figures contradicted within the paper; {searched}")
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "contradicted_printings": flagged.height,
            "os_feasibility_search": searched,
            "preview": preview(flagged.select("figure_id", "findings", "explanation")),
        },
    )


def _figures_of_all_owners(tables: dict[str, pl.DataFrame], cut: dt.date | None) -> pl.DataFrame:
    return pl.concat([fn(tables[name], cut) for name, fn in FIGURE_SOURCES.items()])


@asset(
    group_name=AUDIT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    ins={
        "paper_consistency": AssetIn(),
        "raw_published_figures": AssetIn(),
        "adtte": AssetIn(metadata={"columns": ["DATACUT", "PARAMCD", "SUBJID", "CNSR"]}),
        **{name: AssetIn() for name in FIGURE_SOURCES},
    },
    description=(
        "One row per printed figure: `published` (as printed), `recomputed` (from the data), `status` "
        "(reproduced / discrepancy / not_recomputable), `basis` (Table 3's rows = published_patient_data, or "
        "reconstructed_inputs — a figure reproduced only from reconstructed inputs proves the pipeline's arithmetic, "
        "not the paper), `computed_by` (the asset in the lineage graph), `patients` (the patient ids it rests on) "
        "and a one-sentence `explanation` of every discrepancy."
    ),
)
def figure_audit(
    context: AssetExecutionContext,
    paper_consistency: pl.DataFrame,
    raw_published_figures: pl.DataFrame,
    adtte: pl.DataFrame,
    **tables: pl.DataFrame,
) -> Output[pl.DataFrame]:
    registry = typed_registry(raw_published_figures)
    cut = published_cut(registry)
    figures = _figures_of_all_owners(tables, cut)
    consistency = {r["figure_id"]: r for r in paper_consistency.iter_rows(named=True)}
    by_quantity = {r["quantity"]: r for r in figures.iter_rows(named=True)}
    rows = []
    for row in registry.iter_rows(named=True):
        found = by_quantity.get(row["quantity"])
        rows.append(
            audit.audit_row(
                row,
                consistency[row["figure_id"]],
                found["value"] if found else None,
                (found["patients"] if found else []) or audit.time_to_event_patients(adtte, cut, row["quantity"]),
                owner_of(row["quantity"]),
            )
        )
    table = pl.DataFrame(rows, schema=audit.AUDIT_SCHEMA) if rows else pl.DataFrame(schema=audit.AUDIT_SCHEMA)
    summary = table.group_by("status", "basis").len().sort("status", "basis")
    context.log.info(" · ".join(f"{s} ({b}): {n}" for s, b, n in summary.iter_rows()))
    discrepancies = table.filter(pl.col("status") != "reproduced").select("figure_id", "published", "recomputed", "status", "basis", "explanation")
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "reproduced": table.filter(pl.col("status") == "reproduced").height,
            "reproduced_from_published_patient_data": table.filter(
                (pl.col("status") == "reproduced") & (pl.col("basis") == "published_patient_data")
            ).height,
            "discrepancy": table.filter(pl.col("status") == "discrepancy").height,
            "not_recomputable": table.filter(pl.col("status") == "not_recomputable").height,
            "summary": MetadataValue.md(
                "A figure reproduced from **reconstructed inputs** proves the pipeline's arithmetic, not the paper.\n\n"
                + markdown_table(summary)
            ),
            "discrepancies": MetadataValue.md(markdown_table(discrepancies, limit=100)),
            "audit": MetadataValue.md(markdown_table(table.drop("patients"), limit=300)),
        },
    )
