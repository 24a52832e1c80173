"""Group ``audit``: how far each result resting on reconstructed inputs can move over every reconstruction consistent with the paper."""

import datetime as dt
import time
from pathlib import Path

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetIn, MetadataValue, ResourceParam

from lms_assets.audit import feasibility, sensitivity_cache
from lms_assets.audit import sensitivity as sens
from lms_assets.audit.placement_statistics import os_curve_envelope
from lms_assets.audit.reconstructions import NoConsistentReconstruction
from lms_assets.audit.sensitivity_checks import WINDOW_TOLERANCE_MONTHS, extremes_problems, ranges_hold_the_shipped_value, window_problems
from lms_assets.audit.sensitivity_inputs import Study
from lms_assets.audit.sensitivity_summary import SENSITIVITY_SCHEMA
from lms_assets.defs import gate
from lms_assets.defs.audit.verification import problems_result
from lms_assets.defs.constants import AUDIT, asset_defaults
from lms_assets.defs.metadata import preview
from lms_assets.defs.records import study_of
from lms_assets.defs.resources import StudyFolder, WarehouseTables
from lms_assets.records import schemas, validation
from lms_assets.records.declarations import SUBGROUP_COLUMNS
from lms_assets.tables.printed import published_cut

# Numpy enumerates the reconstructions.
audit_asset = asset_defaults(group=AUDIT, kinds={"polars", "duckdb", "numpy"})
# Who has which factor a subgroup may split, sex (a site may be one sex's, study.toml) and the shipped site and dose allocation.
ADSL_COLUMNS = sorted({"SUBJID", "SEX", "PRIMSITE", "DOSE0", *SUBGROUP_COLUMNS})
SHOWN = ["result", "value_id", "verdict", "sensitivity_range", "coverage"]

# The blocking checks: what the ranges must obey whatever the records are (audit.sensitivity_checks says why each holds).
ENUMERABLE = "reconstructions_enumerable"
HOLD_SHIPPED = "ranges_hold_shipped_value"
WINDOW = "window_from_study_dates"
ENDS = "range_ends_recomputed"
CHECKS = {
    ENUMERABLE: (
        "The consistent reconstructions are few enough to enumerate: every enumeration checks its size before allocating "
        f"and refuses more than {feasibility.MAX_ENUMERATED_CELLS:,} cells, naming the quantity and its count."
    ),
    HOLD_SHIPPED: "Every range holds the shipped reconstruction's own value (it is one of the consistent ones), and no result's shares of holds and fails add up to more than all.",
    WINDOW: (
        "The living patients' OS bounds come from the study's dates (study.toml's enrolment window and the published "
        f"cut), recounted in calendar months (within {WINDOW_TOLERANCE_MONTHS:g}), and no follow-up range ends beyond "
        "the months from the first day of enrolment to the cut."
    ),
    ENDS: (
        "Each end of the follow-up and at-risk ranges is what a concrete reconstruction at that end gives, recomputed "
        "directly (reverse Kaplan–Meier by the survival module, counts by counting) rather than by the batched formulas."
    ),
}


def _nothing_to_check(reason: str, failed: str | None = None) -> list[AssetCheckResult]:
    """Every check's result when no range was computed: passed with why, or, when check ``failed`` failed for ``reason``,
    that failure and the others not evaluated (ERROR: nothing they guard was shown to hold)."""
    if failed is None:
        return [problems_result(name, [], f"nothing to check: {reason}") for name in CHECKS]
    return [problems_result(name, [reason if name == failed else f"not evaluated: {failed} failed"], "") for name in CHECKS]


def _nothing_to_vary(cut: dt.date | None, provenance: pl.DataFrame | None) -> str:
    """Why no range is computed (no printed value constrains a reconstruction, or nothing is reconstructed); "" if one is."""
    if cut is None or provenance is None:
        return "no published cut in printed_values.csv: no printed value constrains a reconstruction"
    if provenance.filter(pl.col("origin") == "reconstructed").is_empty():
        return "nothing in provenance.csv is reconstructed: every result rests on the records as they are, with no reconstruction to vary"
    return ""


@audit_asset(
    ins={
        "printed_values": AssetIn(),
        "raw_provenance": AssetIn(),
        "adsl": AssetIn(metadata={"columns": ADSL_COLUMNS}),
        "adtte": AssetIn(metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR"]}),
    },
    description=(
        "What the paper's data permits. For every result resting on reconstructed inputs (the living patients' "
        "last-contact times, the allocation of primary site and starting dose), its minimum, maximum and value under "
        "the shipped reconstruction over every reconstruction consistent with what the paper prints: OS placements "
        "reproducing the printed median and reachable CI within each patient's PFS, the enrolment window and the cut "
        "(exact), dose allocations to Table 1's counts (exact), site allocations to Table 1's counts with each sex-restricted "
        "site (study.toml) given to that sex only (seeded sample). Covers OS landmarks at 6/12/24 months, reverse-KM follow-up and its range, "
        "every subgroup log-rank p and Cox HR that uses a reconstructed variable or OS, and the Discussion's 'no "
        "significant subgroup differences'. Verdict per result: robust (one conclusion under every consistent "
        "reconstruction), depends on the reconstruction (with the shares), fixed by the paper (no reconstructed input). "
        "Robust says nothing about patients outside the paper's constraints. A study with nothing reconstructed "
        "(provenance.csv) has nothing to vary: the table is empty and its checks pass saying so. An unchanged study (the same inputs and code) "
        "is read back from the cache file beside the warehouse instead of enumerated again (metadata `from_cache`). Blocking checks: "
        + ", ".join(CHECKS)
        + " (each described on the check)."
    ),
    check_specs=[AssetCheckSpec(name, asset="sensitivity_ranges", blocking=True, description=text) for name, text in CHECKS.items()],
)
def sensitivity_ranges(
    context: AssetExecutionContext,
    io_manager: ResourceParam[WarehouseTables],
    study_folder: StudyFolder,
    printed_values: pl.DataFrame,
    raw_provenance: pl.DataFrame,
    adsl: pl.DataFrame,
    adtte: pl.DataFrame,
):
    registry = printed_values
    cut = published_cut(registry)
    empty = pl.DataFrame(schema=SENSITIVITY_SCHEMA)
    # Without a published cut nothing constrains a reconstruction, whatever provenance.csv holds.
    provenance = None if cut is None else validation.clean(raw_provenance, schemas.PROVENANCE, validation.empty_quarantine())
    nothing = _nothing_to_vary(cut, provenance)
    if cut is None or provenance is None or nothing:
        context.log.info(nothing)
        yield from gate.publish(
            context, io_manager, empty, _nothing_to_check(nothing), {"dagster/row_count": 0, "reconstructions_covered": MetadataValue.text(nothing)}
        )
        return
    started = time.perf_counter()
    study_file = study_of(study_folder)
    study = sens.study_at_cut(adsl, adtte, registry, cut, study_file)
    try:
        # The warehouse's IO manager gives the folder the cache sits in; a stand-in for it (a test's) caches nothing.
        folder = io_manager.cache_folder() if isinstance(io_manager, WarehouseTables) else None
        result, cached = _computed_or_cached(context, study, provenance, folder)
    except feasibility.EnumerationTooLarge as error:
        # Inconsistent input, not a machine too small: the step fails as a check naming what grew.
        yield from gate.publish(context, io_manager, empty, _nothing_to_check(str(error), failed=ENUMERABLE))
        return
    except NoConsistentReconstruction as error:
        # Not a failure of this step: the audit (paper_consistency) reports unreachable OS values.
        context.log.warning(str(error))
        yield from gate.publish(
            context,
            io_manager,
            empty,
            _nothing_to_check(str(error)),
            {"dagster/row_count": 0, "reconstructions_covered": MetadataValue.text(str(error))},
        )
        return
    seconds = time.perf_counter() - started
    table = result.table
    placements = result.placements
    covered = (
        f"OS: exact, all {len(placements.gaps):,} labelled placements of the {len(placements.lower)} censored patients "
        f"({placements.multisets_consistent} gap multisets reproduce the printed OS values; "
        f"{placements.multisets_feasible:,} feasible of {placements.multisets_examined:,} examined). "
        f"Starting dose: exact, all {result.dose_space:,} allocations. Primary site ({result.site_space:,} allocations) and "
        f"every joint result: seeded sample of {result.sample_size:,} (seed {result.seed}); sampled ranges are inner bounds."
    )
    if not result.shipped_consistent:
        context.log.warning("The shipped OS times are not among the consistent placements: the shipped reconstruction breaks a printed constraint")
    verdicts = table.group_by("verdict").len("results").sort("verdict")
    varied = table.filter(pl.col("coverage").str.starts_with("exact") | pl.col("coverage").str.starts_with("seeded"))
    context.log.info(f"{covered} {seconds:.1f} s ({cached})")
    checks = [
        problems_result(
            ENUMERABLE,
            [],
            f"{len(placements.gaps):,} labelled placements and {result.dose_space:,} dose allocations enumerated"
            + (" (when the cached result was computed)" if cached.startswith("hit") else ""),
        ),
        problems_result(
            HOLD_SHIPPED,
            ranges_hold_the_shipped_value(table),
            f"all {table.filter(pl.col('minimum').is_not_null()).height} ranges hold the shipped value",
        ),
        problems_result(
            WINDOW,
            window_problems(study, table, cut, study_file.enrolment_start, study_file.enrolment_end),
            f"OS bounds of the living patients from {study_file.enrolment_start}–{study_file.enrolment_end} to the cut {cut}",
        ),
        problems_result(
            ENDS, extremes_problems(study, placements, table), "every end of the follow-up and at-risk ranges recomputed at its reconstruction"
        ),
    ]
    yield from gate.publish(
        context,
        io_manager,
        table,
        checks,
        {
            "dagster/row_count": table.height,
            "reconstructions_covered": MetadataValue.text(covered),
            "os_placements": len(placements.gaps),
            "dose_allocations": result.dose_space,
            "site_allocations": MetadataValue.text(f"{result.site_space:,}"),
            "sample_size": result.sample_size,
            "seed": result.seed,
            "shipped_reconstruction_consistent": result.shipped_consistent,
            "seconds": round(seconds, 2),
            "from_cache": cached.startswith("hit"),
            "cache": MetadataValue.text(cached),
            "verdicts": preview(verdicts),
            # Kaplan–Meier OS at each death time: lowest and highest S(t) over the consistent placements, and the shipped curve.
            "os_envelope": preview(os_curve_envelope(placements, study.os[study.died == 0]), limit=50),
            "preview": preview(varied.select(SHOWN), limit=60),
        },
    )


def _computed_or_cached(context: AssetExecutionContext, study: Study, provenance: pl.DataFrame, folder: Path | None) -> tuple[sens.Sensitivity, str]:
    """The result for these inputs and this code: read from ``folder``'s cache file when it holds it, else computed and stored there.

    Also says which, in words: the cache is a shortcut, so a file that cannot be read or written is logged and passed by.
    """
    if folder is None:
        return sens.sensitivity_ranges(study, provenance), "not cached: no warehouse folder"
    key = sensitivity_cache.cache_key(study, provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, sensitivity_cache.code_version())
    result, found = sensitivity_cache.load(folder, key)
    if result is not None:
        return result, f"{found} (key {key[:12]})"
    result = sens.sensitivity_ranges(study, provenance)
    try:
        sensitivity_cache.store(folder, key, result)
    except OSError as error:
        context.log.warning(f"sensitivity_ranges' result could not be cached in {folder}: {error}")
        return result, f"{found}; not stored: {error}"
    return result, f"{found}; computed and stored (key {key[:12]})"
