"""Group ``cohort``: the validated records in CDISC ADaM shapes (ADSL, ADRS, ADTTE, ADAE).

The five tables are made in one step (``defs/steps.py``), each published through the gate (``defs/gate.py``): its
blocking checks, no quarantined rows in the records it is made from (unless the study's ``study.toml`` allows
excluding them) and, for ADTTE, consistent data cuts, are evaluated on its candidate in that step; a failure keeps
that table's last good content and the others are still published.
"""

import functools
from collections.abc import Callable

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    ResourceParam,
)

from lms_assets import adam
from lms_assets.defs import gate
from lms_assets.defs.constants import COHORT
from lms_assets.defs.markdown import escape_markdown, plain_text
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.defs.steps import layer, selected, selected_results, spec, stored
from lms_assets.records import schemas, validation
from lms_assets.records.study import Study, quarantine_verdict

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


def _quarantine_result(context: AssetExecutionContext, table: str, settings: Study, quarantine: pl.DataFrame, raw: pl.DataFrame) -> AssetCheckResult:
    """The quarantine rows of ``table``'s record files (``adam.common.SOURCES``) as its blocking check; ``raw`` is
    the rows of those files as read, of which a study that excludes quarantined rows may lose at most its
    ``max_excluded_share``."""
    rows = validation.blocking_rows(quarantine, adam.common.SOURCES[table])
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
    latest = adtte.filter(pl.col("DCUTDT") == adtte["DCUTDT"].max())
    wide = latest.pivot("PARAMCD", index=["SUBJID", "DCUTDT"], values=["AVAL", "CNSR", "AVALRFL"])
    return wide.sort("SUBJID").select(
        "SUBJID",
        *(pl.col(f"{v}_{p}").alias(f"{p}_{v}") for p in ("PFS", "OS") for v in ("AVAL", "CNSR")),
        pl.col("AVALRFL_OS").alias("OS_AVALRFL"),
        "DCUTDT",
    )


ADSL_SPEC = spec(
    "adsl",
    group=COHORT,
    kinds={"polars", "duckdb"},
    deps=("raw_patients", "raw_allocations", "raw_provenance", "raw_followup", "quarantine"),
    description=(
        "ADSL, one row per valid patient: AGE, SEX, ECOG, prior surgery/radiotherapy (SURGFL, RADIOFL), prior "
        "chemotherapy lines (PRCHLN, PRCHCAT, PRCHFL), combination therapy (COMBTRT, COMBFL, IMMUNOFL), and the "
        "allocated, reconstructed PRIMSITE, DOSE0, DOSREDFL, DISCAEFL (see data/README.md). RECONVAR names, per "
        "patient, the variables whose value is reconstructed rather than printed (from provenance.csv; null if none). "
        "Published only when its blocking checks pass (write-audit-publish)."
    ),
)
ADRS_SPEC = spec(
    "adrs",
    group=COHORT,
    kinds={"polars", "duckdb"},
    deps=("raw_response", "quarantine"),
    description=(
        "ADRS: the recorded RECIST 1.1 best overall response (PARAMCD BOR, AVALC) and the responder parameters ORR "
        "and DCR per patient; the best % change of the target-lesion sum is ADTR's. Published only when its blocking "
        "checks pass (write-audit-publish)."
    ),
)
ADTTE_SPEC = spec(
    "adtte",
    group=COHORT,
    kinds={"polars", "duckdb"},
    deps=("raw_followup", "raw_provenance", "quarantine"),
    description=(
        "ADTTE: PARAMCD PFS and OS per patient and data cut (DCUTDT); AVAL in months; CNSR 0 = event, 1 = censored; "
        "SRCFILE/SRCROW/SRCHASH name the follow-up file, line and file version each value came from. Reconstructed "
        "input: the OS times of the patients alive at the published cut are reconstructed last-contact times (Table 3 "
        "prints NA; provenance.csv), flagged row by row AVALRFL = 'Y' (null where the time is as printed). Published "
        "only when its blocking checks pass (write-audit-publish): a regressive cut never replaces the last good ADTTE."
    ),
)
ADAE_SPEC = spec(
    "adae",
    group=COHORT,
    kinds={"polars", "duckdb"},
    deps=("raw_adverse_events", "quarantine"),
    description=(
        "ADAE, one row per adverse event (patient, term AEDECOD, episode AEEPINUM; ASEQ per patient) with its "
        "CTCAE 4.03 grade (ATOXGR as text, ATOXGRN, ATOXGRGP), TRTEMFL = Y, and the raw line (SRCFILE/SRCROW). Worst-grade flags, as "
        "admiral's derive_var_extreme_flag sets them over treatment-emergent events: AOCCPIFL = Y on each patient's "
        "first event of each term at its maximum grade (ties: earliest episode), AOCCIFL = Y on each patient's first "
        "event at the maximum grade over all terms (ties: earliest episode, then ASEQ); Table 4 counts these rows. "
        "Published only when its blocking checks pass (write-audit-publish)."
    ),
)
ADTR_SPEC = spec(
    "adtr",
    group=COHORT,
    kinds={"polars", "duckdb"},
    deps=("raw_response", "quarantine"),
    description=(
        "ADTR, PARAMCD SDIAM at AVISIT BEST: the best % change of the target-lesion sum (PCHG) per measured patient, "
        "by RECIST 1.1, with its raw line (SRCFILE/SRCROW). The records hold only Table 3's best change, so there are no "
        "visit rows and no sums in mm (AVAL, BASE). Published only when its blocking checks pass (write-audit-publish); "
        "its blocking checks are those of ADRS, which reads the same record file."
    ),
)
CUTS_SPEC = AssetCheckSpec(
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
)
PATIENTS_COMPLETE = "adsl_patients_complete"
COMPLETE_SPEC = AssetCheckSpec(
    PATIENTS_COMPLETE,
    asset="adsl",
    description="Every patient in ADSL has a best overall response in ADRS and PFS/OS in every data cut of ADTTE.",
)
# What the completeness check reads of ADRS and ADTTE when this run does not make them: on a million patients ADTTE
# has six million rows of fourteen columns, and loading it whole took seconds and gigabytes.
COMPLETENESS_COLUMNS = {"adrs": ["SUBJID"], "adtte": ["DCUTDT", "SUBJID", "PARAMCD"]}
# A dataset's derivation: its candidate, its check results and its metadata, from the step's inputs.
Derived = tuple[pl.DataFrame, list[AssetCheckResult], dict]
INPUTS = ("raw_patients", "raw_allocations", "raw_provenance", "raw_response", "raw_followup", "raw_adverse_events", "quarantine")


def _adsl(context: AssetExecutionContext, settings: Study, inputs: dict[str, pl.DataFrame]) -> Derived:
    raw_patients, raw_allocations, quarantine = inputs["raw_patients"], inputs["raw_allocations"], inputs["quarantine"]
    patients = validation.clean(raw_patients, schemas.PATIENTS, quarantine)
    allocations = validation.clean(raw_allocations, schemas.PATIENT_ALLOCATIONS, quarantine)
    provenance = validation.clean(inputs["raw_provenance"], schemas.PROVENANCE, quarantine)
    # DTHFL: who died by the latest cut.
    followup = validation.clean(inputs["raw_followup"], schemas.FOLLOWUP, quarantine, keep=("data_cut",))
    candidate = adam.adsl.derive_adsl(
        patients, allocations, studyid=settings.studyid, provenance=provenance, treatment_code=settings.treatment_code
    ).pipe(adam.adsl.derive_dthfl, followup)
    raw = pl.concat([r.select(validation.FILE, validation.ROW) for r in (raw_patients, raw_allocations)])
    results = [
        _quarantine_result(context, "adsl", settings, quarantine, raw),
        _has_patients_result(candidate, raw_patients, schemas.PATIENTS.location),
    ]
    return candidate, results, _metadata(candidate, settings, quarantine)


def _from_response(
    name: str, derive: Callable[..., pl.DataFrame], context: AssetExecutionContext, settings: Study, inputs: dict[str, pl.DataFrame]
) -> Derived:
    """ADRS or ADTR: ``derive`` on response.csv's clean rows, with that file's quarantine and has-patients checks."""
    raw_response, quarantine = inputs["raw_response"], inputs["quarantine"]
    candidate = derive(validation.clean(raw_response, schemas.RESPONSE, quarantine), studyid=settings.studyid)
    results = [
        _quarantine_result(context, name, settings, quarantine, raw_response),
        _has_patients_result(candidate, raw_response, schemas.RESPONSE.location),
    ]
    return candidate, results, _metadata(candidate, settings, quarantine)


def _adtte(context: AssetExecutionContext, settings: Study, inputs: dict[str, pl.DataFrame], io_manager: WarehouseTables) -> Derived:
    raw_followup, quarantine = inputs["raw_followup"], inputs["quarantine"]
    cuts_in = validation.clean(raw_followup, schemas.FOLLOWUP, quarantine, keep=("data_cut", "content_hash"))
    cuts_in = cuts_in.with_columns(pl.col("data_cut").str.to_date("%Y-%m-%d"))
    provenance = validation.clean(inputs["raw_provenance"], schemas.PROVENANCE, quarantine)
    candidate = adam.adtte.derive_adtte(cuts_in, studyid=settings.studyid, provenance=provenance, treatment_code=settings.treatment_code)
    versions = candidate.group_by("DCUTDT", "SRCFILE", "SRCHASH").len().sort("DCUTDT")
    cuts = versions["DCUTDT"].cast(pl.String).to_list()
    context.log.info(f"ADTTE: {candidate.height} rows over data cut(s) {', '.join(cuts)}")
    results = [
        _quarantine_result(context, "adtte", settings, quarantine, raw_followup),
        _has_patients_result(candidate, raw_followup, "the follow-up files"),
        _cuts_consistent(candidate, io_manager.published_values("adtte", "DCUTDT") or []),
    ]
    metadata = _metadata(
        candidate,
        settings,
        quarantine,
        shown=_by_patient(candidate),
        data_cuts=", ".join(cuts),
        # Which version of each follow-up file produced these rows, so later numbers can be traced to it.
        # (the SHA-256's first 12 digits fit the page's column; the trace page and the report give it whole).
        followup_versions=preview(versions.select("DCUTDT", "SRCFILE", pl.col("SRCHASH").str.slice(0, 12).alias("sha256_12"))),
    )
    return candidate, results, metadata


def _adae(context: AssetExecutionContext, settings: Study, inputs: dict[str, pl.DataFrame]) -> Derived:
    raw_adverse_events, quarantine = inputs["raw_adverse_events"], inputs["quarantine"]
    candidate = adam.adae.derive_adae(validation.clean(raw_adverse_events, schemas.ADVERSE_EVENTS, quarantine), studyid=settings.studyid)
    results = [
        _quarantine_result(context, "adae", settings, quarantine, raw_adverse_events),
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
    return candidate, results, metadata


@layer(
    [ADSL_SPEC, ADRS_SPEC, ADTR_SPEC, ADTTE_SPEC, ADAE_SPEC],
    name="adam",
    check_specs=[
        *(check for name in ("adsl", "adrs", "adtr", "adtte", "adae") for check in (_quarantine_spec(name), _has_patients_spec(name))),
        CUTS_SPEC,
        COMPLETE_SPEC,
    ],
    ins={name: AssetIn(name) for name in INPUTS},
    description="The ADaM datasets in one step, each published through its own blocking checks (write-audit-publish).",
)
def adam_datasets(context: AssetExecutionContext, io_manager: ResourceParam[WarehouseTables], study_folder: StudyFolder, **inputs: pl.DataFrame):
    settings = study_of(study_folder)
    chosen = selected(context)
    step = gate.Publication(context, io_manager)
    made: dict[str, pl.DataFrame] = {}
    derivations: dict[str, Callable[[AssetExecutionContext, Study, dict[str, pl.DataFrame]], Derived]]
    derivations = {
        "adsl": _adsl,
        "adrs": functools.partial(_from_response, "adrs", adam.adrs.derive_adrs),
        "adtr": functools.partial(_from_response, "adtr", adam.adtr.derive_adtr),
        "adtte": functools.partial(_adtte, io_manager=io_manager),
        "adae": _adae,
    }
    for name, derive in derivations.items():
        if name in chosen:
            candidate, results, metadata = derive(context, settings, inputs)
            made[name] = candidate
            yield from step.publish(name, candidate, results, metadata)
    # On the tables as published: this step's, or the stored ones it does not make; not on a candidate held back.
    complete = _completeness_inputs(made, io_manager) if "adsl" in made and not step.held_back("adsl", "adrs", "adtte") else None
    if complete is not None:
        yield from selected_results(context, "adsl", [_patients_complete(made["adsl"], **complete)])
    elif "adsl" in made:
        context.log.info(f"{PATIENTS_COMPLETE} not evaluated: ADRS or ADTTE is neither published nor made in this run")
    step.finish()


def _completeness_inputs(made: dict[str, pl.DataFrame], io_manager: WarehouseTables) -> dict[str, pl.DataFrame] | None:
    """ADRS and ADTTE as the completeness check reads them: made in this step, or as stored; None while one has never
    been published (a run that makes ADSL alone on a new warehouse)."""
    tables = {}
    for name, columns in COMPLETENESS_COLUMNS.items():
        if name in made:
            tables[name] = made[name]
        elif io_manager.published_values(name, columns[0]) is None:
            return None
        else:
            tables[name] = stored(io_manager, name, columns)
    return tables


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
            "data_cuts": candidate["DCUTDT"].n_unique(),
            "published_cuts_missing": len(withdrawn),
            "violations": violations,
            "details": MetadataValue.md("\n".join(f"- {s}" for s in sentences) or "none"),
        },
    )


def _patients_complete(adsl: pl.DataFrame, adrs: pl.DataFrame, adtte: pl.DataFrame) -> AssetCheckResult:
    ids = set(adsl["SUBJID"].to_list())
    no_response = sorted(ids - set(adrs["SUBJID"].to_list()))
    expected = adtte.select("DCUTDT").unique().join(pl.DataFrame({"SUBJID": sorted(ids)}), how="cross")
    expected = expected.join(pl.DataFrame({"PARAMCD": ["PFS", "OS"]}), how="cross")
    missing = expected.join(adtte.select("DCUTDT", "SUBJID", "PARAMCD"), on=["DCUTDT", "SUBJID", "PARAMCD"], how="anti")
    return AssetCheckResult(
        check_name=PATIENTS_COMPLETE,
        passed=not no_response and missing.is_empty(),
        metadata={
            # Capped like previews, so a large study with many gaps cannot flood the event log.
            "patients_without_response": str(no_response) if len(no_response) <= 20 else f"{no_response[:20]} … ({len(no_response)} in all)",
            "missing_time_to_event_rows": missing.height,
            "missing": preview(missing.with_columns(pl.col("DCUTDT").cast(pl.String))),
        },
    )
