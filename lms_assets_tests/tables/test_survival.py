"""Survival statistics: SPSS 24's median CI on hand-worked examples, the log(−log) row against lifelines,
landmarks, reverse-KM follow-up, subgroup tests on a constructed cohort, values and chart builders."""

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times

from lms_assets.adam.adsl import derive_adsl
from lms_assets.adam.adtte import derive_adtte
from lms_assets.graphs import forest, km
from lms_assets.records import schemas, validation
from lms_assets.tables import kaplan_meier, survival, survival_values
from lms_assets.tables.kaplan_meier import Z_95, km_table
from lms_assets.tables.survival import spss_median_ci
from lms_assets_tests.conftest import SHIPPED_STUDY

SHIPPED = Path(__file__).resolve().parents[2] / "data"
CUT = dt.date(2021, 3, 31)


def _spss(time, event):
    return spss_median_ci(km_table(time, event))


def _greenwood_se(surv: float, terms: list[tuple[int, int]]) -> float:
    """Greenwood by hand: S·sqrt(Σ d/(n(n−d))) over (n at risk, d events) of each step up to t."""
    return surv * math.sqrt(sum(d / (n * (n - d)) for n, d in terms))


def _shipped_adtte() -> pl.DataFrame:
    label = "followup/2021-03-31.csv"
    raw = validation.read_raw(SHIPPED / label, schemas.FOLLOWUP, label=label).with_columns(data_cut=pl.lit("2021-03-31"), content_hash=pl.lit("test"))
    clean = validation.clean(raw, schemas.FOLLOWUP, validation.problems(raw, schemas.FOLLOWUP), keep=("data_cut", "content_hash"))
    return derive_adtte(clean.with_columns(pl.col("data_cut").str.to_date()), studyid=SHIPPED_STUDY.studyid, provenance=_shipped_provenance())


def _shipped_provenance() -> pl.DataFrame:
    raw = validation.read_raw(SHIPPED / "provenance.csv", schemas.PROVENANCE)
    return validation.clean(raw, schemas.PROVENANCE, validation.problems(raw, schemas.PROVENANCE))


def _adtte(time, event, endpoint="OS", cut=CUT) -> pl.DataFrame:
    n = len(time)
    return pl.DataFrame(
        {
            "DCUTDT": [cut] * n,
            "PARAMCD": [endpoint] * n,
            "SUBJID": list(range(1, n + 1)),
            "AVAL": list(map(float, time)),
            "CNSR": [1 - e for e in event],
        }
    )


# --- SPSS 24 median and CI -------------------------------------------------------------------------


def test_spss_on_the_published_pfs_reproduces_the_paper():
    """Acceptance test of the method: the shipped PFS (no censoring, one tie at 1.0) gives 4.1 (2.96–5.24)."""
    pfs = _shipped_adtte().filter(pl.col("PARAMCD") == "PFS")
    assert pfs["CNSR"].sum() == 0
    estimate = _spss(pfs["AVAL"], 1 - pfs["CNSR"])
    assert estimate.median == 4.1
    assert (round(estimate.ci_lower, 2), round(estimate.ci_upper, 2)) == (2.96, 5.24)
    # By hand: S(4.1) = 9/19; u = 3.5 (S = 11/19), l = 4.3 (S = 8/19); no censoring, so Greenwood = binomial.
    se_surv = math.sqrt((9 / 19) * (10 / 19) / 19)
    assert estimate.se == pytest.approx(se_surv / ((3 / 19) / (4.3 - 3.5)), rel=1e-12)
    assert estimate.note is None


def test_spss_without_censoring_hand_worked():
    # S = 1 − k/10; median 5 (S = 0.5); u = 4 (S 0.6), l = 6 (S 0.4); f = 0.2 / 2.
    estimate = _spss(range(1, 11), [1] * 10)
    se = math.sqrt(0.5 * 0.5 / 10) / 0.1
    assert estimate.median == 5
    assert estimate.se == pytest.approx(se, rel=1e-12)
    assert (estimate.ci_lower, estimate.ci_upper) == pytest.approx((5 - Z_95 * se, 5 + Z_95 * se), rel=1e-12)


def test_spss_with_censoring_between_events():
    # Events at 1, 3, 4, 6, 7, 8; censored at 2 and 5.
    time, event = [1, 2, 3, 4, 5, 6, 7, 8], [1, 0, 1, 1, 0, 1, 1, 1]
    s4 = (7 / 8) * (5 / 6) * (4 / 5)
    s6 = s4 * (2 / 3)
    estimate = _spss(time, event)
    se = _greenwood_se(s6, [(8, 1), (6, 1), (5, 1), (3, 1)]) / ((s4 - s6) / (6 - 4))
    assert estimate.median == 6
    assert estimate.se == pytest.approx(se, rel=1e-12)
    assert estimate.ci_lower == pytest.approx(6 - Z_95 * se, rel=1e-12)


def test_spss_with_tied_deaths_and_a_censoring_tied_with_deaths():
    # Two deaths and a censoring at 2 (at risk 10: the censoring counts), two deaths at 5.
    time = [2, 2, 2, 4, 5, 5, 6, 7, 8, 9]
    event = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]
    steps = km_table(time, event)
    at_two = steps.filter(pl.col("time") == 2).row(0, named=True)
    assert (at_two["at_risk"], at_two["events"], at_two["censored"]) == (10, 2, 1)
    s4 = 0.8 * 6 / 7
    s5 = s4 * 4 / 6
    s6 = s5 * 3 / 4
    estimate = spss_median_ci(steps)
    # S(5) = 0.457 is not ≤ 0.45, so l is the next event time, 6.
    se = _greenwood_se(s5, [(10, 2), (7, 1), (6, 2)]) / ((s4 - s6) / (6 - 4))
    assert estimate.median == 5
    assert estimate.se == pytest.approx(se, rel=1e-12)


def test_spss_when_s_jumps_from_above_055_to_below_045_in_one_step():
    # Four deaths at 1 (S 0.6), two at 2 (S 0.4): u = 1 and l = 2 = the median.
    time = [1, 1, 1, 1, 2, 2, 3, 4, 5, 6]
    estimate = _spss(time, [1] * 10)
    se = _greenwood_se(0.4, [(10, 4), (6, 2)]) / ((0.6 - 0.4) / (2 - 1))
    assert estimate.median == 2
    assert estimate.se == pytest.approx(se, rel=1e-12)
    assert estimate.ci_upper == pytest.approx(2 + Z_95 * se, rel=1e-12)


def test_spss_median_not_reached_is_null_with_a_reason():
    estimate = _spss([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert (estimate.median, estimate.se, estimate.ci_lower, estimate.ci_upper) == (None, None, None, None)
    assert "not reached" in estimate.note


def test_spss_without_u_or_l_keeps_the_median_and_says_why():
    no_u = _spss([1, 1, 2, 3], [1, 1, 1, 1])  # the first step already drops S to 0.5
    assert no_u.median == 1 and no_u.se is None and no_u.ci_lower is None and "0.55" in no_u.note
    no_l = _spss([1, 2, 3, 3], [1, 1, 0, 0])  # S stops at 0.5
    assert no_l.median == 2 and no_l.se is None and "0.45" in no_l.note


def test_spss_tolerates_floating_point_error_in_s():
    # With 24 distinct deaths the product gives S(12) = 0.5000000000000001; with 40, S(18) = 0.5499999999999999.
    assert km_table(range(1, 25), [1] * 24).filter(pl.col("time") == 12)["surv"][0] != 0.5
    assert _spss(range(1, 25), [1] * 24).median == 12
    estimate = _spss(range(1, 41), [1] * 40)
    # u = 18 (S 0.55), l = 22 (S 0.45): f = 0.1 / 4.
    assert estimate.median == 20
    assert estimate.se == pytest.approx(math.sqrt(0.25 / 40) / (0.1 / 4), rel=1e-9)


# --- log(−log) band and Brookmeyer–Crowley ------------------------------------------------------------


def test_loglog_band_is_lifelines_default_and_matches_a_hand_computation():
    # Deaths at 1..5: at t = 2, S = 3/5 and Σ d/(n(n−d)) = 1/20 + 1/12.
    steps = kaplan_meier.with_loglog_band(km_table([1, 2, 3, 4, 5], [1] * 5))
    at_two = steps.filter(pl.col("time") == 2).row(0, named=True)
    exponent = math.exp(Z_95 * math.sqrt(1 / 20 + 1 / 12) / abs(math.log(0.6)))
    assert at_two["ci_lower"] == pytest.approx(0.6**exponent, rel=1e-12)
    assert at_two["ci_upper"] == pytest.approx(0.6 ** (1 / exponent), rel=1e-12)


def test_loglog_band_is_null_where_undefined_at_s_one_and_s_zero():
    """log(−log S) is undefined at S = 1 (a censoring before the first event) and S = 0 (the last death): R gives NA."""
    steps = kaplan_meier.with_loglog_band(km_table([1, 2, 3, 4], [0, 1, 1, 1]))
    assert steps["surv"].to_list()[0] == 1.0 and steps["surv"].to_list()[-1] == 0.0
    assert steps["ci_lower"].is_null().to_list() == [True, False, False, True]
    assert steps["ci_upper"].is_null().to_list() == [True, False, False, True]


def test_an_upper_band_that_ends_at_s_zero_does_not_give_a_bound():
    """The OS defect R found: lifelines' [0, 0] band at the last death read as the upper bound. It is not reached."""
    os_ = _shipped_adtte().filter(pl.col("PARAMCD") == "OS")
    steps = kaplan_meier.with_loglog_band(km_table(os_["AVAL"].to_list(), (1 - os_["CNSR"]).to_list()))
    assert steps["surv"][-1] == 0.0 and steps["ci_upper"].drop_nulls().min() > 0.5
    estimate = kaplan_meier.brookmeyer_crowley_median(steps)
    assert (estimate.median, estimate.ci_lower, estimate.ci_upper) == (23.5, 6.9, None)
    assert "upper bound not reached" in estimate.note


def test_plateau_median_under_both_conventions():
    """S = 0.5 exactly from t = 3 until the next death at 5: SPSS's first crossing is 3, R's and SAS's midpoint 4 (each value as R 4.2 gives)."""
    steps = km_table([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1])
    assert kaplan_meier.first_time_at_or_below(steps, "surv", 0.5) == 3
    assert kaplan_meier.plateau_midpoint_median(steps) == 4
    # A curve that ends on the plateau: the midpoint runs to the last observed time (R's quantile.survfit).
    assert kaplan_meier.plateau_midpoint_median(km_table([1, 2, 3, 7], [1, 1, 0, 0])) == pytest.approx((2 + 7) / 2)
    # S jumps past 0.5: the two rules agree.
    assert kaplan_meier.plateau_midpoint_median(km_table([1, 2, 3], [1, 1, 1])) == 2
    assert kaplan_meier.plateau_midpoint_median(km_table([1, 2], [1, 0])) == pytest.approx(1.5)
    assert kaplan_meier.plateau_midpoint_median(km_table([1, 2, 3], [0, 0, 1])) == 3
    assert kaplan_meier.plateau_midpoint_median(km_table([1, 2, 3], [1, 0, 0])) is None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_loglog_row_agrees_with_lifelines(seed):
    rng = np.random.default_rng(seed)
    n = 60
    time = np.round(rng.exponential(10, n), 1) + 0.1  # rounding makes ties of deaths and of deaths with censorings
    event = (rng.random(n) < 0.75).astype(int)
    steps = kaplan_meier.with_loglog_band(km_table(time.tolist(), event.tolist()))
    ours = kaplan_meier.brookmeyer_crowley_median(steps)
    kmf = KaplanMeierFitter().fit(time, event)
    # Where the transform is defined (0 < S < 1) the band is lifelines' band on the patient rows; elsewhere null.
    defined = ((steps["surv"] > 0) & (steps["surv"] < 1)).to_numpy()
    band = kmf.confidence_interval_.reindex(steps["time"].to_numpy())
    for column, position in (("ci_lower", 0), ("ci_upper", 1)):
        assert steps[column].is_null().to_numpy().tolist() == (~defined).tolist()
        assert np.allclose(steps[column].to_numpy()[defined], band.iloc[:, position].to_numpy()[defined], rtol=1e-12)
    # lifelines' crossings agree with ours, except a crossing at S = 0, where lifelines writes the band as [0, 0].
    inside = kmf.survival_function_.iloc[:, 0].between(0, 1, inclusive="neither")
    masked = kmf.confidence_interval_.where(inside, axis=0)
    bounds = [masked.index[(masked[c] <= 0.5).to_numpy()].min() for c in masked.columns]
    assert [ours.median, ours.ci_lower, ours.ci_upper] == [kmf.median_survival_time_, *(None if math.isnan(b) else b for b in bounds)]
    lifelines_bounds = median_survival_times(kmf.confidence_interval_).iloc[0].tolist()
    assert ours.ci_lower == lifelines_bounds[0]


def test_summary_has_the_two_methods_per_cut_and_endpoint_with_exact_columns():
    curves = survival.km_curves(_shipped_adtte())
    summary = survival.median_summary(curves)
    assert summary.columns == ["data_cut", "endpoint", "method", "n", "events", "median", "median_midpoint", "se", "ci_lower", "ci_upper", "note"]
    assert summary.height == 4
    os_spss = summary.filter((pl.col("endpoint") == "OS") & (pl.col("method") == "spss")).row(0, named=True)
    assert (os_spss["n"], os_spss["events"], os_spss["median"]) == (19, 12, 23.5)
    # The Results text's interval; Table 2 prints 14.2–32.7, which these data cannot give.
    assert (round(os_spss["ci_lower"], 1), round(os_spss["ci_upper"], 1)) == (12.3, 34.7)
    loglog = summary.filter(pl.col("method") == "brookmeyer_crowley_loglog").sort("endpoint")
    assert loglog["se"].is_null().all()
    # OS: the defined upper band never drops to 0.5, so the upper bound is not reached (R: NA).
    assert loglog.select("endpoint", "median", "ci_lower", "ci_upper").rows() == [("OS", 23.5, 6.9, None), ("PFS", 4.1, 1.9, 6.2)]
    assert summary["median_midpoint"].to_list() == summary["median"].to_list()


def test_summary_of_a_curve_that_never_reaches_half_is_null_not_a_crash():
    curves = survival.km_curves(_adtte([1, 2, 3, 4, 5, 6], [1, 0, 0, 0, 0, 0]))
    summary = survival.median_summary(curves)
    assert summary["median"].is_null().all()
    assert summary.filter(pl.col("method") == "spss")["note"][0].startswith("median not reached")
    assert "upper bound not reached" in summary.filter(pl.col("method") != "spss")["note"][0]


# --- curves, landmarks and follow-up -----------------------------------------------------------------


def test_curves_grow_with_distinct_times_not_patients():
    rng = np.random.default_rng(0)
    n = 50_000
    frame = pl.concat(
        [_adtte(np.round(rng.exponential(8, n), 0).tolist(), (rng.random(n) < 0.7).astype(int).tolist(), endpoint=e) for e in ("PFS", "OS")]
    )
    curves = survival.km_curves(frame)
    distinct = frame.group_by("PARAMCD").agg(pl.col("AVAL").n_unique())["AVAL"].sum()
    assert curves.height == distinct < 200
    assert curves.group_by("endpoint").agg(pl.col("at_risk").first())["at_risk"].to_list() == [n, n]


def test_landmarks_at_risk_rates_and_beyond_the_last_time():
    table = survival.landmarks(survival.km_curves(_shipped_adtte()))
    pfs = {r["month"]: r for r in table.filter(pl.col("endpoint") == "PFS").iter_rows(named=True)}
    assert list(pfs) == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    # PFS ≥ 3 months: 13 patients; ≥ 6: 6; ≥ 12: 2 (Table 3).
    assert [pfs[m]["at_risk"] for m in (0.0, 3.0, 6.0, 12.0)] == [19, 13, 6, 2]
    assert pfs[6.0]["surv"] == pytest.approx(6 / 19) and pfs[12.0]["surv"] == pytest.approx(2 / 19)
    assert pfs[6.0]["events_cum"] == 13 and pfs[6.0]["ci_lower"] < 6 / 19 < pfs[6.0]["ci_upper"]
    assert pfs[0.0]["surv"] == 1.0
    assert pfs[15.0]["at_risk"] == 0 and pfs[15.0]["surv"] is None and "beyond" in pfs[15.0]["note"]


def test_reverse_km_follow_up_on_the_shipped_os():
    followup = survival.reverse_km_followup(_shipped_adtte())
    os_ = followup.filter(pl.col("endpoint") == "OS").row(0, named=True)
    # By hand: alive (reverse events) at 3.9, 18.2, 19.6, 20.9, 22.4, 25.8, 26.0; S_rev(22.4) = 0.568, S_rev(25.8) = 0.426.
    assert (os_["median"], os_["min"], os_["max"], os_["n"], os_["censored"]) == (25.8, 3.9, 28.0, 19, 7)
    assert os_["patients"] == list(range(1, 20))
    pfs = followup.filter(pl.col("endpoint") == "PFS").row(0, named=True)
    assert pfs["median"] is None and "no patient censored" in pfs["note"]


# --- subgroups -----------------------------------------------------------------------------------------


def _constructed_cohort(n_per_arm: int = 80, seed: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Men die ~6 times as fast as women; ECOG is assigned alternately along sorted times, so it carries no signal."""
    rng = np.random.default_rng(seed)
    women = rng.exponential(12.0, n_per_arm)
    men = rng.exponential(2.0, n_per_arm)
    time = np.round(np.concatenate([women, men]), 1) + 0.1
    event = (rng.random(2 * n_per_arm) < 0.85).astype(int)
    sex = ["F"] * n_per_arm + ["M"] * n_per_arm
    ecog = np.empty(2 * n_per_arm, dtype=object)
    ecog[np.argsort(time, kind="stable")] = ["0-1", ">=2"] * n_per_arm
    adtte = _adtte(time.tolist(), event.tolist())
    adsl = pl.DataFrame({"SUBJID": list(range(1, 2 * n_per_arm + 1)), "SEX": sex, "ECOGGR1": ecog.tolist()})
    return adtte, adsl


def test_subgroups_find_a_known_strong_difference_and_agree_with_lifelines():
    adtte, adsl = _constructed_cohort()
    compared = (SHIPPED_STUDY.subgroups[0], SHIPPED_STUDY.subgroups[1])
    table = survival.subgroup_comparisons(adtte, adsl, compared)
    sex = table.filter(pl.col("factor") == "Sex").row(0, named=True)
    ecog = table.filter(pl.col("factor") == "ECOG").row(0, named=True)
    assert (sex["level"], sex["reference"], sex["n"], sex["n_ref"]) == ("Male", "Female", 80, 80)
    assert sex["logrank_p"] < 1e-6
    assert sex["hr"] > 3 and sex["hr_ci_lower"] > 1 and sex["median"] < sex["median_ref"]
    assert ecog["logrank_p"] > 0.5 and ecog["hr_ci_lower"] < 1 < ecog["hr_ci_upper"]
    # The weighted aggregation changes nothing: lifelines on the patient rows gives the same p and HR.
    rows = adtte.join(adsl, on="SUBJID").with_columns(event=1 - pl.col("CNSR"), x=(pl.col("SEX") == "M").cast(pl.Int64))
    men, women = rows.filter(pl.col("x") == 1), rows.filter(pl.col("x") == 0)
    direct = logrank_test(men["AVAL"].to_numpy(), women["AVAL"].to_numpy(), men["event"].to_numpy(), women["event"].to_numpy())
    assert sex["logrank_p"] == pytest.approx(direct.p_value, rel=1e-9)
    cox = CoxPHFitter().fit(rows.select("AVAL", "event", "x").to_pandas(), duration_col="AVAL", event_col="event")
    assert sex["hr"] == pytest.approx(float(cox.summary.loc["x", "exp(coef)"]), rel=1e-6)


def test_subgroups_say_why_when_a_level_is_empty_or_has_no_event():
    adtte = _adtte([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 0, 0])
    adsl = pl.DataFrame({"SUBJID": [1, 2, 3, 4, 5, 6], "SEX": ["F", "F", "F", "M", "M", "M"], "ECOGGR1": ["0-1"] * 6})
    table = survival.subgroup_comparisons(adtte, adsl, SHIPPED_STUDY.subgroups[:2])
    sex = table.filter(pl.col("factor") == "Sex").row(0, named=True)
    assert sex["hr"] is None and "no event" in sex["note"] and sex["logrank_p"] is not None
    ecog = table.filter(pl.col("factor") == "ECOG").row(0, named=True)
    assert ecog["logrank_p"] is None and ecog["n"] == 0 and "not computable" in ecog["note"]


def test_subgroups_flag_a_monotone_likelihood_instead_of_an_hr_of_1e17():
    """Men die at 1 and 2 while women are at risk; women's deaths come after the last man: β → +∞, no HR (R: NA)."""
    adtte = _adtte([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0])
    adsl = pl.DataFrame({"SUBJID": [1, 2, 3, 4, 5, 6], "SEX": ["M", "M", "M", "F", "F", "F"], "ECOGGR1": ["0-1", ">=2"] * 3})
    table = survival.subgroup_comparisons(adtte.with_columns(AVAL=pl.Series([1.0, 2.0, 2.5, 3.0, 4.0, 5.0])), adsl, SHIPPED_STUDY.subgroups[:2])
    sex = table.filter(pl.col("factor") == "Sex").row(0, named=True)
    assert sex["events"] == 2 and sex["events_ref"] == 2
    assert sex["hr"] is None and "monotone likelihood" in sex["note"] and sex["logrank_p"] is not None
    assert table.filter(pl.col("factor") == "ECOG")["hr"].item() is not None


def test_subgroup_p_values_are_bit_identical_whatever_the_row_order():
    """Issue #15: logrank_p differed in its last bits between runs; the rows are now summed in one order."""
    adtte, adsl = _constructed_cohort(40)
    first = survival.subgroup_comparisons(adtte, adsl, SHIPPED_STUDY.subgroups[:2])
    for seed in range(5):
        shuffled = survival.subgroup_comparisons(
            adtte.sample(fraction=1.0, shuffle=True, seed=seed), adsl.sample(fraction=1.0, shuffle=True, seed=seed), SHIPPED_STUDY.subgroups[:2]
        )
        assert shuffled.equals(first)
        assert shuffled["logrank_p"].to_list() == first["logrank_p"].to_list()


def _shipped_adsl(provenance: pl.DataFrame | None = None) -> pl.DataFrame:
    """ADSL of the shipped records, with the shipped provenance.csv unless ``provenance`` is given."""
    patients = validation.read_raw(SHIPPED / "patients.csv", schemas.PATIENTS)
    allocations = validation.read_raw(SHIPPED / "patient_allocations.csv", schemas.PATIENT_ALLOCATIONS)
    return derive_adsl(
        validation.clean(patients, schemas.PATIENTS, validation.problems(patients, schemas.PATIENTS)),
        validation.clean(allocations, schemas.PATIENT_ALLOCATIONS, validation.problems(allocations, schemas.PATIENT_ALLOCATIONS)),
        studyid=SHIPPED_STUDY.studyid,
        provenance=_shipped_provenance() if provenance is None else provenance,
    )


def test_subgroups_on_the_shipped_cohort_show_no_significant_difference():
    """The Discussion's claim holds on these data: no log-rank p below 0.05."""
    adsl = _shipped_adsl()
    table = survival.subgroup_comparisons(_shipped_adtte(), adsl)
    assert table.height == 2 * len(SHIPPED_STUDY.subgroups)  # each factor, for PFS and OS
    assert table["logrank_p"].min() > 0.05
    surgery_os = table.filter((pl.col("factor") == "Prior surgery") & (pl.col("endpoint") == "OS")).row(0, named=True)
    assert (surgery_os["n"], surgery_os["n_ref"], surgery_os["events"], surgery_os["events_ref"]) == (14, 5, 8, 4)


# --- values ---------------------------------------------------------------------------------------------


def test_values_come_from_the_spss_rows_of_the_published_cut():
    later = _shipped_adtte().with_columns(DCUTDT=pl.lit(dt.date(2022, 3, 31)), AVAL=pl.col("AVAL") + 1)
    adtte = pl.concat([_shipped_adtte(), later])
    summary = survival.median_summary(survival.km_curves(adtte))
    values = {r["quantity"]: r["value"] for r in survival_values.recomputed_values(summary, CUT).iter_rows(named=True)}
    assert values["pfs.median"] == 4.1 and values["os.median"] == 23.5
    assert (values["pfs.events"], values["os.events"]) == (19, 12)
    assert round(values["pfs.ci_lower"], 2) == 2.96 and round(values["os.ci_upper"], 1) == 34.7
    latest = {r["quantity"]: r["value"] for r in survival_values.recomputed_values(summary, None).iter_rows(named=True)}
    assert latest["pfs.median"] == pytest.approx(5.1)
    assert survival_values.recomputed_values(summary, dt.date(2020, 1, 1)).is_empty()


def test_followup_values_are_the_reverse_km_median_and_range_of_os():
    values = survival_values.followup_recomputed_values(survival.reverse_km_followup(_shipped_adtte()), CUT)
    assert dict(zip(values["quantity"], values["value"])) == {"followup.median": 25.8, "followup.min": 3.9, "followup.max": 28.0}
    assert values["patients"][0].to_list() == list(range(1, 20))


# --- charts ----------------------------------------------------------------------------------------------


def test_thinned_curve_is_bounded_and_keeps_the_end_of_the_curve():
    rng = np.random.default_rng(1)
    n = 20_000
    curve = survival.km_curves(_adtte(rng.exponential(10, n).tolist(), [1] * n)).with_columns(series=pl.lit("a"))
    thin = km.thin_curve(curve)
    assert thin.height <= km.MAX_POINTS < curve.height
    assert thin["time"].max() == curve["time"].max() and thin["surv"][-1] == curve["surv"][-1]
    assert thin["censored"].sum() == curve["censored"].sum()


def test_km_chart_overlays_the_published_cut_and_aligns_the_risk_table_with_the_ticks():
    later = _shipped_adtte().with_columns(DCUTDT=pl.lit(dt.date(2022, 3, 31)))
    adtte = pl.concat([_shipped_adtte(), later])
    curves = survival.km_curves(adtte)
    chart = km.endpoint_chart(curves, survival.landmarks(curves), survival.median_summary(curves), "PFS", CUT)
    spec = chart.to_dict()
    assert "4.1" in spec["title"]["text"] and "2.96–5.24" in spec["title"]["text"]
    assert any("(published)" in line for line in spec["title"]["subtitle"]) and any("(latest)" in line for line in spec["title"]["subtitle"])
    curve_x = spec["vconcat"][0]["layer"][0]["encoding"]["x"]
    table_x = spec["vconcat"][1]["encoding"]["x"]
    assert curve_x["scale"]["domain"] == table_x["scale"]["domain"] == [0, 15.0]
    table_months = {row["month"] for row in spec["datasets"][spec["vconcat"][1]["data"]["name"]]}
    assert table_months == set(curve_x["axis"]["values"])


def test_forest_plot_builds_with_a_missing_hazard_ratio():
    adtte, adsl = _constructed_cohort(20)
    table = survival.subgroup_comparisons(adtte, adsl, SHIPPED_STUDY.subgroups[:2])
    table = table.with_columns(hr=pl.when(pl.col("factor") == "ECOG").then(None).otherwise(pl.col("hr")))
    summary = survival.median_summary(survival.km_curves(adtte))
    spec = forest.forest_chart(table, summary).to_dict()
    texts = [row.get("text") for rows in spec["datasets"].values() for row in rows if "text" in row]
    assert any(t.startswith("HR not estimated") for t in texts)
    # Each endpoint's block opens with the overall row: every patient (20 per arm), their events and the SPSS median.
    assert any(row.get("row") == forest.OVERALL and row["counts"].endswith("/40") for rows in spec["datasets"].values() for row in rows)


def test_captions_say_not_reached_and_name_the_plateau_midpoint():
    row = {"median": 23.5, "median_midpoint": 23.5, "ci_lower": 6.9, "ci_upper": None, "note": "upper bound not reached"}
    assert km.median_caption(row) == "median 23.5 months (95% CI 6.90–not reached)"
    plateau = {"median": 6.9, "median_midpoint": 8.8, "ci_lower": 2.0, "ci_upper": 12.0, "note": None}
    assert km.median_caption(plateau) == "median 6.9 months; R/SAS plateau midpoint 8.8 (95% CI 2.00–12.00)"
    assert km.interval_text(None, None, 1) == "not reached–not reached"


def test_adtte_flags_every_time_resting_on_a_reconstructed_last_contact():
    adtte = _shipped_adtte()
    flagged = adtte.filter(pl.col("AVALRFL") == "Y")
    # provenance.csv: the seven living patients' OS times are reconstructed; every PFS time and death is printed.
    assert sorted(flagged["SUBJID"].to_list()) == [1, 2, 5, 6, 8, 10, 16]
    assert set(flagged["PARAMCD"]) == {"OS"} and set(flagged["CNSR"]) == {1}
    assert adtte.filter(pl.col("AVALRFL").is_null()).height == adtte.height - 7
    # A later cut the study team records is data, not reconstruction: provenance names only the published file.
    later = _shipped_adtte_as("followup/2022-03-31.csv")
    assert later["AVALRFL"].null_count() == later.height


def _shipped_adtte_as(label: str) -> pl.DataFrame:
    raw = validation.read_raw(SHIPPED / "followup/2021-03-31.csv", schemas.FOLLOWUP, label=label).with_columns(
        data_cut=pl.lit("2022-03-31"), content_hash=pl.lit("test")
    )
    clean = validation.clean(raw, schemas.FOLLOWUP, validation.problems(raw, schemas.FOLLOWUP), keep=("data_cut", "content_hash"))
    return derive_adtte(clean.with_columns(pl.col("data_cut").str.to_date()), studyid=SHIPPED_STUDY.studyid, provenance=_shipped_provenance())


def test_adsl_names_each_patients_reconstructed_variables():
    adsl = _shipped_adsl()
    assert set(adsl["RECONVAR"]) == {"PRIMSITE DOSE0 DOSREDFL DISCAEFL"}
    transcribed = _shipped_provenance().filter(pl.col("file") != "patient_allocations.csv")
    without = _shipped_adsl(provenance=transcribed)
    assert without["RECONVAR"].null_count() == 19
