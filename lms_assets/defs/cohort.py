"""Group ``cohort``: the validated records in CDISC ADaM shapes (ADSL, ADRS, ADTTE, ADAE)."""


import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
    asset_check,
)

from lms_assets.analysis import cohort, followup, schemas, validation
from lms_assets.defs.constants import COHORT, DUCKDB_POOL, OWNERS
from lms_assets.defs.metadata import preview
from lms_assets.defs.resources import WarehouseTables

KINDS = {"polars", "duckdb"}


def _output(frame: pl.DataFrame, **extra) -> Output[pl.DataFrame]:
    return Output(frame, metadata={"dagster/row_count": frame.height, "preview": preview(frame), **extra})


@asset(
    group_name=COHORT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "ADSL, one row per valid patient: AGE, SEX, ECOG, prior surgery/radiotherapy (SURGFL, RADIOFL), prior "
        "chemotherapy lines (PRCHLN, PRCHCAT, PRCHFL), combination therapy (COMBTRT, COMBFL, IMMUNOFL), and the "
        "allocated, reconstructed PRIMSITE, DOSE0, DOSREDFL, DISCAEFL (see data/README.md)."
    ),
)
def adsl(raw_patients: pl.DataFrame, raw_patient_allocations: pl.DataFrame, quarantine: pl.DataFrame) -> Output[pl.DataFrame]:
    patients = validation.clean(raw_patients, schemas.PATIENTS, quarantine)
    allocations = validation.clean(raw_patient_allocations, schemas.PATIENT_ALLOCATIONS, quarantine)
    return _output(cohort.derive_adsl(patients, allocations))


@asset(
    group_name=COHORT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description="ADRS, PARAMCD BOR: the recorded RECIST 1.1 best overall response (AVALC) and best % change (PCHG) per patient.",
)
def adrs(raw_response: pl.DataFrame, quarantine: pl.DataFrame) -> Output[pl.DataFrame]:
    return _output(cohort.derive_adrs(validation.clean(raw_response, schemas.RESPONSE, quarantine)))


@asset(
    group_name=COHORT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "ADTTE: PARAMCD PFS and OS per patient and data cut (DATACUT); AVAL in months; CNSR 0 = event, 1 = censored; "
        "SRCFILE/SRCROW/SRCHASH name the follow-up file, line and file version each value came from."
    ),
)
def adtte(context: AssetExecutionContext, raw_followup: pl.DataFrame, quarantine: pl.DataFrame) -> Output[pl.DataFrame]:
    followup = validation.clean(raw_followup, schemas.FOLLOWUP, quarantine, keep=("data_cut", "content_hash"))
    followup = followup.with_columns(pl.col("data_cut").str.to_date("%Y-%m-%d"))
    frame = cohort.derive_adtte(followup)
    versions = frame.group_by("DATACUT", "SRCFILE", "SRCHASH").len().sort("DATACUT")
    cuts = versions["DATACUT"].cast(pl.String).to_list()
    context.log.info(f"ADTTE: {frame.height} rows over data cut(s) {', '.join(cuts)}")
    return _output(
        frame,
        data_cuts=", ".join(cuts),
        # Which version of each follow-up file produced these rows, so later numbers can be traced to it.
        followup_versions=MetadataValue.md(
            "| data cut | file | sha256 |\n|---|---|---|\n"
            + "\n".join(f"| {c} | {f} | `{h}` |" for c, f, h, _ in versions.iter_rows())
        ),
    )


@asset(
    group_name=COHORT,
    kinds=KINDS,
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description="ADAE: one row per patient and term (AEDECOD) at the worst CTCAE 4.03 grade (ATOXGR, ATOXGRGP) over its episodes (AENEPI).",
)
def adae(raw_adverse_events: pl.DataFrame, quarantine: pl.DataFrame) -> Output[pl.DataFrame]:
    return _output(cohort.derive_adae(validation.clean(raw_adverse_events, schemas.ADVERSE_EVENTS, quarantine)))


@asset_check(
    pool=DUCKDB_POOL,
    asset=adsl,
    # Only the columns read are loaded (AssetIn metadata "columns" becomes the SELECT list): on a million
    # patients ADTTE has six million rows of fourteen columns, and loading it whole took seconds and gigabytes.
    additional_ins={
        "adrs": AssetIn("adrs", metadata={"columns": ["SUBJID"]}),
        "adtte": AssetIn("adtte", metadata={"columns": ["DATACUT", "SUBJID", "PARAMCD"]}),
    },
    description="Every patient in ADSL has a best overall response in ADRS and PFS/OS in every data cut of ADTTE.")
def adsl_patients_complete(io_manager: ResourceParam[WarehouseTables], adrs: pl.DataFrame, adtte: pl.DataFrame) -> AssetCheckResult:
    # ADSL is read, not taken as an input: Dagster would load the check's own asset whole (see read_columns).
    ids = set(io_manager.read_columns("adsl", ["SUBJID"])["SUBJID"].to_list())
    no_response = sorted(ids - set(adrs["SUBJID"].to_list()))
    expected = adtte.select("DATACUT").unique().join(pl.DataFrame({"SUBJID": sorted(ids)}), how="cross")
    expected = expected.join(pl.DataFrame({"PARAMCD": ["PFS", "OS"]}), how="cross")
    missing = expected.join(adtte.select("DATACUT", "SUBJID", "PARAMCD"), on=["DATACUT", "SUBJID", "PARAMCD"], how="anti")
    return AssetCheckResult(
        passed=not no_response and missing.is_empty(),
        metadata={
            # Capped like previews, so a large study with many gaps cannot flood the event log.
            "patients_without_response": str(no_response) if len(no_response) <= 20 else f"{no_response[:20]} … ({len(no_response)} in all)",
            "missing_time_to_event_rows": missing.height,
            "missing": preview(missing.with_columns(pl.col("DATACUT").cast(pl.String))),
        },
    )


@asset_check(
    pool=DUCKDB_POOL,
    asset=adtte,
    blocking=True,
    description=(
        "Each data cut against the one before: a death or progression stays one at the same time, times never "
        "shrink, no patient disappears. A violation fails (ERROR, blocking) with the patient, both cuts and the "
        "values, and nothing downstream is recomputed from the regressive cut."
    ),
)
def followup_cuts_consistent(io_manager: ResourceParam[WarehouseTables]) -> AssetCheckResult:
    # Read here, not taken as an input: Dagster would load the check's own asset whole (see read_columns).
    adtte = io_manager.read_columns("adtte", ["DATACUT", "SUBJID", "PARAMCD", "AVAL", "CNSR"])
    regressions = followup.cut_regressions(adtte)
    sentences = [followup.describe_regression(r) for r in regressions.head(20).iter_rows(named=True)]
    return AssetCheckResult(
        passed=regressions.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(sentences)[:1000] if sentences else None,
        metadata={
            "data_cuts": adtte["DATACUT"].n_unique(),
            "violations": regressions.height,
            "details": MetadataValue.md("\n".join(f"- {s}" for s in sentences) or "none"),
        },
    )
