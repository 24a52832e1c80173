"""Group ``audit``: how far each result resting on reconstructed inputs can move over every reconstruction consistent with the paper."""

import time

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output

from lms_assets.audit import sensitivity as sens
from lms_assets.defs.constants import AUDIT, asset_defaults
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder
from lms_assets.records import schemas, validation
from lms_assets.tables import survival
from lms_assets.tables.printed import published_cut

# Numpy enumerates the reconstructions.
audit_asset = asset_defaults(group=AUDIT, kinds={"polars", "duckdb", "numpy"})
# Who has which transcribed factor, sex (the uterine primary is female) and the shipped site and dose allocation.
ADSL_COLUMNS = sorted({"SUBJID", "SEX", "PRIMSITE", "DOSE0", *(s.column for s in survival.SUBGROUPS)})
SHOWN = ["result", "figure_id", "verdict", "sensitivity_range", "coverage"]


@audit_asset(
    ins={
        "printed_values": AssetIn(),
        "raw_provenance": AssetIn(),
        "adsl": AssetIn(metadata={"columns": ADSL_COLUMNS}),
        "adtte": AssetIn(metadata={"columns": ["DATACUT", "PARAMCD", "SUBJID", "AVAL", "CNSR"]}),
    },
    description=(
        "What the paper's data permits. For every result resting on reconstructed inputs (the living patients' "
        "last-contact times, the allocation of primary site and starting dose), its minimum, maximum and value under "
        "the shipped reconstruction over every reconstruction consistent with what the paper prints: OS placements "
        "reproducing the printed median and reachable CI within each patient's PFS, the enrolment window and the cut "
        "(exact), dose allocations to Table 1's counts (exact), site allocations to Table 1's counts with the uterine "
        "primary female (seeded sample). Covers OS landmarks at 6/12/24 months, reverse-KM follow-up and its range, "
        "every subgroup log-rank p and Cox HR that uses a reconstructed variable or OS, and the Discussion's 'no "
        "significant subgroup differences'. Verdict per result: robust (one conclusion under every consistent "
        "reconstruction), depends on the reconstruction (with the shares), fixed by the paper (no reconstructed input). "
        "Robust says nothing about patients outside the paper's constraints."
    ),
)
def sensitivity_ranges(
    context: AssetExecutionContext,
    study_folder: StudyFolder,
    printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    adsl: pl.DataFrame,
    adtte: pl.DataFrame,
) -> Output[pl.DataFrame]:
    registry = printed_values
    cut = published_cut(registry)
    empty = pl.DataFrame(schema=sens.SENSITIVITY_SCHEMA)
    if cut is None:
        reason = "no published cut in printed_values.csv: no printed figure constrains a reconstruction"
        context.log.info(reason)
        return Output(empty, metadata={"dagster/row_count": 0, "reconstructions_covered": MetadataValue.text(reason)})
    at_cut = adtte.filter(pl.col("DATACUT") == cut)
    provenance = validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine())
    started = time.perf_counter()
    study = sens.study_from_tables(adsl, at_cut, registry, sens.os_window(cut, study_of(study_folder)))
    try:
        result = sens.sensitivity_ranges(study, provenance)
    except sens.NoConsistentReconstruction as error:
        # Not a failure of this step: the audit (paper_consistency) reports unreachable OS figures.
        context.log.warning(str(error))
        return Output(empty, metadata={"dagster/row_count": 0, "reconstructions_covered": MetadataValue.text(str(error))})
    seconds = time.perf_counter() - started
    table = result.table
    placements = result.placements
    covered = (
        f"OS: exact, all {len(placements.gaps):,} labelled placements of the {len(placements.lower)} censored patients "
        f"({placements.multisets_consistent} gap multisets reproduce the printed OS figures; "
        f"{placements.multisets_feasible:,} feasible of {placements.multisets_examined:,} examined). "
        f"Starting dose: exact, all {result.dose_space:,} allocations. Primary site ({result.site_space:,} allocations) and "
        f"every joint result: seeded sample of {result.sample_size:,} (seed {result.seed}); sampled ranges are inner bounds."
    )
    if not result.shipped_consistent:
        context.log.warning("The shipped OS times are not among the consistent placements: the shipped reconstruction breaks a printed constraint")
    verdicts = table.group_by("verdict").len("results").sort("verdict")
    varied = table.filter(pl.col("coverage").str.starts_with("exact") | pl.col("coverage").str.starts_with("seeded"))
    context.log.info(f"{covered} {seconds:.1f} s")
    return Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "reconstructions_covered": MetadataValue.text(covered),
            "os_placements": len(placements.gaps),
            "dose_allocations": result.dose_space,
            "site_allocations": MetadataValue.text(f"{result.site_space:,}"),
            "sample_size": result.sample_size,
            "seed": result.seed,
            "shipped_reconstruction_consistent": result.shipped_consistent,
            "seconds": round(seconds, 2),
            "verdicts": preview(verdicts),
            # Kaplan–Meier OS at each death time: lowest and highest S(t) over the consistent placements, and the shipped curve.
            "os_envelope": preview(sens.os_curve_envelope(placements, study.os[study.died == 0]), limit=50),
            "preview": preview(varied.select(SHOWN), limit=60),
        },
    )
