"""Reconstruction sensitivity: the enumeration and ranges against brute force, the batched tests against lifelines, the verdicts against their extremes."""

import itertools
import math

import numpy as np
import polars as pl
import pytest

from lms_assets.audit import placement_statistics as stats
from lms_assets.audit import reconstructions as recon
from lms_assets.audit import sensitivity as sens
from lms_assets.audit import sensitivity_checks as checks
from lms_assets.audit import sensitivity_inputs as inputs
from lms_assets.audit import sensitivity_summary as summary
from lms_assets.records.declarations import Subgroup
from lms_assets.report import page
from lms_assets.tables import batched, kaplan_meier, survival, survival_values
from lms_assets_tests.conftest import SHIPPED_DATA, SHIPPED_STUDY

# --- a toy study: 5 deaths, 3 living patients whose last contact is unpublished -------------------------------

TOY_DEATHS = np.array([2.0, 4.0, 6.0, 8.0, 10.0])
TOY_LOWER = np.array([1.0, 3.0, 5.0])  # each living patient's PFS
TOY_UPPER = 11.0
TOY_FACTOR = np.array([1, 0, 1, 0, 1, 0, 1, 1])  # deaths first, then the censored, as toy_times orders them
# Half-integers never tie with a death; the bounds themselves are in the grid so the extremes are reached.
TOY_GRID = [np.unique(np.r_[lo, np.arange(math.floor(lo) + 0.5, TOY_UPPER, 1.0), TOY_UPPER]) for lo in TOY_LOWER]


def toy_registry(median: float, ci_lower: float, ci_upper: float) -> pl.DataFrame:
    rows = [("os.median", median), ("os.ci_lower", ci_lower), ("os.ci_upper", ci_upper)]
    return pl.DataFrame(
        {
            "value_id": [f"TOY.{q}" for q, _ in rows],
            "source": ["Toy"] * 3,
            "quantity": [q for q, _ in rows],
            "printed": [f"{v:.1f}" for _, v in rows],
            "value": [round(v, 1) for _, v in rows],
            "decimals": [1, 1, 1],
        }
    )


def spss(times: np.ndarray, died: np.ndarray) -> kaplan_meier.MedianEstimate:
    return survival.spss_median_ci(kaplan_meier.km_table(times.tolist(), died.tolist()))


def toy_times(censored: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[TOY_DEATHS, censored], np.r_[np.ones(len(TOY_DEATHS), dtype=int), np.zeros(len(censored), dtype=int)]


def agrees_with(estimate: kaplan_meier.MedianEstimate, registry: pl.DataFrame) -> bool:
    printed = dict(zip(registry["quantity"], registry["value"]))
    values = {"os.median": estimate.median, "os.ci_lower": estimate.ci_lower, "os.ci_upper": estimate.ci_upper}
    return all(v is not None and abs(v - printed[q]) <= 0.05 + 1e-9 for q, v in values.items())


@pytest.fixture(scope="module")
def toy():
    """The toy's printed values (from one reference placement), the module's placements, and every grid point that reproduces them."""
    reference = spss(*toy_times((1.5, 6.5, 10.5)))
    registry = toy_registry(reference.median, reference.ci_lower, reference.ci_upper)
    placements = recon.os_placements(TOY_DEATHS, TOY_LOWER, np.full(3, TOY_UPPER), registry)
    consistent = [c for c in itertools.product(*TOY_GRID) if agrees_with(spss(*toy_times(c)), registry)]
    return registry, placements, np.array(consistent)


def test_toy_enumeration_is_every_gap_assignment_brute_force_finds(toy):
    registry, placements, consistent = toy
    assert len(consistent) > 0
    brute = {tuple(g) for g in recon.gaps_of(consistent.ravel(), TOY_DEATHS).reshape(consistent.shape)}
    assert {tuple(g) for g in placements.gaps} == brute
    # More than one placement, so the ranges below are ranges, and not every feasible one: the printed CI filters.
    assert 1 < len(placements.gaps) < placements.multisets_feasible * math.factorial(3)
    assert placements.printed == {q.split(".")[1]: (v, 1) for q, v in zip(registry["quantity"], registry["value"])}


def test_unreachable_printed_median_is_said_not_guessed():
    with pytest.raises(recon.NoConsistentReconstruction, match="reproduces any printed os.median"):
        recon.os_placements(TOY_DEATHS, TOY_LOWER, np.full(3, TOY_UPPER), toy_registry(99.0, 98.0, 100.0))


def test_more_censored_patients_than_can_be_enumerated_are_refused_naming_the_count():
    from lms_assets.audit.feasibility import EnumerationTooLarge

    # Ten living patients: 10! orders of each consistent gap multiset are refused before one is built.
    censored = (0.5,) * 8 + (10.5, 10.5)
    times, died = np.r_[TOY_DEATHS, censored], np.r_[np.ones(5, dtype=int), np.zeros(10, dtype=int)]
    reference = spss(times, died)
    with pytest.raises(EnumerationTooLarge, match=r"× 3,628,800 orders of the censored\): [\d,]+ rows of 10 to enumerate"):
        recon.os_placements(
            TOY_DEATHS, np.full(10, 0.1), np.full(10, TOY_UPPER), toy_registry(reference.median, reference.ci_lower, reference.ci_upper)
        )


def test_results_do_not_depend_on_the_chunk_size(toy, shipped, monkeypatch):
    registry, placements, _ = toy
    study = shipped[0]
    pfs = inputs.pfs_risk_inputs(study)
    sites = recon.sample_sites(study.site_levels, study.site_counts, study.sex, 2000, np.random.default_rng(5), study.sex_restricted)
    whole = (
        stats.followup_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER)),
        stats.at_risk_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER), (3.0, 7.0)),
        stats.landmark_rates(TOY_DEATHS, placements.gaps, (3.0, 7.0)),
        batched.subgroup_tests(*pfs, sites, len(study.site_levels)),
        batched.subgroup_tests(*pfs, (sites == 0).astype(np.int64), 2),
        # Both the times and the groups drawn: the path that fits every sample as it comes.
        batched.subgroup_tests(np.repeat(pfs[0], len(sites), axis=0), pfs[1], pfs[2], (sites == 0).astype(np.int64), 2),
    )
    # One row per chunk for the placements; a few dozen samples per chunk for the tests.
    monkeypatch.setattr(batched, "MEMORY_BUDGET", 1)
    chunked_placements = recon.os_placements(TOY_DEATHS, TOY_LOWER, np.full(3, TOY_UPPER), registry)
    assert np.array_equal(chunked_placements.gaps, placements.gaps)
    follow = stats.followup_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER))
    assert all(np.array_equal(getattr(follow, f), getattr(whole[0], f), equal_nan=True) for f in ("median_lo", "median_hi", "min_lo", "max_hi"))
    assert all(
        np.array_equal(a, b)
        for a, b in zip(stats.at_risk_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER), (3.0, 7.0)), whole[1])
    )
    assert np.array_equal(stats.landmark_rates(TOY_DEATHS, placements.gaps, (3.0, 7.0)), whole[2])
    monkeypatch.setattr(batched, "MEMORY_BUDGET", 40 * batched.bytes_per_sample(len(study.subjid), pfs[2], len(study.site_levels), len(study.subjid)))
    p, _ = batched.subgroup_tests(*pfs, sites, len(study.site_levels))
    p2, hr2 = batched.subgroup_tests(*pfs, (sites == 0).astype(np.int64), 2)
    assert np.array_equal(p, whole[3][0], equal_nan=True) and np.array_equal(p2, whole[4][0], equal_nan=True)
    assert np.array_equal(hr2, whole[4][1], equal_nan=True)
    p3, hr3 = batched.subgroup_tests(np.repeat(pfs[0], len(sites), axis=0), pfs[1], pfs[2], (sites == 0).astype(np.int64), 2)
    assert np.array_equal(p3, p2, equal_nan=True) and np.array_equal(hr3, hr2, equal_nan=True)
    assert np.array_equal(p3, whole[5][0], equal_nan=True) and np.array_equal(hr3, whole[5][1], equal_nan=True)


def test_toy_ranges_match_brute_force(toy):
    from lifelines.statistics import logrank_test

    _, placements, consistent = toy
    months = (3.0, 4.0, 7.0)  # 4.0 is a death time: a censoring just before it is not at risk at it
    rates = stats.landmark_rates(TOY_DEATHS, placements.gaps, months)
    fewest, most = stats.at_risk_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER), months)
    follow = stats.followup_bounds(placements, placements.gaps, TOY_LOWER, np.full(3, TOY_UPPER))
    brute_rates, brute_at_risk, brute_follow, brute_p = [], [], [], []
    for censored in consistent:
        times, died = toy_times(tuple(censored))
        curve = kaplan_meier.km_table(times.tolist(), died.tolist())
        brute_rates.append([curve.filter(pl.col("time") <= m)["surv"].min() for m in months])
        brute_at_risk.append([(times >= m).sum() for m in months])
        reverse = kaplan_meier.km_table(times.tolist(), (1 - died).tolist())
        brute_follow.append([kaplan_meier.first_time_at_or_below(reverse, "surv", 0.5), times.min(), times.max()])
        x = TOY_FACTOR == 1
        brute_p.append(logrank_test(times[x], times[~x], died[x], died[~x]).p_value)
    brute_rates, brute_at_risk, brute_follow = np.array(brute_rates), np.array(brute_at_risk), np.array(brute_follow, dtype=float)
    # Gap-only statistics: the same set of values.
    np.testing.assert_allclose(np.unique(rates.round(12), axis=0), np.unique(brute_rates.round(12), axis=0))
    study = toy_study()
    until, event_index, n_times = inputs.os_risk_inputs(study, TOY_DEATHS, placements.gaps)
    p, _ = batched.subgroup_tests(until, event_index, n_times, TOY_FACTOR[None, :], 2)
    np.testing.assert_allclose(np.unique(p.round(10)), np.unique(np.round(brute_p, 10)))
    # Time-dependent ones, placement by placement: every grid point inside the module's interval, and the grid
    # reaching its ends (the patients' bounds are grid points) or coming within a step of a gap's open end.
    index = {tuple(g): i for i, g in enumerate(placements.gaps)}
    of_point = np.array([index[tuple(g)] for g in recon.gaps_of(consistent.ravel(), TOY_DEATHS).reshape(consistent.shape)])
    intervals = (
        (fewest, most),
        *(
            (np.c_[lo], np.c_[hi])
            for lo, hi in ((follow.median_lo, follow.median_hi), (follow.min_lo, follow.min_hi), (follow.max_lo, follow.max_hi))
        ),
    )
    observed = (brute_at_risk, *(brute_follow[:, [c]] for c in range(3)))
    for (lo, hi), values in zip(intervals, observed):
        step = 0.0 if values is brute_at_risk else 1.0
        for i in range(len(placements.gaps)):
            here = values[of_point == i]
            assert (here >= lo[i] - 1e-9).all() and (here <= hi[i] + 1e-9).all()
            assert (here.min(axis=0) <= lo[i] + step).all() and (here.max(axis=0) >= hi[i] - step).all()


def toy_study() -> inputs.Study:
    n = len(TOY_DEATHS) + len(TOY_LOWER)
    return inputs.Study(
        subjid=np.arange(1, n + 1),
        pfs=np.r_[TOY_DEATHS / 2, TOY_LOWER],
        pfs_event=np.ones(n, dtype=np.int64),
        os=np.r_[TOY_DEATHS, 1.5, 6.5, 10.5],
        died=np.r_[np.ones(5, dtype=np.int64), np.zeros(3, dtype=np.int64)],
        lower=np.r_[TOY_DEATHS / 2, TOY_LOWER],
        upper=np.full(n, TOY_UPPER),
        factors={"Toy": TOY_FACTOR},
        sex=np.array(["F"] * n),
        site=np.zeros(n, dtype=np.int64),
        site_levels=("A",),
        site_counts=(n,),
        dose=np.zeros(n, dtype=np.int64),
        dose_levels=(10, 12),
        dose_count=0,
        registry=toy_registry(0, 0, 0),
    )


# --- batched log-rank and Cox against lifelines -------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    """The shipped study's arrays and its sensitivity table (computed once: a few seconds)."""
    adsl, adtte, registry, provenance = inputs.read_study(SHIPPED_DATA)
    cut = registry["data_cut"].drop_nulls().max()
    study = sens.study_at_cut(adsl, adtte, registry, cut, SHIPPED_STUDY)
    return study, registry, sens.sensitivity_ranges(study, provenance)


def test_batched_logrank_and_cox_agree_with_lifelines(shipped):
    from lifelines import CoxPHFitter
    from lifelines.statistics import multivariate_logrank_test

    study = shipped[0]
    rng = np.random.default_rng(3)
    sites = recon.sample_sites(study.site_levels, study.site_counts, study.sex, 12, rng, study.sex_restricted)
    doses = recon.all_binary_allocations(len(study.subjid), study.dose_count)[rng.integers(0, 3876, 12)]
    until, event_index, n_times = inputs.pfs_risk_inputs(study)  # PFS has tied times (1.0 twice): Efron matters
    site_p, _ = batched.subgroup_tests(until, event_index, n_times, sites, len(study.site_levels))
    dose_p, dose_hr = batched.subgroup_tests(until, event_index, n_times, doses, 2)
    for r in range(12):
        expected = multivariate_logrank_test(study.pfs, sites[r], study.pfs_event).p_value
        assert site_p[r] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert dose_p[r] == pytest.approx(multivariate_logrank_test(study.pfs, doses[r], study.pfs_event).p_value, rel=1e-9)
        frame = pl.DataFrame({"time": study.pfs, "event": study.pfs_event, "x": doses[r]}).to_pandas()
        fit = CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-14})
        assert dose_hr[r] == pytest.approx(float(np.exp(fit.params_["x"])), rel=1e-6)


def test_cox_is_not_estimable_when_a_group_has_no_event():
    at_risk = np.array([[[3, 2], [2, 2], [1, 2]]])
    events = np.array([[[1, 0], [1, 0], [1, 0]]])
    hr, estimable = batched.cox_binary(at_risk, events)
    assert np.isnan(hr[0]) and not estimable[0]


# --- allocations --------------------------------------------------------------------------------------------


# The shipped study.toml's sex_restricted_sites, as the sensitivity analysis keys them (registry slug -> ADSL sex).
UTERUS_FEMALE = {"uterus": "F"}


def test_site_space_and_sampler_respect_the_counts_and_the_female_uterus():
    levels, counts = ("Retroperitoneal", "Uterus", "Lung"), (2, 1, 2)
    sex = np.array(["F", "M", "F", "M", "F"])
    brute = {perm for perm in itertools.permutations([0, 0, 1, 2, 2]) if all(sex[i] == "F" for i, s in enumerate(perm) if s == 1)}
    assert recon.site_space(levels, counts, sex, UTERUS_FEMALE) == len(brute)
    drawn = recon.sample_sites(levels, counts, sex, 3000, np.random.default_rng(0), UTERUS_FEMALE)
    assert {tuple(row) for row in drawn} == brute
    # Uniform: every allocation about equally often (18 allocations, ~167 draws each).
    frequencies = pl.Series([str(tuple(r)) for r in drawn]).value_counts()["count"]
    assert frequencies.min() > 100 and frequencies.max() < 240


def test_shipped_site_space_counts_table_1(shipped):
    study = shipped[0]
    females = int((study.sex == "F").sum())
    assert recon.site_space(study.site_levels, study.site_counts, study.sex, study.sex_restricted) == females * math.factorial(18) // (
        math.factorial(8) * math.factorial(5) * math.factorial(4)
    )


# --- the shipped study --------------------------------------------------------------------------------------


def test_shipped_reconstruction_lies_inside_every_reported_range(shipped):
    _, _, result = shipped
    assert result.shipped_consistent
    ranged = result.table.filter(pl.col("minimum").is_not_null())
    assert ranged.height > 30
    outside = ranged.filter((pl.col("shipped") < pl.col("minimum") - 1e-9) | (pl.col("shipped") > pl.col("maximum") + 1e-9))
    assert outside.is_empty(), outside.select("result", "shipped", "minimum", "maximum").rows()
    assert (ranged["holds"] + ranged["fails"] <= 1 + 1e-12).all()


def placement_times(p: recon.Placements, gaps: np.ndarray, where: float) -> np.ndarray:
    """A concrete time for each censored patient inside its gap: ``where`` = 0 its earliest, 1 (almost) its latest."""
    earliest = np.maximum(p.gap_lo[gaps], p.lower)
    latest = np.minimum(p.gap_hi[gaps], p.upper)
    # Just inside: a time on a death would be the tie the gaps read as after it, but the reverse curve counts differently.
    return earliest + (latest - earliest) * np.clip(where, 1e-6, 1 - 1e-6)


def test_robust_subgroup_results_hold_at_their_extreme_reconstructions(shipped):
    from lifelines.statistics import logrank_test

    study, _, result = shipped
    p = result.placements
    robust = result.table.filter(
        pl.col("result").str.starts_with("subgroup.OS.") & pl.col("result").str.ends_with(".logrank_p") & (pl.col("verdict") == summary.ROBUST)
    )
    assert robust.height >= 2  # ECOG, combination therapy, prior chemotherapy on the shipped study
    until, event_index, n_times = inputs.os_risk_inputs(study, p.death_times, p.gaps)
    censored = study.died == 0
    for row in robust.iter_rows(named=True):
        factor = row["result"].split(".")[2]
        x = study.factors[factor]
        values, _ = batched.subgroup_tests(until, event_index, n_times, x[None, :], 2)
        for index, reported in ((int(np.argmin(values)), row["minimum"]), (int(np.argmax(values)), row["maximum"])):
            times = study.os.copy()
            times[censored] = placement_times(p, p.gaps[index], 0.5)
            level = x == 1
            recomputed = logrank_test(times[level], times[~level], study.died[level], study.died[~level]).p_value
            assert recomputed == pytest.approx(reported, rel=1e-9)
            assert (recomputed >= survival.SIGNIFICANCE) == (row["holds"] == 1)


def test_robust_hazard_ratio_directions_hold_at_their_extreme_reconstructions(shipped):
    from lifelines import CoxPHFitter

    study, _, result = shipped
    p = result.placements
    robust = result.table.filter(
        pl.col("result").str.starts_with("subgroup.OS.") & pl.col("result").str.ends_with(".hr") & (pl.col("verdict") == summary.ROBUST)
    )
    # Sex, prior chemotherapy (lowest HR 1.01, the closest call), prior surgery, prior radiotherapy.
    assert robust.height >= 3
    until, event_index, n_times = inputs.os_risk_inputs(study, p.death_times, p.gaps)
    censored = study.died == 0
    for row in robust.iter_rows(named=True):
        x = study.factors[row["result"].split(".")[2]]
        _, hr = batched.subgroup_tests(until, event_index, n_times, x[None, :], 2)
        for index, reported in ((int(np.nanargmin(hr)), row["minimum"]), (int(np.nanargmax(hr)), row["maximum"])):
            times = study.os.copy()
            times[censored] = placement_times(p, p.gaps[index], 0.5)
            kept = x >= 0
            frame = pl.DataFrame({"time": times[kept], "event": study.died[kept], "x": x[kept]}).to_pandas()
            fitted = float(np.exp(CoxPHFitter().fit(frame, "time", "event", fit_options={"precision": 1e-14}).params_["x"]))
            assert fitted == pytest.approx(reported, rel=1e-6)
            assert (fitted > 1) == (row["holds"] == 1)


def test_envelope_holds_the_shipped_curve(shipped):
    study, _, result = shipped
    envelope = stats.os_curve_envelope(result.placements, study.os[study.died == 0])
    assert envelope.height == 12
    assert (envelope["surv_min"] <= envelope["surv_shipped"]).all() and (envelope["surv_shipped"] <= envelope["surv_max"]).all()
    # First death (4.3 months): 18/19 with nobody censored before it; the shipped patient 10 (3.9 months) makes it 17/18.
    assert envelope["surv_max"][0] == pytest.approx(18 / 19) and envelope["surv_shipped"][0] == pytest.approx(17 / 18)


def test_robust_followup_verdict_holds_at_its_extreme_reconstructions(shipped):
    study, registry, result = shipped
    p = result.placements
    row = result.table.filter(pl.col("value_id") == "EFF.followup.median").row(0, named=True)
    assert row["verdict"] == summary.ROBUST and row["fails"] == 1  # the printed 17.8 months is out of reach
    printed = registry.filter(pl.col("value_id") == "EFF.followup.median")["value"][0]
    bounds = stats.followup_bounds(p, p.gaps, p.lower, p.upper)
    censored = study.died == 0
    for index, where in ((int(np.argmin(bounds.median_lo)), 0.0), (int(np.argmax(bounds.median_hi)), 1.0)):
        times = study.os.copy()
        times[censored] = placement_times(p, p.gaps[index], where)
        reverse = kaplan_meier.km_table(times.tolist(), (1 - study.died).tolist())
        median = kaplan_meier.first_time_at_or_below(reverse, "surv", 0.5)
        assert row["minimum"] - 1e-4 <= median <= row["maximum"] + 1e-9
        assert abs(median - printed) > 0.05


def test_verdicts_by_value_cover_the_registry(shipped):
    _, registry, result = shipped
    verdicts = summary.verdicts_by_value(result.table, registry)
    assert verdicts.columns == ["value_id", "sensitivity_verdict", "sensitivity_range"]
    assert verdicts.height == registry.height and verdicts["sensitivity_verdict"].null_count() == 0
    by_id = dict(zip(verdicts["value_id"], verdicts["sensitivity_verdict"]))
    assert by_id["ABS.orr.pct"] == summary.FIXED  # Table 3's responses are transcribed
    assert by_id["T1.site.uterus.n"] == summary.ROBUST  # a count the allocation is built to meet
    assert by_id["T2.os.ci_lower"] == summary.ROBUST  # 14.2 is reached by no consistent placement
    assert by_id["EFF.followup.min"] == summary.DEPENDS
    # The Discussion's "no significant differences" is printed per endpoint and judged by the one claim result.
    assert by_id["DIS.subgroups.pfs.significant.n"] == by_id["DIS.subgroups.os.significant.n"] == summary.DEPENDS


def test_report_section_lists_the_varied_results(shipped):
    table = shipped[2].table
    html = page.sensitivity_html(table)
    assert "says nothing about patients outside those constraints" in html
    assert "subgroups.none_significant" in html and "subgroup.OS.Primary site.logrank_p" in html
    assert "T1.age.median" not in html  # fixed by the paper, listed only in the counts
    from lms_assets_tests.report.test_page import _inputs

    assert ">What the paper&#x27;s data permits" in page.study_report_html(_inputs(sensitivity=table))
    assert "data permits" not in page.study_report_html(_inputs())


def test_asset_materializes_and_states_its_coverage(shipped_run):
    import duckdb

    result = shipped_run["result"]
    assert result.success
    metadata = result.asset_materializations_for_node("sensitivity_ranges")[0].metadata
    assert metadata["os_placements"].value == 24_570
    assert metadata["dose_allocations"].value == 3876
    assert "seeded sample of 50,000 (seed 20)" in metadata["reconstructions_covered"].value
    # A fresh warehouse: computed, and kept beside it for the next materialization.
    assert metadata["from_cache"].value is False and "computed and stored" in metadata["cache"].value
    assert (shipped_run["warehouse"].parent / "sensitivity_ranges.cache.npz").exists()
    with duckdb.connect(str(shipped_run["warehouse"]), read_only=True) as con:
        stored = con.sql("select result, verdict from sensitivity_ranges").pl()
    assert stored.height == metadata["dagster/row_count"].value


def test_unprinted_followup_is_judged_against_the_shipped_value(shipped):
    study, registry, _ = shipped
    from dataclasses import replace

    unprinted = replace(study, registry=registry.filter(~pl.col("quantity").str.starts_with("followup.")))
    table = sens.sensitivity_ranges(unprinted, pl.DataFrame(schema=dict.fromkeys(("file", "column", "origin"), pl.String)), sample_size=200).table
    row = table.filter(pl.col("result") == "followup.max").row(0, named=True)
    assert row["value_id"] is None and row["conclusion"] == "rounds to the shipped 28.0"
    assert row["verdict"] == summary.DEPENDS  # 28.0 (the last death) unless a censoring falls beyond it


def test_asset_says_why_a_study_without_printed_values_has_nothing_to_vary():
    from dagster import AssetCheckResult, Output, build_asset_context

    from lms_assets.checks.printed_values import printed_values_table
    from lms_assets.defs.audit.sensitivity import CHECKS, sensitivity_ranges
    from lms_assets.defs.resources import StudyFolder
    from lms_assets.records import schemas, validation

    adsl, adtte, _, _ = inputs.read_study(SHIPPED_DATA)
    registry, known = (
        pl.DataFrame(schema={**dict.fromkeys(schema.column_names, pl.String), validation.FILE: pl.String, validation.ROW: pl.Int64})
        for schema in (schemas.REGISTRY, schemas.KNOWN_DISCREPANCIES)
    )
    no_registry = printed_values_table(registry, known)
    events = list(sensitivity_ranges(build_asset_context(), None, StudyFolder(path=str(SHIPPED_DATA)), no_registry, pl.DataFrame(), adsl, adtte))
    output = next(e for e in events if isinstance(e, Output))
    assert output.value.is_empty() and output.value.schema == pl.Schema(summary.SENSITIVITY_SCHEMA)
    assert "no published cut" in output.metadata["reconstructions_covered"].value
    checks = [e for e in events if isinstance(e, AssetCheckResult)]
    # Nothing reconstructed is bounded, so nothing can break a bound: every blocking check passes and says why.
    assert {c.check_name for c in checks} == set(CHECKS) and all(c.passed for c in checks)
    assert all("no published cut" in (c.description or "") for c in checks)


def test_sampled_verdicts_and_shares_do_not_depend_on_the_seed(shipped):
    study, _, result = shipped
    provenance = inputs.read_study(SHIPPED_DATA)[3]
    other = sens.sensitivity_ranges(study, provenance, seed=sens.DEFAULT_SEED + 1).table
    sampled = result.table.filter(pl.col("coverage").str.starts_with("seeded"))
    assert sampled.height >= 9
    joined = sampled.join(other, on=["result"], suffix="_other")
    assert (joined["verdict"] == joined["verdict_other"]).all()
    # 50,000 draws each: the difference of two estimates of a share has a standard error of at most 0.32 points.
    assert ((joined["holds"] - joined["holds_other"]).abs() < 0.015).all()


def test_a_subgroup_on_an_allocated_column_is_not_taken_as_transcribed():
    site = Subgroup("Primary site", "PRIMSITE", "Extremities", "Retroperitoneal", "Extremities", "Retroperitoneal")
    sex = next(s for s in SHIPPED_STUDY.subgroups if s.column == "SEX")
    kept = inputs.transcribed_subgroups((sex, site))
    assert kept == [sex]


def test_calendar_months_count_whole_months_then_the_days_left():
    import datetime as dt

    assert checks.calendar_months(dt.date(2018, 1, 1), dt.date(2021, 3, 31)) == pytest.approx(38 + 30 / 31)
    assert checks.calendar_months(dt.date(2020, 12, 31), dt.date(2021, 3, 31)) == 3.0
    assert checks.calendar_months(dt.date(2018, 1, 31), dt.date(2018, 2, 28)) == 1.0  # the 31st clamps to February's end
    # The day count os_window uses stays within the check's tolerance of the calendar over the shipped window.
    window = sens.os_window(dt.date(2021, 3, 31), SHIPPED_STUDY)
    assert abs(window[1] - checks.calendar_months(SHIPPED_STUDY.enrolment_start, dt.date(2021, 3, 31))) < checks.WINDOW_TOLERANCE_MONTHS


def test_the_subgroup_claim_is_judged_by_one_definition_everywhere(shipped):
    """The blocking check, printed_audit's inputs and sensitivity_ranges all read subgroups.SUBGROUP_CLAIM."""
    from lms_assets.audit import basis

    _, registry, result = shipped
    adsl, adtte, _, provenance = inputs.read_study(SHIPPED_DATA)
    cut = registry["data_cut"].drop_nulls().max()
    claimed = [s.factor for s in SHIPPED_STUDY.subgroups]
    table = survival.subgroup_comparisons(adtte.filter(pl.col("DCUTDT") == cut), adsl, SHIPPED_STUDY.subgroups)
    # The shipped reconstruction's smallest p of the claim is the smallest p survival_subgroups shows (prior surgery's OS, 0.077).
    claim = result.table.filter(pl.col("result") == "subgroups.none_significant").row(0, named=True)
    assert claim["shipped"] == pytest.approx(table.filter(pl.col("factor").is_in(claimed))["logrank_p"].min(), rel=1e-9)
    assert claim["verdict"] == summary.DEPENDS  # the primary-site allocation and the last contacts decide it
    # The blocking check counts the same comparisons.
    counts = survival_values.subgroup_recomputed_values(table, cut)
    assert dict(zip(counts["quantity"], counts["value"])) == {"subgroups.pfs.significant.n": 0, "subgroups.os.significant.n": 0}
    # printed_audit's inputs: each endpoint's times and every compared factor's record column, the reconstructed ones named.
    for endpoint, times in (("pfs", "pfs_months"), ("os", "os_months")):
        record_inputs = basis.QUANTITY_INPUTS[f"subgroups.{endpoint}.significant.n"]
        assert ("followup/", times) in record_inputs and ("patient_allocations.csv", "primary_site") in record_inputs
    pfs_reconstructed = basis.reconstructions_of("subgroups.pfs.significant.n", provenance)
    assert [r.split(" (")[0] for r in pfs_reconstructed] == ["patient_allocations.csv primary_site"]


# --- the cache of the result ---------------------------------------------------------------------------------


def test_the_cache_gives_back_what_was_stored_under_the_same_key_only(shipped, tmp_path):
    from dataclasses import replace

    from lms_assets.audit import sensitivity_cache as cache

    study, _, result = shipped
    provenance = inputs.read_study(SHIPPED_DATA)[3]
    code = cache.code_version()
    key = cache.cache_key(study, provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code)
    assert cache.load(tmp_path, key) == (None, f"miss: no cached result in {tmp_path / cache.CACHE_FILE}")
    cache.store(tmp_path, key, result)
    back, found = cache.load(tmp_path, key)
    assert found.startswith("hit") and back is not None
    assert back.table.equals(result.table) and back.placements.printed == result.placements.printed
    assert np.array_equal(back.placements.gaps, result.placements.gaps) and np.array_equal(back.placements.gap_hi, result.placements.gap_hi)
    assert (back.site_space, back.dose_space, back.sample_size, back.seed) == (result.site_space, result.dose_space, result.sample_size, result.seed)
    # Any input the computation reads, or its code, makes another key; the same inputs read afresh the same one.
    moved = study.pfs.copy()
    moved[0] += 0.1
    others = {
        cache.cache_key(replace(study, pfs=moved), provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code),
        cache.cache_key(replace(study, sex=study.sex[::-1].copy()), provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code),
        cache.cache_key(study, provenance.head(-1), sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code),
        cache.cache_key(study, provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED + 1, code),
        cache.cache_key(study, provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code + "changed"),
    }
    assert len(others) == 5 and key not in others
    again = sens.study_at_cut(*inputs.read_study(SHIPPED_DATA)[:3], study.registry["data_cut"].drop_nulls().max(), SHIPPED_STUDY)
    assert cache.cache_key(again, provenance, sens.DEFAULT_SAMPLE, sens.DEFAULT_SEED, code) == key
    assert cache.load(tmp_path, next(iter(others)))[0] is None
    (tmp_path / cache.CACHE_FILE).write_bytes(b"not a cache file")
    missed, why = cache.load(tmp_path, key)
    assert missed is None and "cannot be read" in why


def test_an_unchanged_study_is_read_from_the_cache_and_a_changed_one_enumerated_again(tmp_path, monkeypatch):
    from dagster import Output, build_asset_context

    from lms_assets.checks.printed_values import printed_values_table
    from lms_assets.defs.audit.sensitivity import sensitivity_ranges
    from lms_assets.defs.resources import StudyFolder, WarehouseIOManager
    from lms_assets.records import schemas, validation

    enumerations = []

    def counted(*args, **kwargs):
        enumerations.append(1)
        return recon.os_placements(*args, **kwargs)

    monkeypatch.setattr(sens, "os_placements", counted)
    warehouse = WarehouseIOManager(database=str(tmp_path / "lms.duckdb")).create_io_manager(None)
    registry = printed_values_table(
        *(
            validation.read_raw(SHIPPED_DATA / f"{name}.csv", schema)
            for name, schema in (("printed_values", schemas.REGISTRY), ("known_discrepancies", schemas.KNOWN_DISCREPANCIES))
        )
    )
    provenance = validation.read_raw(SHIPPED_DATA / "provenance.csv", schemas.PROVENANCE)
    adsl, adtte, _, _ = inputs.read_study(SHIPPED_DATA)

    def materialize(adsl: pl.DataFrame) -> Output:
        events = sensitivity_ranges(build_asset_context(), warehouse, StudyFolder(path=str(SHIPPED_DATA)), registry, provenance, adsl, adtte)
        return next(e for e in events if isinstance(e, Output))

    first = materialize(adsl)
    assert len(enumerations) == 1 and first.metadata["from_cache"].value is False
    assert (tmp_path / "sensitivity_ranges.cache.npz").exists()
    second = materialize(adsl)
    assert len(enumerations) == 1 and second.metadata["from_cache"].value is True
    assert second.metadata["cache"].value.startswith("hit") and second.value.equals(first.value)
    # One patient's sex recorded otherwise: the key changes, so the reconstructions are enumerated again.
    flipped = pl.when(pl.col("SEX") == "M").then(pl.lit("F")).otherwise(pl.lit("M"))
    changed = materialize(adsl.with_columns(SEX=pl.when(pl.col("SUBJID") == adsl["SUBJID"][0]).then(flipped).otherwise(pl.col("SEX"))))
    assert len(enumerations) == 2 and changed.metadata["from_cache"].value is False
    assert not changed.value.equals(first.value)
