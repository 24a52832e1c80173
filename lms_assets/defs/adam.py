"""Group ``cohort``: the validated records in CDISC ADaM shapes (ADSL, ADRS, ADTTE, ADAE).

Each table is published through the gate (``defs/gate.py``): its blocking checks, no quarantined rows in the
records it is made from (unless the study's ``study.toml`` allows excluding them) and, for ADTTE, consistent
data cuts, are evaluated on the candidate in the asset's own step; a failure keeps the last good table.
"""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    ResourceParam,
    asset_check,
)

from lms_assets import adam
from lms_assets.defs import gate
from lms_assets.defs.constants import COHORT, asset_defaults
from lms_assets.defs.markdown import escape_markdown, plain_text
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.records import schemas, validation
from lms_assets.records.study import Study, quarantine_verdict

cohort_asset = asset_defaults(group=COHORT, kinds={"polars", "duckdb"})
NO_QUARANTINED_ROWS = "no_quarantined_rows"
HAS_PATIENTS = "has_patients"
CUTS_CONSISTENT = "followup_cuts_consistent"


def _quarantine_spec(asset_name: str) -> AssetCheckSpec:
    files = " or ".join((schemas.PATIENTS.location, *adam.common.SOURCES[asset_name]))
    return AssetCheckSpec(
        NO_QUARANTINED_ROWS,
        asset=asset_name,
        blocking=True,
        description=(
            f"No row of {files} is quarantined. Evaluated on the candidate before it is stored: a quarantined row "
            "fails (ERROR) naming file, line, column, value and reason, and the published table is kept; where the "
            "study's study.toml sets exclude_quarantined_rows = true, the rows are left out and it fails as a WARN, unless "
            "they are more than its max_excluded_share of the rows (then ERROR: the cohort is not published)."
        ),
    )


def _quarantine_result(context: AssetExecutionContext, settings: Study, quarantine: pl.DataFrame, raw: pl.DataFrame) -> AssetCheckResult:
    """The quarantine rows of this table's record files (``adam.common.SOURCES``) as its blocking check; ``raw`` is
    the rows of those files as read, of which a study that excludes quarantined rows may lose at most its
    ``max_excluded_share``."""
    rows = validation.blocking_rows(quarantine, adam.common.SOURCES[context.asset_key.path[-1]])
    if rows.is_empty():
        return AssetCheckResult(check_name=NO_QUARANTINED_ROWS, passed=True, metadata={"quarantined_problems": 0})
    blocks, description, share = quarantine_verdict(settings, rows, raw, escape=escape_markdown)
    # A log line is plain text: the Markdown escapes would show as backslashes and backticks.
    context.log.warning(plain_text(description))
    return AssetCheckResult(
        check_name=NO_QUARANTINED_ROWS,
        passed=False,
        severity=AssetCheckSeverity.ERROR if blocks else AssetCheckSeverity.WARN,
        description=description,
        metadata={"quarantined_problems": rows.height, "excluded_share": share, "problems": preview(rows)},
    )


def _has_patients_spec(asset_name: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        HAS_PATIENTS,
        asset=asset_name,
        blocking=True,
        description=(
            f"{asset_name.upper()} has at least one patient whenever its record file has rows: an empty cohort (say, "
            "every row quarantined and left out) fails here (ERROR) instead of crashing every summary."
        ),
    )


def _has_patients_result(candidate: pl.DataFrame, raw: pl.DataFrame, source: str) -> AssetCheckResult:
    # A file without rows is not a lost cohort (a study may have no adverse events); rows none of which survive are.
    patients = candidate["SUBJID"].n_unique()
    return AssetCheckResult(
        check_name=HAS_PATIENTS,
        passed=patients > 0 or raw.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=None if patients else f"no valid patient: {raw.height} row(s) in {source}, none usable; see the quarantine",
        metadata={"patients": patients, "source_rows": raw.height},
    )


def _metadata(frame: pl.DataFrame, settings: Study, quarantine: pl.DataFrame, shown: pl.DataFrame | None = None, **extra) -> dict:
    """What every cohort table records (its preview of ``shown``, or of the table); where quarantined rows may be left
    out, how many patients lost records."""
    metadata = {"dagster/row_count": frame.height, "preview": preview(frame if shown is None else shown), **extra}
    if settings.exclude_quarantined_rows:
        metadata[gate.PATIENTS_EXCLUDED] = validation.patients_excluded(quarantine)
    return metadata


def _by_patient(adtte: pl.DataFrame) -> pl.DataFrame:
    """ADTTE's latest cut as a reader scans it: one row per patient, PFS then OS (time, censored) and whether the OS
    time is reconstructed, so both endpoints of every patient fit one preview."""
    if adtte.is_empty():
        return adtte
    latest = adtte.filter(pl.col("DATACUT") == adtte["DATACUT"].max())
    wide = latest.pivot("PARAMCD", index=["SUBJID", "DATACUT"], values=["AVAL", "CNSR", "AVALRFL"])
    return wide.sort("SUBJID").select(
        "SUBJID",
        *(pl.col(f"{v}_{p}").alias(f"{p}_{v}") for p in ("PFS", "OS") for v in ("AVAL", "CNSR")),
        pl.col("AVALRFL_OS").alias("OS_AVALRFL"),
        "DATACUT",
    )


@cohort_asset(
    description=(
        "ADSL, one row per valid patient: AGE, SEX, ECOG, prior surgery/radiotherapy (SURGFL, RADIOFL), prior "
        "chemotherapy lines (PRCHLN, PRCHCAT, PRCHFL), combination therapy (COMBTRT, COMBFL, IMMUNOFL), and the "
        "allocated, reconstructed PRIMSITE, DOSE0, DOSREDFL, DISCAEFL (see data/README.md). RECONVAR names, per "
        "patient, the variables whose value is reconstructed rather than printed (from provenance.csv; null if none). "
        "Published only when its blocking checks pass (write-audit-publish)."
    ),
    check_specs=[
        _quarantine_spec("adsl"),
        _has_patients_spec("adsl"),
    ],
)
def adsl(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    raw_patients: pl.DataFrame,
    raw_allocations: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    raw_followup: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    settings = study_of(study_folder)
    patients = validation.clean(raw_patients, schemas.PATIENTS, quarantine)
    allocations = validation.clean(raw_allocations, schemas.PATIENT_ALLOCATIONS, quarantine)
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, quarantine)
    # DTHFL: who died by the latest cut.
    followup = validation.clean(raw_followup, schemas.FOLLOWUP, quarantine, keep=("data_cut",))
    candidate = adam.adsl.derive_adsl(patients, allocations, studyid=settings.studyid, provenance=provenance).pipe(adam.adsl.derive_dthfl, followup)
    results = [
        _quarantine_result(
            context, settings, quarantine, pl.concat([raw.select(validation.FILE, validation.ROW) for raw in (raw_patients, raw_allocations)])
        ),
        _has_patients_result(candidate, raw_patients, schemas.PATIENTS.location),
    ]
    yield from gate.publish(context, io_manager, candidate, results, _metadata(candidate, settings, quarantine))


@cohort_asset(
    description=(
        "ADRS, PARAMCD BOR: the recorded RECIST 1.1 best overall response (AVALC) and best % change (PCHG) per "
        "patient. Published only when its blocking checks pass (write-audit-publish)."
    ),
    check_specs=[_quarantine_spec("adrs"), _has_patients_spec("adrs")],
)
def adrs(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    raw_response: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    settings = study_of(study_folder)
    candidate = adam.adrs.derive_adrs(validation.clean(raw_response, schemas.RESPONSE, quarantine), studyid=settings.studyid)
    results = [
        _quarantine_result(context, settings, quarantine, raw_response),
        _has_patients_result(candidate, raw_response, schemas.RESPONSE.location),
    ]
    yield from gate.publish(context, io_manager, candidate, results, _metadata(candidate, settings, quarantine))


@cohort_asset(
    description=(
        "ADTTE: PARAMCD PFS and OS per patient and data cut (DATACUT); AVAL in months; CNSR 0 = event, 1 = censored; "
        "SRCFILE/SRCROW/SRCHASH name the follow-up file, line and file version each value came from. Reconstructed "
        "input: the OS times of the patients alive at the published cut are reconstructed last-contact times (Table 3 "
        "prints NA; provenance.csv), flagged row by row AVALRFL = 'Y' (null where the time is as printed). Published "
        "only when its blocking checks pass (write-audit-publish): a regressive cut never replaces the last good ADTTE."
    ),
    check_specs=[
        _quarantine_spec("adtte"),
        _has_patients_spec("adtte"),
        AssetCheckSpec(
            CUTS_CONSISTENT,
            asset="adtte",
            blocking=True,
            description=(
                "Each data cut against the one before, on the candidate before it is stored: a death or progression "
                "stays one at the same time, times never shrink, no patient disappears; and every cut already published "
                "is still there (so a cut dated before one already loaded is accepted only beside it, and consistent "
                "with it). A violation fails (ERROR, blocking) with the patient, both cuts and the values; ADTTE keeps "
                "its last good content and nothing downstream is computed from the regressive cut."
            ),
        ),
    ],
)
def adtte(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    raw_followup: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    settings = study_of(study_folder)
    cuts_in = validation.clean(raw_followup, schemas.FOLLOWUP, quarantine, keep=("data_cut", "content_hash"))
    cuts_in = cuts_in.with_columns(pl.col("data_cut").str.to_date("%Y-%m-%d"))
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, quarantine)
    candidate = adam.adtte.derive_adtte(cuts_in, studyid=settings.studyid, provenance=provenance)
    versions = candidate.group_by("DATACUT", "SRCFILE", "SRCHASH").len().sort("DATACUT")
    cuts = versions["DATACUT"].cast(pl.String).to_list()
    context.log.info(f"ADTTE: {candidate.height} rows over data cut(s) {', '.join(cuts)}")
    results = [
        _quarantine_result(context, settings, quarantine, raw_followup),
        _has_patients_result(candidate, raw_followup, "the follow-up files"),
        _cuts_consistent(candidate, io_manager.published_values("adtte", "DATACUT") or []),
    ]
    metadata = _metadata(
        candidate,
        settings,
        quarantine,
        shown=_by_patient(candidate),
        data_cuts=", ".join(cuts),
        # Which version of each follow-up file produced these rows, so later numbers can be traced to it.
        # (the SHA-256's first 12 digits fit the page's column; the trace page and the report give it whole).
        followup_versions=preview(versions.select("DATACUT", "SRCFILE", pl.col("SRCHASH").str.slice(0, 12).alias("sha256_12"))),
    )
    yield from gate.publish(context, io_manager, candidate, results, metadata)


def _cuts_consistent(candidate: pl.DataFrame, published_cuts: list) -> AssetCheckResult:
    """Every cut consistent with the one before it, and every cut already published still there."""
    regressions = adam.cuts.cut_regressions(candidate)
    withdrawn = adam.cuts.withdrawn_cuts(candidate, published_cuts)
    sentences = [adam.cuts.describe_withdrawn(c) for c in withdrawn]
    sentences += [adam.cuts.describe_regression(r) for r in regressions.head(20).iter_rows(named=True)]
    violations = len(withdrawn) + regressions.height
    more = f"; and {violations - 3} more" if violations > 3 else ""
    return AssetCheckResult(
        check_name=CUTS_CONSISTENT,
        passed=not violations,
        severity=AssetCheckSeverity.ERROR,
        description=f"{violations} violation(s): " + "; ".join(sentences[:3]) + more if sentences else None,
        metadata={
            "data_cuts": candidate["DATACUT"].n_unique(),
            "published_cuts_missing": len(withdrawn),
            "violations": violations,
            "details": MetadataValue.md("\n".join(f"- {s}" for s in sentences) or "none"),
        },
    )


@cohort_asset(
    description=(
        "ADAE, one row per adverse event (patient, term AEDECOD, episode AEEPINUM; ASEQ per patient) with its "
        "CTCAE 4.03 grade (ATOXGR as text, ATOXGRN, ATOXGRGP), TRTEMFL = Y, and the raw line (SRCFILE/SRCROW). Worst-grade flags, as "
        "admiral's derive_var_extreme_flag sets them over treatment-emergent events: AOCCPIFL = Y on each patient's "
        "first event of each term at its maximum grade (ties: earliest episode), AOCCIFL = Y on each patient's first "
        "event at the maximum grade over all terms (ties: earliest episode, then ASEQ); Table 4 counts these rows. "
        "Published only when its blocking checks pass (write-audit-publish)."
    ),
    check_specs=[_quarantine_spec("adae"), _has_patients_spec("adae")],
)
def adae(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    raw_adverse_events: pl.DataFrame,
    quarantine: pl.DataFrame,
):
    settings = study_of(study_folder)
    candidate = adam.adae.derive_adae(validation.clean(raw_adverse_events, schemas.ADVERSE_EVENTS, quarantine), studyid=settings.studyid)
    results = [
        _quarantine_result(context, settings, quarantine, raw_adverse_events),
        _has_patients_result(candidate, raw_adverse_events, schemas.ADVERSE_EVENTS.location),
    ]
    metadata = _metadata(
        candidate,
        settings,
        quarantine,
        # One AOCCPIFL row per patient and term, one AOCCIFL row per patient: the counts Table 4 starts from.
        patient_terms=int(candidate["AOCCPIFL"].eq("Y").sum()),
        patients_with_events=int(candidate["AOCCIFL"].eq("Y").sum()),
    )
    yield from gate.publish(context, io_manager, candidate, results, metadata)


@asset_check(
    asset=adsl,
    # Only the columns read are loaded (AssetIn metadata "columns" becomes the SELECT list): on a million
    # patients ADTTE has six million rows of fourteen columns, and loading it whole took seconds and gigabytes.
    additional_ins={
        "adrs": AssetIn("adrs", metadata={"columns": ["SUBJID"]}),
        "adtte": AssetIn("adtte", metadata={"columns": ["DATACUT", "SUBJID", "PARAMCD"]}),
    },
    description="Every patient in ADSL has a best overall response in ADRS and PFS/OS in every data cut of ADTTE.",
)
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
