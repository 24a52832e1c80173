"""Group ``audit``: which printed values the patient rows support, which the paper contradicts, and where each comes from."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Failure, MetadataValue, Output, TableColumn, TableMetadataValue, TableRecord, TableSchema

from lms_assets.adam.common import RECONSTRUCTED
from lms_assets.audit import consistency, hypotheses, sensitivity, sensitivity_summary, verification
from lms_assets.audit.feasibility import Feasibility, os_feasibility
from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES, owner_of, printed_values_table
from lms_assets.defs.constants import AUDIT, asset_defaults
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.report import REPORT_FILE
from lms_assets.defs.resources import OutputsFolder, StudyFolder
from lms_assets.records import errors, schemas, validation
from lms_assets.records.study import Study
from lms_assets.report.page import AUDIT_ALL_VALUES
from lms_assets.tables.printed import fixed, published_cut

audit_asset = asset_defaults(group=AUDIT, kinds={"polars", "duckdb"})


def _feasibility(adtte: pl.DataFrame, cut: dt.date | None, study: Study) -> Feasibility | None:
    if cut is None:
        return None
    at_cut = adtte.filter(pl.col("DCUTDT") == cut)
    os_ = at_cut.filter(pl.col("PARAMCD") == "OS")
    pfs = at_cut.filter(pl.col("PARAMCD") == "PFS").select("SUBJID", pl.col("AVAL").alias("PFS"))
    censored = os_.filter(pl.col("CNSR") == 1).join(pfs, on="SUBJID")
    # The search places last-contact times the paper does not print (ADTTE AVALRFL = Y); a study whose censored
    # times are all recorded has nothing to place.
    if os_.is_empty() or censored.filter(pl.col("AVALRFL") == RECONSTRUCTED).is_empty():
        return None
    # No follow-up can be longer than from the first day of enrolment (study.toml) to the cut.
    window = sensitivity.os_window(cut, study)[1]
    return os_feasibility(
        os_.filter(pl.col("CNSR") == 0)["AVAL"].to_list(),
        [(lower, window) for lower in censored["PFS"].to_list()],
    )


@audit_asset(
    description=(
        "The printed-value registry typed once for every consumer: each row of `printed_values.csv` with its "
        "declared types, the `owner` asset that computes it, its `check_name`, the `published_cut` the paper's values "
        "refer to, and its reviewed-discrepancy entry from `known_discrepancies.csv` (`reviewed_expected`, "
        "`reviewed_finding`, `reviewed_reason`, `reviewed_by`, `reviewed_on`; null when not reviewed). Fails, naming "
        "the row and column, when the reviewed list is malformed or names a value that is not printed."
    ),
)
def printed_values(raw_printed_values: pl.DataFrame, raw_discrepancies: pl.DataFrame) -> Output[pl.DataFrame]:
    try:
        table = printed_values_table(raw_printed_values, raw_discrepancies)
    except errors.RecordFileError as error:
        raise Failure(description=str(error)) from None
    reviewed = table.filter(pl.col("reviewed_expected").is_not_null())
    cut = published_cut(table)
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "reviewed_discrepancies": MetadataValue.text(str(reviewed.height)),
            "published_cut": MetadataValue.text(str(cut) if cut is not None else "none"),
            "reviewed": preview(reviewed.select("value_id", "reviewed_expected", "reviewed_finding", "reviewed_reason")),
        },
    )


@audit_asset(
    # Only the columns read are loaded: on a large study ADSL and ADTTE whole cost seconds and gigabytes.
    ins={
        "printed_values": AssetIn(),
        "raw_provenance": AssetIn(),
        "adsl": AssetIn(metadata={"columns": ["SUBJID"]}),
        "adtte": AssetIn(metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR", "AVALRFL"]}),
    },
    description=(
        "Per printed value, what the paper says against itself, found without recomputing anything: percentages "
        "impossible for the cohort size (GRIM), printed k/n that disagree with their own percentage or the cohort, "
        "printings of one quantity that disagree across places, and OS values no placement of the unpublished "
        "last-contact times can reach under the paper's method (an exact search). Also each value's basis: "
        "Table 3's rows or reconstructed inputs (from provenance.csv), and which reconstruction. The printed-value "
        "checks read it: a reviewed discrepancy stays WARN only while its reviewed finding is still found here."
    ),
)
def paper_consistency(
    context: AssetExecutionContext,
    study_folder: StudyFolder,
    printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    adsl: pl.DataFrame,
    adtte: pl.DataFrame,
) -> Output[pl.DataFrame]:
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine())
    feasibility = _feasibility(adtte, published_cut(printed_values), study_of(study_folder))
    table = consistency.paper_consistency(printed_values, provenance, adsl.height, feasibility)
    flagged = table.filter(pl.col("findings").list.len() > 0)
    searched = (
        f"{feasibility.patterns_examined} placements of the censored patients examined, {feasibility.patterns_feasible} feasible"
        if feasibility
        else "no reconstructed censored OS at the published cut: nothing to search"
    )
    context.log.info(f"{flagged.height} printed values contradicted within the paper; {searched}")
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "contradicted_printings": flagged.height,
            "os_feasibility_search": searched,
            "preview": preview(flagged.select("value_id", "findings", "explanation")),
        },
    )


def _values_of_all_owners(tables: dict[str, pl.DataFrame], cut: dt.date | None) -> pl.DataFrame:
    return pl.concat([fn(tables[name], cut) for name, fn in PRINTED_VALUE_SOURCES.items()])


# Enough for every discrepancy of the shipped study; a study with more says how many are left out, and the report has all.
DISCREPANCIES_SHOWN = 60


# What each pair of audit status and check outcome means, in a few words: the counts table's legend, short enough
# for the asset page's metadata column (about 500 px at 1440 px).
STATUS_MEANINGS = {
    ("reproduced", "passed"): "matches the paper",
    ("discrepancy", "passed"): "paper contradicts itself",
    ("discrepancy", "WARN"): "differs; reviewed",
    ("discrepancy", "ERROR"): "differs; unreviewed",
    ("not_recomputable", "passed"): "cannot be recomputed",
}


def status_counts(table: pl.DataFrame) -> TableMetadataValue:
    """printed_audit's rows counted by status and check outcome, each with its meaning, and the total: the counts add up."""
    counts = table.group_by("status", "check_outcome").len().sort("status", "check_outcome", descending=[True, False])
    rows = [
        {"status": s, "check": c, "n": str(n), "meaning": STATUS_MEANINGS.get((s, c), "see the check's reasons")} for s, c, n in counts.iter_rows()
    ]
    rows.append({"status": "all", "check": "", "n": str(table.height), "meaning": "every printed value"})
    schema = TableSchema(columns=[TableColumn(name, "string") for name in ("status", "check", "n", "meaning")])
    return MetadataValue.table([TableRecord(r) for r in rows], schema=schema)


def discrepancy_preview(table: pl.DataFrame, printed_values: pl.DataFrame) -> pl.DataFrame:
    """printed_audit's discrepancies as the asset page lists them, the printed number beside the shown one; the
    reasons are in the report, one click away."""
    printed = printed_values.select(
        "value_id", pl.struct("value", "decimals").map_elements(lambda r: fixed(r["value"], r["decimals"]), return_dtype=pl.String).alias("printed")
    )
    return table.filter(pl.col("status") == "discrepancy").join(printed, on="value_id", how="left").select("value_id", "printed", "shown")


def audit_table(
    printed_values: pl.DataFrame,
    paper_consistency: pl.DataFrame,
    values: pl.DataFrame,
    adtte: pl.DataFrame,
    adsl: pl.DataFrame,
    survival_curves: pl.DataFrame,
    survival_summary: pl.DataFrame,
    sensitivity_ranges: pl.DataFrame,
) -> pl.DataFrame:
    """Every printed value judged by ``checks.printed_values.judge`` on the shown value, with the hypotheses the numbers fit and its sensitivity verdict."""
    cut = published_cut(printed_values)
    paper = {r["value_id"]: r for r in paper_consistency.iter_rows(named=True)}
    by_quantity = {r["quantity"]: r for r in values.iter_rows(named=True)}
    rows = []
    for row in printed_values.iter_rows(named=True):
        found = by_quantity.get(row["quantity"])
        rows.append(
            consistency.audit_row(
                row,
                paper[row["value_id"]],
                found["value"] if found else None,
                (found["patients"] if found else []) or consistency.time_to_event_patients(adtte, cut, row["quantity"]),
                owner_of(row["quantity"]),
            )
        )
    explained = hypotheses.hypotheses(
        rows,
        printed_values,
        adsl.height,
        hypotheses.sample_means(adsl, adtte, cut),
        hypotheses.ci_alternatives(survival_curves, survival_summary, cut),
    )
    for row in rows:
        row["hypotheses"] = explained.get(row["value_id"])
    table = pl.DataFrame(rows, schema=consistency.AUDIT_SCHEMA) if rows else pl.DataFrame(schema=consistency.AUDIT_SCHEMA)
    return table.join(sensitivity_summary.verdicts_by_value(sensitivity_ranges, printed_values), on="value_id", how="left")


@audit_asset(
    ins={
        "paper_consistency": AssetIn(),
        "printed_values": AssetIn(),
        "adtte": AssetIn(metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR"]}),
        "adsl": AssetIn(metadata={"columns": ["SUBJID", "AGE"]}),
        "survival_curves": AssetIn(),
        "sensitivity_ranges": AssetIn(),
        "r_verification": AssetIn(),
        **{name: AssetIn() for name in PRINTED_VALUE_SOURCES},
    },
    description=(
        "One row per printed value: `published` (as printed), `recomputed` (the value the summary table shows) and "
        "`shown` (it at the printed precision plus one digit), `status` (reproduced / discrepancy / not_recomputable; a "
        "printing the paper contradicts is a discrepancy even when nothing can recompute it), `check_outcome` (the outcome of its "
        "printed-value check: passed, WARN or ERROR, from the same verdict function) and `check_reason`, `basis` "
        "(Table 3's rows = published_patient_data, or reconstructed_inputs — a value reproduced only from reconstructed "
        "inputs proves the pipeline's arithmetic, not the paper), `computed_by`, `patients`, `findings`, a one-sentence "
        "`explanation`, and `hypotheses`: the usual ways a printed number goes wrong that the numbers fit (a median that "
        "is the rounded mean, another denominator, another CI method or level, a range bound copied from another value), and `sensitivity_verdict`/`sensitivity_range` from "
        "sensitivity_ranges (robust, depends on the reconstruction, or fixed by the paper). It explains; it does not "
        "block: each summary's printed_* checks judge the same values and stop publication. Its metadata counts the "
        "rows by status and outcome, lists the discrepancies and links to the report's full audit."
    ),
)
def printed_audit(
    context: AssetExecutionContext,
    outputs_folder: OutputsFolder,
    paper_consistency: pl.DataFrame,
    printed_values: pl.DataFrame,
    adtte: pl.DataFrame,
    adsl: pl.DataFrame,
    survival_curves: pl.DataFrame,
    sensitivity_ranges: pl.DataFrame,
    r_verification: pl.DataFrame,
    **tables: pl.DataFrame,
) -> Output[pl.DataFrame]:
    values = _values_of_all_owners(tables, published_cut(printed_values))
    table = audit_table(
        printed_values,
        paper_consistency,
        values,
        adtte,
        adsl,
        survival_curves,
        tables["survival_summary"],
        sensitivity_ranges,
    )
    verified = verification.verification_summary(r_verification)
    summary = table.group_by("status", "basis").len().sort("status", "basis")
    context.log.info(" · ".join(f"{s} ({b}): {n}" for s, b, n in summary.iter_rows()))
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "counts": status_counts(table),
            "differ": preview(discrepancy_preview(table, printed_values), limit=DISCREPANCIES_SHOWN),
            "report": MetadataValue.url(outputs_folder.url(f"{REPORT_FILE.as_posix()}#{AUDIT_ALL_VALUES}")),
            "r_check": MetadataValue.text(f"{verified['agreed']} of {verified['comparisons']} values agree ({verified['reference']})"),
        },
    )
