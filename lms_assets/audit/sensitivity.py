"""What the paper's data permits: every result that rests on reconstructed inputs, over all reconstructions consistent with the paper.

Pure NumPy/Polars; no Dagster. The reconstructions (``reconstructions``: OS placements, site and dose
allocations) are enumerated where they are few and sampled, seeded and uniform, where they are not; each result is
computed under every one (``placement_statistics``, ``batched``) and summarised as its range and the share of
reconstructions where its conclusion holds (``sensitivity_summary``). Dose reductions, discontinuations and
adverse-event episodes feed only the counts printed as their constraints, so every consistent reconstruction
prints the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from lms_assets.adam.adsl import ALLOCATED_VARIABLES
from lms_assets.audit.feasibility import bound_enumeration
from lms_assets.audit.placement_statistics import FollowUp, at_risk_bounds, followup_bounds, landmark_rates
from lms_assets.audit.reconstructions import Placements, all_binary_allocations, gaps_of, os_placements, sample_sites, site_space
from lms_assets.audit.sensitivity_inputs import Study, os_risk_inputs, pfs_risk_inputs, study_from_tables, transcribed_subgroups
from lms_assets.audit.sensitivity_summary import SENSITIVITY_SCHEMA, Coverage, Outcome, registry_rows, summarise
from lms_assets.checks.printed_values import half_unit
from lms_assets.records.study import Study as StudyFile
from lms_assets.tables import subgroups, survival
from lms_assets.tables.batched import subgroup_tests

LANDMARK_MONTHS = (6.0, 12.0, 24.0)
# A landmark rate is "the same" when it rounds to the same percentage point, the precision a reader quotes.
RATE_DECIMALS = 2
# Shares from the two halves of this sample agree to within half a percentage point on the shipped study.
DEFAULT_SAMPLE = 50_000
# Any fixed seed: the verdicts and shares do not depend on it (test_sensitivity compares two).
DEFAULT_SEED = 20

OS_PLACEMENT = "last-contact times of the living patients"
SIGNIFICANT = f"p ≥ {survival.SIGNIFICANCE}"


@dataclass(frozen=True)
class Sensitivity:
    """The result table and how the reconstructions were covered."""

    table: pl.DataFrame
    placements: Placements
    site_space: int
    dose_space: int
    sample_size: int
    seed: int
    shipped_consistent: bool


def os_window(cut: dt.date, study: StudyFile, days_per_month: float = 365.25 / 12) -> tuple[float, float]:
    """Shortest and longest OS time of a patient alive at ``cut`` (followed to the cut): treated from the last to the
    first day of the study's enrolment window (study.toml)."""
    return (cut - study.enrolment_end).days / days_per_month, (cut - study.enrolment_start).days / days_per_month


def study_at_cut(adsl: pl.DataFrame, adtte: pl.DataFrame, registry: pl.DataFrame, cut: dt.date, study_file: StudyFile) -> Study:
    """The study's arrays at the published ``cut``: ADTTE's rows of that cut, a living patient's OS time bounded by ``os_window``."""
    return study_from_tables(adsl, adtte.filter(pl.col("DCUTDT") == cut), registry, os_window(cut, study_file), study_file)


def _printed_rows(
    study: Study,
    quantity: str,
    label: str,
    coverage: Coverage,
    outcome: Outcome,
    decimals: int,
    imposed: dict[str, tuple[float, int]] | None = None,
    note: str | None = None,
) -> list[dict]:
    """One row per printing of ``quantity``: does the result round to that printing, under how many reconstructions."""
    rows = []
    for row in study.registry.filter(pl.col("quantity") == quantity).iter_rows(named=True):
        half = half_unit(row["decimals"])
        is_constraint = imposed is not None and imposed.get(quantity.split(".", 1)[1]) == (row["value"], row["decimals"])
        rows.append(
            summarise(
                quantity,
                f"{label}, {row['source']}",
                OS_PLACEMENT,
                coverage,
                outcome,
                f"rounds to the printed {row['value']:.{row['decimals']}f} ({row['printed']!r})",
                (row["value"] - half, row["value"] + half),
                decimals,
                value_id=row["value_id"],
                note="imposed: this printing is a constraint of the placements" if is_constraint else note,
            )
        )
    return rows


def _test_rows(result: str, label: str, rests_on: str, coverage: Coverage, tested: tuple, shipped: tuple) -> list[dict]:
    """The log-rank p row (p ≥ 0.05?) and, for two levels, the Cox HR row (HR > 1?) of one subgroup comparison."""
    (p, hr), (shipped_p, shipped_hr) = tested, shipped
    rows = [
        summarise(
            f"{result}.logrank_p",
            f"{label}: log-rank p",
            rests_on,
            coverage,
            Outcome.point(p, float(shipped_p[0])),
            SIGNIFICANT,
            (survival.SIGNIFICANCE, np.inf),
            -3,
        )
    ]
    if hr is not None:
        rows.append(
            summarise(f"{result}.hr", f"{label}: Cox HR", rests_on, coverage, Outcome.point(hr, float(shipped_hr[0])), "HR > 1", (1.0, np.inf), 2)
        )
    return rows


def _os_rows(study: Study, p: Placements, shipped_gaps: np.ndarray, exact: Coverage) -> list[dict]:
    """OS median and CI, landmark rates and numbers at risk, reverse-KM follow-up and its range: the placements alone."""
    censored = study.died == 0
    lower, upper, shipped_times = study.lower[censored], study.upper[censored], study.os[censored]
    shipped_index = np.flatnonzero((p.gaps == shipped_gaps).all(axis=1))
    rows = []
    for name, values in (("median", p.median), ("ci_lower", p.ci_lower), ("ci_upper", p.ci_upper)):
        shipped = float(values[shipped_index[0]]) if len(shipped_index) else None
        rows += _printed_rows(
            study, f"os.{name}", f"OS {name.replace('ci_', 'CI ')} (SPSS)", exact, Outcome.point(values, shipped), 3, imposed=p.printed
        )
    rates = landmark_rates(p.death_times, p.gaps, LANDMARK_MONTHS)
    shipped_rates = landmark_rates(p.death_times, shipped_gaps, LANDMARK_MONTHS)[0]
    fewest, most = at_risk_bounds(p, p.gaps, lower, upper, LANDMARK_MONTHS)
    shipped_at_risk, _ = at_risk_bounds(p, shipped_gaps, shipped_times, shipped_times, LANDMARK_MONTHS)
    for j, month in enumerate(LANDMARK_MONTHS):
        rounded = round(float(shipped_rates[j]), RATE_DECIMALS)
        rows.append(
            summarise(
                f"os.landmark.{month:g}m.rate",
                f"OS rate at {month:g} months (Kaplan–Meier S(t))",
                OS_PLACEMENT,
                exact,
                Outcome.point(rates[:, j], float(shipped_rates[j])),
                f"rounds to the shipped {rounded:.{RATE_DECIMALS}f}",
                (rounded - half_unit(RATE_DECIMALS), rounded + half_unit(RATE_DECIMALS)),
                3,
                note="S(t) depends only on the gaps, not on the time inside them",
            )
        )
        at_risk = float(shipped_at_risk[0, j])
        rows.append(
            summarise(
                f"os.landmark.{month:g}m.at_risk",
                f"OS patients at risk at {month:g} months",
                OS_PLACEMENT,
                exact,
                Outcome(fewest[:, j].astype(float), most[:, j].astype(float), at_risk),
                f"equals the shipped {at_risk:g}",
                (at_risk, at_risk),
                0,
                note="depends on the time inside a gap that contains the landmark",
            )
        )
    rows += _followup_rows(study, followup_bounds(p, p.gaps, lower, upper), followup_bounds(p, shipped_gaps, shipped_times, shipped_times), exact)
    return rows


def _followup_rows(study: Study, bounds: FollowUp, shipped_bounds: FollowUp, exact: Coverage) -> list[dict]:
    """Median follow-up (reverse Kaplan–Meier), shortest and longest: each printing, or the shipped value where none is printed."""
    rows = []
    for name, label in (("median", "Median follow-up (reverse Kaplan–Meier)"), ("min", "Shortest follow-up"), ("max", "Longest follow-up")):
        shipped_value = float(getattr(shipped_bounds, f"{name}_lo")[0])
        outcome = Outcome(getattr(bounds, f"{name}_lo"), getattr(bounds, f"{name}_hi"), shipped_value)
        note = "each placement's value spans the bounds of its gap (and the patients' own bounds)"
        printed = _printed_rows(study, f"followup.{name}", label, exact, outcome, 2, note=note)
        rounded = round(shipped_value, 1)
        rows += printed or [
            summarise(
                f"followup.{name}",
                label,
                OS_PLACEMENT,
                exact,
                outcome,
                f"rounds to the shipped {rounded:.1f}",
                (rounded - half_unit(1), rounded + half_unit(1)),
                2,
                note=note,
            )
        ]
    return rows


def sensitivity_ranges(study: Study, provenance: pl.DataFrame, sample_size: int = DEFAULT_SAMPLE, seed: int = DEFAULT_SEED) -> Sensitivity:
    """Min, max and shipped value of every result resting on reconstructed inputs, with its verdict, over every consistent reconstruction.

    Exact over the OS placements (results that rest only on the censoring times) and over the dose
    allocations (PFS by dose); a seeded uniform sample of full reconstructions (placement, site allocation,
    dose allocation) where the space is too large (anything by site, OS by dose, the all-subgroups claim).
    """
    rng = np.random.default_rng(seed)
    censored = study.died == 0
    deaths = np.sort(study.os[~censored])
    p = os_placements(deaths, study.lower[censored], study.upper[censored], study.registry)
    shipped_gaps = gaps_of(study.os[censored], deaths)[None, :]
    shipped_consistent = bool((p.gaps == shipped_gaps).all(axis=1).any())
    n_place = len(p.gaps)
    printed = ", ".join(f"{name.replace('ci_', 'CI ')} {value:g}" for name, (value, _) in p.printed.items())
    exact_os = Coverage(
        "exact",
        n_place,
        f"exact: all {n_place:,} labelled placements ({p.multisets_consistent} gap multisets reproduce the printed "
        f"{printed}; {p.multisets_feasible:,} feasible of {p.multisets_examined:,} examined)",
    )
    rows = _os_rows(study, p, shipped_gaps, exact_os)

    # Subgroups on transcribed factors: PFS fixed by the paper, OS exact over the placements.
    os_until, os_event, os_times = os_risk_inputs(study, deaths, p.gaps)
    shipped_until, _, _ = os_risk_inputs(study, deaths, shipped_gaps)
    pfs = pfs_risk_inputs(study)
    fixed = Coverage("not needed", None, "not needed: no reconstructed input")
    smallest_exact = {}  # per transcribed factor of the claim: PFS p (one value) and OS p per placement
    shipped_smallest = []  # the same under the shipped reconstruction
    for subgroup in transcribed_subgroups(study.subgroups):
        group = study.factors[subgroup.factor][None, :]
        label = f"{subgroup.factor} ({subgroup.level_label} vs {subgroup.reference_label})"
        pfs_tested = subgroup_tests(*pfs, group, 2)
        os_tested = subgroup_tests(os_until, os_event, os_times, group, 2)
        os_tested_shipped = subgroup_tests(shipped_until, os_event, os_times, group, 2)
        smallest_exact[subgroup.factor] = (float(pfs_tested[0][0]), os_tested[0])
        shipped_smallest += [float(pfs_tested[0][0]), float(os_tested_shipped[0][0])]
        rows += _test_rows(f"subgroup.PFS.{subgroup.factor}", f"PFS, {label}", "nothing reconstructed", fixed, pfs_tested, pfs_tested)
        rows += _test_rows(f"subgroup.OS.{subgroup.factor}", f"OS, {label}", OS_PLACEMENT, exact_os, os_tested, os_tested_shipped)

    # Allocations. PFS by dose: every allocation. Anything by site, and OS by dose: a seeded sample of full reconstructions.
    dose_all = all_binary_allocations(len(study.subjid), study.dose_count)
    site_total = site_space(study.site_levels, study.site_counts, study.sex, study.sex_restricted)
    dose_label = "starting dose ({} mg vs {} mg)".format(*study.dose_levels)
    exact_dose = Coverage("exact", len(dose_all), f"exact: all {len(dose_all):,} dose allocations")
    dose_pfs = subgroup_tests(*pfs, dose_all, 2)
    dose_pfs_shipped = subgroup_tests(*pfs, study.dose[None, :], 2)
    rows += _test_rows("subgroup.PFS.Starting dose", f"PFS, {dose_label}", "starting-dose allocation", exact_dose, dose_pfs, dose_pfs_shipped)

    # The sample is held whole (each draw's OS times, sites and doses of every patient): the one gate bounds it too.
    bound_enumeration("sampled reconstructions (draws of every patient's site, dose and OS placement)", sample_size, len(study.subjid))
    placement_draw = rng.integers(0, n_place, sample_size)
    site_draw = sample_sites(study.site_levels, study.site_counts, study.sex, sample_size, rng, study.sex_restricted)
    dose_index = rng.integers(0, len(dose_all), sample_size)
    halves = (np.arange(sample_size) < sample_size // 2, np.arange(sample_size) >= sample_size // 2)
    sampled = Coverage(
        "seeded sample",
        sample_size,
        f"seeded sample (seed {seed}): {sample_size:,} uniform draws of (placement, site allocation, dose allocation) "
        f"from {n_place:,} × {site_total:,} × {len(dose_all):,}; the ranges are the sample's, inner bounds of the true ones",
        halves,
    )
    largest = int(np.argmax(study.site_counts))
    n_sites = len(study.site_levels)
    os_sampled = (os_until[placement_draw], os_event, os_times)
    os_shipped = (shipped_until, os_event, os_times)
    site_rests, dose_rests = "primary-site allocation", "starting-dose allocation"
    # The claim's comparisons on allocated columns, two levels each, as survival_subgroups shows them.
    claim_sites = [s for s in study.subgroups if s.column in ALLOCATED_VARIABLES]
    unsupported = sorted({s.column for s in claim_sites} - {"PRIMSITE"})
    if unsupported:
        raise ValueError(f"study.toml's subgroups compare {unsupported}: only the primary-site allocation is varied here")

    def two_levels(sites: np.ndarray, s: subgroups.Subgroup) -> np.ndarray:
        level, reference = study.site_levels.index(s.level), study.site_levels.index(s.reference)
        return np.where(sites == level, 1, np.where(sites == reference, 0, -1))

    # (result, label, rests on, sampled inputs, sampled groups, shipped inputs, shipped groups, levels)
    claim_comparisons = tuple(
        (
            f"subgroup.{endpoint}.{s.factor} ({s.level_label} vs {s.reference_label})",
            f"{endpoint}, {s.factor.lower()} ({s.level_label} vs {s.reference_label}), as survival_subgroups and the claim compare it",
            site_rests if endpoint == "PFS" else f"{site_rests} and {OS_PLACEMENT}",
            pfs if endpoint == "PFS" else os_sampled,
            two_levels(site_draw, s),
            pfs if endpoint == "PFS" else os_shipped,
            two_levels(study.site, s),
            2,
        )
        for s in claim_sites
        for endpoint in subgroups.SUBGROUP_CLAIM.endpoints
    )
    comparisons = (
        *claim_comparisons,
        (
            "subgroup.PFS.Primary site",
            f"PFS, primary site (all {n_sites} sites; not the claim's comparison)",
            site_rests,
            pfs,
            site_draw,
            pfs,
            study.site,
            n_sites,
        ),
        (
            "subgroup.OS.Primary site",
            f"OS, primary site (all {n_sites} sites; not the claim's comparison)",
            f"{site_rests} and {OS_PLACEMENT}",
            os_sampled,
            site_draw,
            os_shipped,
            study.site,
            n_sites,
        ),
        (
            "subgroup.PFS.Primary site (largest vs rest)",
            f"PFS, {study.site_levels[largest]} vs other sites",
            site_rests,
            pfs,
            (site_draw == largest).astype(np.int64),
            pfs,
            (study.site == largest).astype(np.int64),
            2,
        ),
        (
            "subgroup.OS.Primary site (largest vs rest)",
            f"OS, {study.site_levels[largest]} vs other sites",
            f"{site_rests} and {OS_PLACEMENT}",
            os_sampled,
            (site_draw == largest).astype(np.int64),
            os_shipped,
            (study.site == largest).astype(np.int64),
            2,
        ),
        (
            "subgroup.OS.Starting dose",
            f"OS, {dose_label}",
            f"{dose_rests} and {OS_PLACEMENT}",
            os_sampled,
            dose_all[dose_index],
            os_shipped,
            study.dose,
            2,
        ),
    )
    sampled_p, shipped_p = {}, {}
    for result, label, rests, inputs, groups, shipped_inputs, shipped_groups, levels in comparisons:
        tested = subgroup_tests(*inputs, groups, levels)
        shipped = subgroup_tests(*shipped_inputs, shipped_groups[None, :], levels)
        sampled_p[result], shipped_p[result] = tested[0], float(shipped[0][0])
        rows += _test_rows(result, label, rests, sampled, tested, shipped)

    # The printed claim, as subgroups.SUBGROUP_CLAIM defines it: no comparison the study declares differs significantly in PFS or OS.
    allocated = [c[0] for c in claim_comparisons]
    smallest = np.minimum.reduce(
        [*(np.minimum(pfs_p, os_p[placement_draw]) for pfs_p, os_p in smallest_exact.values()), *(sampled_p[c] for c in allocated)]
    )
    shipped_claim = min(*shipped_smallest, *(shipped_p[c] for c in allocated))
    rows.append(
        summarise(
            "subgroups.none_significant",
            "Smallest subgroup log-rank p (PFS and OS: every comparison of the claim, survival.SUBGROUP_CLAIM, as survival_subgroups shows them)",
            f"{site_rests} and {OS_PLACEMENT}",
            sampled,
            Outcome.point(smallest, shipped_claim),
            f"no significant subgroup difference (every {SIGNIFICANT})",
            (survival.SIGNIFICANCE, np.inf),
            -3,
            note="the Discussion's claim; no multiplicity correction, as a reader would judge it",
        )
    )

    rows += registry_rows(study.registry, provenance, {r["value_id"] for r in rows if r["value_id"]})
    table = pl.DataFrame(rows, schema=SENSITIVITY_SCHEMA, orient="row") if rows else pl.DataFrame(schema=SENSITIVITY_SCHEMA)
    return Sensitivity(table, p, site_total, len(dose_all), sample_size, seed, shipped_consistent)
