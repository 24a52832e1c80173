"""Deliberate faults, one at a time: each must make at least one blocking printed-value check fail with ERROR.

Most faults are judged in-process through the exact function the Dagster checks yield (``printed_checks.section_results``:
one check per printed section, every value judged by ``printed_values.judge`` and listed in the check's ``values`` table) on tables recomputed by the same pure derivations the assets call, from the shipped
study folder: a second per fault instead of a Dagster run. Two faults go through real Dagster check results.
Faults no printed value reveals but the independent R program does (``R_REVEALED``) must fail the blocking
``agrees_with_r`` check of ``r_verification``, judged by the function that asset yields. Faults neither
can reveal are listed in ``UNREVEALED`` with the reason, and a test asserts that they change a table yet no
printed-value check notices, so the gap stays visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lifelines.statistics
import polars as pl
import pytest

from lms_assets import adam
from lms_assets.audit import consistency
from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES, printed_values_table
from lms_assets.defs.audit import consistency as audit_defs
from lms_assets.defs.markdown import plain_text
from lms_assets.defs.printed_checks import section_results, value_verdicts
from lms_assets.records import schemas, validation
from lms_assets.tables import baseline, response, survival, toxicity
from lms_assets_tests.conftest import SHIPPED_DATA, SHIPPED_STUDY, run_assets
from lms_assets_tests.records.test_validation import failure_first_lines


@pytest.fixture(autouse=True)
def no_cox_fits(monkeypatch):
    """No printed value rests on the Cox fits, which are two thirds of each evaluation's time: they are left out here."""
    monkeypatch.setattr(survival, "_cox_hazard_ratio", lambda weighted, events: (None, None, None, None, "not fitted in this test"))


def _read(name: str, schema: schemas.FileSchema, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    raw = validation.read_raw(SHIPPED_DATA / name, schema, label=name)
    return validation.clean(raw, schema, validation.problems(raw, schema), keep=keep)


@pytest.fixture(scope="module")
def records() -> dict[str, pl.DataFrame]:
    """The shipped study's typed records, the typed registry and provenance, as the ingest assets give them."""
    cut_file = "followup/2021-03-31.csv"
    followup = _read(cut_file, schemas.FOLLOWUP).with_columns(
        pl.lit("2021-03-31").str.to_date().alias("data_cut"), pl.lit("shipped").alias("content_hash")
    )
    known = validation.read_raw(SHIPPED_DATA / "known_discrepancies.csv", schemas.KNOWN_DISCREPANCIES)
    registry = validation.read_raw(SHIPPED_DATA / "printed_values.csv", schemas.REGISTRY)
    return {
        "patients": _read("patients.csv", schemas.PATIENTS),
        "allocations": _read("patient_allocations.csv", schemas.PATIENT_ALLOCATIONS),
        "response": _read("response.csv", schemas.RESPONSE),
        "adverse_events": _read("adverse_events.csv", schemas.ADVERSE_EVENTS),
        "followup": followup,
        "printed_values": printed_values_table(registry, known),
        "provenance": _read("provenance.csv", schemas.PROVENANCE),
    }


def summary_tables(records: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Cohort and summaries by the derivations the assets call (looked up at call time, so a monkeypatch applies)."""
    studyid = SHIPPED_STUDY.studyid
    adsl = adam.adsl.derive_adsl(records["patients"], records["allocations"], studyid=studyid, provenance=records["provenance"])
    adrs = adam.adrs.derive_adrs(records["response"], studyid=studyid)
    adtr = adam.adtr.derive_adtr(records["response"], studyid=studyid)
    adtte = adam.adtte.derive_adtte(records["followup"], studyid=studyid, provenance=records["provenance"])
    adae = adam.adae.derive_adae(records["adverse_events"], studyid=studyid)
    curves = survival.km_curves(adtte)
    return {
        "adsl": adsl,
        "adtte": adtte,
        "survival_curves": curves,
        "survival_landmarks": survival.landmarks(curves),
        "baseline_summary": baseline.baseline_summary(adsl),
        "response_summary": response.response_summary(adrs),
        "tumour_shrinkage": response.tumour_shrinkage(adsl, adrs, adtr, adtte),
        "ae_summary": toxicity.ae_summary(adae, adsl),
        "survival_summary": survival.median_summary(curves),
        "survival_followup": survival.reverse_km_followup(adtte),
        "survival_subgroups": survival.subgroup_comparisons(adtte, adsl),
    }


@dataclass(frozen=True)
class Outcome:
    """One printed value inside its section's check: the check, the check's outcome, the value's verdict and reason."""

    check: str  # owner:check_name
    check_outcome: str  # passed, WARN or ERROR: what the gate acts on
    verdict: str  # the value's own verdict in the check's values table
    reason: str


def check_outcomes(records: dict[str, pl.DataFrame]) -> dict[str, Outcome]:
    """Every printed value's outcome by value id, read from the section checks computed as the Dagster checks compute them."""
    tables = summary_tables(records)
    published = records["printed_values"]
    cut = published["published_cut"].max()
    feasibility = audit_defs._feasibility(tables["adtte"], cut, SHIPPED_STUDY)
    paper = consistency.paper_consistency(published, records["provenance"], tables["adsl"].height, feasibility)
    outcomes = {}
    for owner in PRINTED_VALUE_SOURCES:
        for value_id, row in value_verdicts(section_results(owner, tables[owner], published, paper, trace_url=str)).items():
            outcomes[value_id] = Outcome(f"{owner}:{row['check']}", row["check_outcome"], row["verdict"], row["reason"])
    return outcomes


def errors(outcomes: dict[str, Outcome]) -> set[str]:
    """The values that failed at ERROR inside a section check that therefore failed at ERROR (and blocks)."""
    return {value for value, o in outcomes.items() if o.verdict == "ERROR" and o.check_outcome == "ERROR"}


# --- the faults ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[pytest.MonkeyPatch, dict[str, pl.DataFrame]], None]
    caught_by: frozenset[str]  # values that must fail with ERROR inside their blocking section check (others may too)


def _wrap(monkeypatch: pytest.MonkeyPatch, module, name: str, wrapper) -> None:
    original = getattr(module, name)
    monkeypatch.setattr(module, name, wrapper(original))


def orr_counts_stable_disease(mp, records):
    mp.setitem(response.RATES, "orr", ("Objective response rate, ORR", ("CR", "PR", "SD")))


def dcr_forgets_stable_disease(mp, records):
    mp.setitem(response.RATES, "dcr", ("Disease control rate, DCR", ("CR", "PR")))


def pct_over_wrong_denominator(mp, records):
    # The n cells stay right; only the % shown divides by 21 (the Results' printed denominator) instead of 19.
    _wrap(
        mp,
        response,
        "response_summary",
        lambda original: lambda adrs: original(adrs).with_columns(pct=100.0 * pl.col("n") / (pl.col("denominator") + 2)),
    )


def at_risk_one_too_many(mp, records):
    # One phantom patient, censored after everyone, in every curve: every at-risk count is one too high.
    def wrapper(original):
        def faulty(frame, by=()):
            keys = list(by)
            last = frame.group_by(keys).agg(pl.col("time").max() + 1.0) if keys else frame.select(pl.col("time").max() + 1.0)
            phantom = last.with_columns(event=pl.lit(0, dtype=frame.schema["event"]))
            if "count" in frame.columns:
                phantom = phantom.with_columns(count=pl.lit(1, dtype=frame.schema["count"]))
            return original(pl.concat([frame, phantom], how="diagonal_relaxed"), by)

        return faulty

    _wrap(mp, survival, "km_steps", wrapper)


def greenwood_without_n_minus_d(mp, records):
    # Greenwood's sum with d / n² instead of d / (n (n − d)): a plausible slip that narrows every SE.
    def wrapper(original):
        def faulty(frame, by=()):
            steps = original(frame, by)
            keys = list(by)
            term = (pl.col("events") / pl.col("at_risk") ** 2).cum_sum()
            return steps.with_columns(std_err=pl.col("surv") * (term.over(keys) if keys else term).sqrt())

        return faulty

    _wrap(mp, survival, "km_steps", wrapper)


def spss_band_widened(mp, records):
    mp.setattr(survival, "SPSS_UPPER", 0.6)
    mp.setattr(survival, "SPSS_LOWER", 0.4)


def first_episode_not_worst_grade(mp, records):
    # ADAE's worst-grade flags (AOCCPIFL, AOCCIFL) ordered by episode, the grade left out: the first episode is
    # flagged, and the three milder earlier episodes hide grade 3/4 ones.
    def wrapper(original):
        def faulty(adae, new_var, by, order, descending):
            kept = [(key, desc) for key, desc in zip(order, descending) if key != "ATOXGR"]
            return original(adae, new_var, by, [key for key, _ in kept], [desc for _, desc in kept])

        return faulty

    _wrap(mp, adam.adae, "extreme_flag", wrapper)


def age_median_is_the_mean(mp, records):
    def wrapper(original):
        def faulty(adsl):
            rows = original(adsl)
            return rows.with_columns(value=pl.when(pl.col("key") == "age.median").then(pl.lit(float(adsl["AGE"].mean()))).otherwise(pl.col("value")))

        return faulty

    _wrap(mp, baseline, "age_rows", wrapper)


def followup_median_not_reversed(mp, records):
    # Follow-up as the plain median of the observed times, not the reverse Kaplan–Meier median.
    def wrapper(original):
        def faulty(adtte):
            table = original(adtte)
            medians = adtte.group_by(pl.col("DCUTDT").alias("data_cut"), pl.col("PARAMCD").alias("endpoint")).agg(
                pl.col("AVAL").median().alias("plain_median")
            )
            return table.join(medians, on=["data_cut", "endpoint"]).with_columns(median=pl.col("plain_median")).drop("plain_median")

        return faulty

    _wrap(mp, survival, "reverse_km_followup", wrapper)


def logrank_one_sided(mp, records):
    # A one-sided p reported as the two-sided one: prior surgery's OS p of 0.077 becomes 0.039, "significant".
    def wrapper(original):
        def faulty(*args, **kwargs):
            result = original(*args, **kwargs)
            result.p_value = result.p_value / 2
            return result

        return faulty

    _wrap(mp, lifelines.statistics, "multivariate_logrank_test", wrapper)


def ae_percent_of_records_not_patients(mp, records):
    # Table 4's % over the number of adverse-event records instead of the 19 patients (the n cells stay right).
    def wrapper(original):
        def faulty(adae, adsl):
            table = original(adae, adsl)
            return table.with_columns((100.0 * pl.col(f"{cell}_n") / adae.height).alias(f"{cell}_pct") for cell in ("total", *toxicity.GRADE_GROUPS))

        return faulty

    _wrap(mp, toxicity, "ae_summary", wrapper)


def os_censoring_flag_inverted(mp, records):
    # ADTTE's CNSR for OS taken as the event flag: deaths become censorings and the living become deaths.
    _wrap(
        mp,
        adam.adtte,
        "derive_adtte",
        lambda original: (
            lambda followup, **ids: original(followup, **ids).with_columns(
                CNSR=pl.when(pl.col("PARAMCD") == "OS").then(1 - pl.col("CNSR")).otherwise(pl.col("CNSR"))
            )
        ),
    )


def transcription_error_in_patients(mp, records):
    # The oldest patient's 72 typed as 56: a plausible digit slip that every range check of the schema accepts.
    patients = records["patients"]
    mp.setitem(
        records, "patients", patients.with_columns(age=pl.when(pl.col("patient_id") == _oldest_patient(patients)).then(56).otherwise(pl.col("age")))
    )


def _oldest_patient(patients: pl.DataFrame) -> int:
    return patients.sort("age", descending=True)["patient_id"][0]


FAULTS = [
    Fault("ORR counts SD as a response", orr_counts_stable_disease, frozenset({"T2.orr.n", "T2.orr.pct", "ABS.orr.pct", "EFF.orr.pct"})),
    Fault("DCR leaves out SD", dcr_forgets_stable_disease, frozenset({"T2.dcr.n", "T2.dcr.pct", "ABS.dcr.pct"})),
    Fault(
        "Table 2 % over the wrong denominator (n right)",
        pct_over_wrong_denominator,
        frozenset({"T2.response.PR.pct", "T2.response.SD.pct", "T2.orr.pct"}),
    ),
    Fault("KM at-risk count one too high", at_risk_one_too_many, frozenset({"T2.pfs.ci_lower"})),
    Fault("Greenwood SE with d/n²", greenwood_without_n_minus_d, frozenset({"T2.pfs.ci_lower", "T2.pfs.ci_upper"})),
    Fault("SPSS density band 0.6/0.4 instead of 0.55/0.45", spss_band_widened, frozenset({"T2.pfs.ci_lower"})),
    Fault(
        "AE at the first episode, not the worst grade",
        first_episode_not_worst_grade,
        frozenset({"SAF.ae.any_g34.n", "T4.ae.hand_foot_skin_syndrome.g34.n", "T4.ae.hypertension.g34.n"}),
    ),
    Fault("age median computed as the mean", age_median_is_the_mean, frozenset({"T1.age.median", "RPC.age.median"})),
    Fault("follow-up median not by reverse KM", followup_median_not_reversed, frozenset({"EFF.followup.median"})),
    Fault("log-rank p one-sided", logrank_one_sided, frozenset({"DIS.subgroups.os.significant.n"})),
    Fault("Table 4 % over AE records, not patients", ae_percent_of_records_not_patients, frozenset({"T4.ae.fatigue.any.pct"})),
    Fault("OS censoring flag inverted", os_censoring_flag_inverted, frozenset({"EFF.os.events"})),
    Fault("transcription error in patients.csv (oldest age 72 → 56)", transcription_error_in_patients, frozenset({"T1.age.max", "RPC.age.max"})),
]


def test_the_shipped_study_fails_no_error_check(records):
    outcomes = check_outcomes(records)
    assert not errors(outcomes)
    assert {value for value, o in outcomes.items() if o.verdict == "WARN"}
    # A WARN value leaves its section check at WARN only when nothing else in the section failed at ERROR.
    assert {o.check_outcome for o in outcomes.values() if o.verdict == "WARN"} == {"WARN"}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_fault_fails_a_blocking_check_with_error(fault, records, monkeypatch):
    records = dict(records)
    fault.inject(monkeypatch, records)
    outcomes = check_outcomes(records)
    caught = errors(outcomes)
    assert caught, f"no blocking check caught: {fault.name}"
    assert fault.caught_by <= caught, f"{fault.name}: caught by {sorted(caught)}"
    print(f"{fault.name}: caught by " + ", ".join(f"{f} in {outcomes[f].check}" for f in sorted(caught)))


# --- faults the printed values cannot reveal ------------------------------------------------------------------


def clopper_pearson_as_wald(mp, records):
    def wald(k, n):
        p = k / n
        half = 1.959963984540054 * (p * (1 - p) / n) ** 0.5
        return 100 * (p - half), 100 * (p + half)

    mp.setattr(response, "clopper_pearson", wald)


def brookmeyer_crowley_bands_swapped(mp, records):
    _wrap(
        mp,
        survival,
        "brookmeyer_crowley_median",
        lambda original: lambda steps: original(steps.rename({"ci_lower": "ci_upper", "ci_upper": "ci_lower"})),
    )


def fisher_one_sided(mp, records):
    from scipy import stats

    _wrap(mp, stats, "fisher_exact", lambda original: lambda table, alternative="two-sided": original(table, alternative="greater"))


@dataclass(frozen=True)
class Unrevealed:
    name: str
    inject: Callable[[pytest.MonkeyPatch, dict[str, pl.DataFrame]], None]
    changes: str  # the table the fault visibly changes
    reason: str  # why no printed value can reveal it, and what tests it instead


# The paper prints no CI for ORR or DCR and no Brookmeyer–Crowley bound (its intervals are SPSS's), so no
# printed-value check can see these two; R's binom.test and survfit(conf.type = "log-log") do.
R_REVEALED = [
    Fault("Clopper–Pearson replaced by the Wald interval", clopper_pearson_as_wald, frozenset({"agrees_with_r"})),
    Fault("Brookmeyer–Crowley bounds read from the wrong band", brookmeyer_crowley_bands_swapped, frozenset({"agrees_with_r"})),
]

UNREVEALED = [
    Unrevealed(
        "Fisher's exact test one-sided",
        fisher_one_sided,
        "tumour_shrinkage",
        "with 2/7 vs 1/12 PR, 2/7 vs 1/12 ORR and the DCR counts, even the one-sided p stays above 0.05, so the printed "
        "'no significant benefit' still holds; the p-values themselves are not printed, and R's fisher.test is compared "
        "on the PR-rate p only, which this fault leaves to the same side of every printed claim",
    ),
]


def r_agreement(records: dict[str, pl.DataFrame]):
    """The agrees_with_r result r_verification yields, on tables recomputed from ``records``."""
    from lms_assets.audit import verification
    from lms_assets.defs.audit.verification import agreement_result, verify
    from lms_assets_tests.audit.test_verification import rscript_or_fail

    tables = summary_tables(records)
    return agreement_result(verify({name: tables[name] for name in verification.TABLES}, SHIPPED_DATA, rscript_or_fail()))


def test_the_shipped_study_agrees_with_r(records, monkeypatch):
    monkeypatch.undo()  # with the Cox fits: R fits them too
    result = r_agreement(records)
    assert result.passed, result.description


@pytest.mark.parametrize("fault", R_REVEALED, ids=[f.name for f in R_REVEALED])
def test_faults_only_r_reveals_fail_the_blocking_r_check(fault, records, monkeypatch):
    monkeypatch.undo()
    records = dict(records)
    fault.inject(monkeypatch, records)
    result = r_agreement(records)
    assert not result.passed and result.severity.value == "ERROR", f"{fault.name}: {result.description}"
    print(f"{fault.name}: caught by agrees_with_r ({result.description})")


@pytest.fixture(scope="module")
def shipped_tables(records) -> dict[str, pl.DataFrame]:
    return summary_tables(records)


@pytest.mark.parametrize("fault", UNREVEALED, ids=[f.name for f in UNREVEALED])
def test_faults_the_printed_values_cannot_reveal_are_documented(fault, records, shipped_tables, monkeypatch):
    """These change a table, yet no printed-value check can notice: the paper prints nothing they affect.

    Should a new registry row ever reveal one, this test fails: move the fault to ``FAULTS``.
    """
    before = shipped_tables[fault.changes]
    records = dict(records)
    fault.inject(monkeypatch, records)
    assert not summary_tables(records)[fault.changes].equals(before), f"{fault.name} changed nothing"
    assert not errors(check_outcomes(records)), f"{fault.name} is now caught: move it to FAULTS ({fault.reason})"


# --- two faults through real Dagster check results ---------------------------------------------------------


def _error_values(result) -> dict[str, tuple[str, str]]:
    """Value id → (its section check, reason) for every value failing at ERROR inside a check that failed at ERROR."""
    return {
        value: (row["check"], row["reason"])
        for value, row in value_verdicts(result.get_asset_check_evaluations()).items()
        if row["verdict"] == "ERROR" and row["check_outcome"] == "ERROR"
    }


def test_orr_fault_fails_the_dagster_checks_of_response_summary(platform_env, monkeypatch):
    orr_counts_stable_disease(monkeypatch, {})
    result = run_assets("response_summary", paths=platform_env)
    caught = _error_values(result)
    assert {"T2.orr.n", "T2.orr.pct", "ABS.orr.pct"} <= set(caught), sorted(caught)
    check, reason = caught["T2.orr.n"]
    assert check == "printed_table_2"
    assert reason.startswith("regression or unreviewed discrepancy: Table 2 prints '3' (3) but the table shows 14")
    table_2 = next(e for e in result.get_asset_check_evaluations() if e.check_name == "printed_table_2")
    # The check's description says in one sentence which values failed and why the first one did.
    assert plain_text(table_2.description).startswith(
        "2 of 10 printed values differ from the paper; 2 unreviewed (ERROR): T2.orr.n, T2.orr.pct. First, T2.orr.n: regression"
    )
    # The checks run in response_summary's own step, which therefore fails instead of storing the table.
    assert not result.success
    assert list(failure_first_lines(result)) == ["response_summary"]
    assert "response_summary" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_transcription_error_in_patients_csv_fails_the_dagster_checks(platform_env):
    path = platform_env["data"] / "patients.csv"
    patients = pl.read_csv(path)
    patients.with_columns(age=pl.when(pl.col("age") == pl.col("age").max()).then(56).otherwise(pl.col("age"))).write_csv(path)
    result = run_assets("baseline_summary", paths=platform_env)
    caught = _error_values(result)
    assert {"T1.age.max", "RPC.age.max"} <= set(caught), sorted(caught)
    assert (caught["T1.age.max"][0], caught["RPC.age.max"][0]) == ("printed_table_1", "printed_results_patient_characteristics")


def test_without_the_reviewed_list_every_failure_is_an_error(records):
    """A study folder without known_discrepancies.csv (a synthetic or a new study): nothing fails as WARN."""
    empty = validation.read_raw(SHIPPED_DATA / "known_discrepancies.csv", schemas.KNOWN_DISCREPANCIES).clear()
    registry = validation.read_raw(SHIPPED_DATA / "printed_values.csv", schemas.REGISTRY)
    outcomes = check_outcomes({**records, "printed_values": printed_values_table(registry, empty)})
    reviewed = pl.read_csv(SHIPPED_DATA / "known_discrepancies.csv")["value_id"]
    assert {value for value, o in outcomes.items() if o.verdict != "passed"} == errors(outcomes) == set(reviewed)


# --- faults in the sensitivity ranges: the blocking checks of sensitivity_ranges ---------------------------------


class _Staging:
    """The warehouse as the gate sees it when a blocking check fails: it only stages the candidate."""

    def __init__(self):
        self.staged: dict[str, pl.DataFrame] = {}

    def stage(self, table: str, frame: pl.DataFrame) -> str:
        self.staged[table] = frame
        return f"staging.{table}"


def sensitivity_checks(records: dict[str, pl.DataFrame]) -> tuple[dict[str, object], bool]:
    """The sensitivity_ranges asset run in-process on ``records``: its check results by name, and whether it published."""
    from dagster import AssetCheckResult, Failure, Output, build_asset_context

    from lms_assets.defs.audit.sensitivity import sensitivity_ranges
    from lms_assets.defs.resources import StudyFolder

    tables = summary_tables(records)
    results, published = {}, False
    events = sensitivity_ranges(
        build_asset_context(),
        _Staging(),
        StudyFolder(path=str(SHIPPED_DATA)),
        records["printed_values"],
        records["provenance"],
        tables["adsl"],
        tables["adtte"],
    )
    try:
        for event in events:
            if isinstance(event, AssetCheckResult):
                results[event.check_name] = event
            published |= isinstance(event, Output)
    except Failure:
        pass
    return results, published


def thirty_day_month(mp, records):
    # The escaped fault: a 30-day month moved the follow-up window's end from 38.93 to 39.50 months.
    from lms_assets.audit import sensitivity

    _wrap(mp, sensitivity, "os_window", lambda original: lambda cut, study, days_per_month=30.0: original(cut, study, 30.0))


def followup_median_bound_past_its_gap(mp, records):
    # The reverse-KM median's latest time taken half a month past what its gap allows.
    from lms_assets.audit import sensitivity

    def wrapper(original):
        def faulty(p, gaps, lower, upper):
            bounds = original(p, gaps, lower, upper)
            return sensitivity.FollowUp(bounds.median_lo, bounds.median_hi + 0.5, bounds.min_lo, bounds.min_hi, bounds.max_lo, bounds.max_hi)

        return faulty

    _wrap(mp, sensitivity, "followup_bounds", wrapper)


def shipped_rate_in_percent(mp, records):
    # The shipped reconstruction's landmark rates reported in percent beside ranges in shares.
    from lms_assets.audit import sensitivity

    def wrapper(original):
        def faulty(result, label, rests_on, coverage, outcome, *args, **kwargs):
            if result.endswith(".rate"):
                outcome = sensitivity.Outcome(outcome.lo, outcome.hi, 100 * outcome.shipped)
            return original(result, label, rests_on, coverage, outcome, *args, **kwargs)

        return faulty

    _wrap(mp, sensitivity, "summarise", wrapper)


def spss_se_as_variance(mp, records):
    # The SPSS SE squared (a variance where its root belongs): no printed CI is reachable, only the median is left
    # to match, and the labelled placements grow from 302,400 to 114 million (22.8 GB once, before the bound).
    def wrapper(original):
        def faulty(steps, by):
            table = original(steps, by)
            return table.with_columns(se=pl.col("se") ** 2).with_columns(
                ci_lower=pl.col("median") - survival.Z_95 * pl.col("se"), ci_upper=pl.col("median") + survival.Z_95 * pl.col("se")
            )

        return faulty

    _wrap(mp, survival, "spss_medians", wrapper)


SENSITIVITY_FAULTS = [
    Fault("30-day month in the follow-up window", thirty_day_month, frozenset({"window_from_study_dates"})),
    Fault("reverse-KM median bound past its gap", followup_median_bound_past_its_gap, frozenset({"range_ends_recomputed"})),
    Fault("shipped landmark rates in percent", shipped_rate_in_percent, frozenset({"ranges_hold_shipped_value"})),
    Fault("SPSS SE squared: the placements explode", spss_se_as_variance, frozenset({"reconstructions_enumerable"})),
]


def test_the_shipped_study_passes_every_sensitivity_check(records):
    results, published = sensitivity_checks(records)
    assert published and results and all(r.passed for r in results.values()), {n: r.description for n, r in results.items()}


@pytest.mark.parametrize("fault", SENSITIVITY_FAULTS, ids=[f.name for f in SENSITIVITY_FAULTS])
def test_each_sensitivity_fault_fails_a_blocking_check_with_error(fault, records, monkeypatch):
    records = dict(records)
    fault.inject(monkeypatch, records)
    results, published = sensitivity_checks(records)
    caught = {name for name, r in results.items() if not r.passed and r.severity.value == "ERROR"}
    assert fault.caught_by <= caught, f"{fault.name}: caught by {sorted(caught)}"
    assert not published
    print(f"{fault.name}: caught by " + "; ".join(f"{name}: {results[name].description}" for name in sorted(caught)))


def test_the_escaped_thirty_day_month_names_the_moved_bound(records, monkeypatch):
    thirty_day_month(monkeypatch, records)
    results, _ = sensitivity_checks(dict(records))
    assert (
        "latest OS time 39.50 months, but 2018-01-01 to the cut 2021-03-31 is 38.97 calendar months" in results["window_from_study_dates"].description
    )


def test_an_exploding_enumeration_is_refused_before_allocating(records, monkeypatch):
    spss_se_as_variance(monkeypatch, records)
    results, _ = sensitivity_checks(dict(records))
    description = results["reconstructions_enumerable"].description
    assert description.startswith("1 problem(s): labelled OS placements (22,619 gap multisets reproducing the printed median × 5,040 orders")
    assert "113,999,760 rows of 7" in description


@pytest.mark.slow
def test_thirty_day_month_keeps_the_published_sensitivity_ranges(platform_env, monkeypatch):
    import duckdb

    assert run_assets("sensitivity_ranges", paths=platform_env).success

    def stored(schema: str) -> pl.DataFrame:
        with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
            return con.sql(f"select * from {schema}.sensitivity_ranges order by result, value_id").pl()

    published = stored("main")
    thirty_day_month(monkeypatch, {})
    result = run_assets("sensitivity_ranges", paths=platform_env)
    assert list(failure_first_lines(result)) == ["sensitivity_ranges"]
    assert failure_first_lines(result)["sensitivity_ranges"].startswith("sensitivity_ranges not published: window_from_study_dates: ")
    assert stored("main").equals(published)
    moved = stored("staging").filter(pl.col("result") == "followup.median")["maximum"]
    assert (moved.round(2) == 39.5).all() and (published.filter(pl.col("result") == "followup.median")["maximum"].round(2) == 38.93).all()


# --- faults in the median history and the landmark rates: their blocking lifelines checks -----------------------


def history_and_landmark_checks(records: dict[str, pl.DataFrame]) -> dict[str, object]:
    """Both assets' blocking check results by name, by the functions their steps yield, on tables recomputed from ``records``."""
    from lms_assets.defs.tables.survival import history_check, landmarks_check

    tables = summary_tables(records)
    history = survival.median_history(tables["survival_summary"])
    return {r.check_name: r for r in (landmarks_check(tables["survival_landmarks"], tables["adtte"]), history_check(history, tables["adtte"]))}


def history_methods_swapped(mp, records):
    # The history's rows sorted before the method is attached: each SPSS median carries Brookmeyer–Crowley's interval.
    _wrap(
        mp,
        survival,
        "median_history",
        lambda original: lambda summary: original(summary).with_columns(pl.col("method").reverse().over("data_cut", "endpoint")),
    )


def history_events_from_pfs(mp, records):
    # The OS rows' event count taken from the PFS rows of the same cut.
    def wrapper(original):
        def faulty(summary):
            table = original(summary)
            pfs = table.filter(pl.col("endpoint") == "PFS").select("data_cut", "method", pfs_events="events")
            return table.join(pfs, on=["data_cut", "method"]).with_columns(events=pl.col("pfs_events")).drop("pfs_events")

        return faulty

    _wrap(mp, survival, "median_history", wrapper)


def landmark_rate_one_step_late(mp, records):
    # S(t) read from the step after the landmark (a forward instead of a backward as-of join).
    _wrap(
        mp,
        survival,
        "landmarks",
        lambda original: (
            lambda curves, every=3.0: original(curves, every).with_columns(
                pl.col("surv").shift(-1).over("data_cut", "endpoint").fill_null(pl.col("surv"))
            )
        ),
    )


def landmark_at_risk_after_the_month(mp, records):
    # Patients at risk counted after the landmark (AVAL > t) instead of at it (AVAL ≥ t).
    def wrapper(original):
        def faulty(curves, every=3.0):
            return original(curves.with_columns(time=pl.col("time") - 1e-6), every)

        return faulty

    _wrap(mp, survival, "landmarks", wrapper)


HISTORY_FAULTS = [
    Fault("median history: methods swapped", history_methods_swapped, frozenset({"median_history_matches_lifelines"})),
    Fault("median history: OS events from PFS", history_events_from_pfs, frozenset({"median_history_matches_lifelines"})),
    Fault("landmark S(t) one step late", landmark_rate_one_step_late, frozenset({"landmark_rates_match_lifelines"})),
    Fault("landmark at risk after the month", landmark_at_risk_after_the_month, frozenset({"landmark_rates_match_lifelines"})),
]


def test_the_shipped_history_and_landmarks_pass_their_checks(records):
    results = history_and_landmark_checks(records)
    assert set(results) == {"median_history_matches_lifelines", "landmark_rates_match_lifelines"}
    assert all(r.passed for r in results.values()), {n: r.description for n, r in results.items()}


@pytest.mark.parametrize("fault", HISTORY_FAULTS, ids=[f.name for f in HISTORY_FAULTS])
def test_each_history_or_landmark_fault_fails_a_blocking_check_with_error(fault, records, monkeypatch):
    records = dict(records)
    fault.inject(monkeypatch, records)
    results = history_and_landmark_checks(records)
    caught = {name for name, r in results.items() if not r.passed and r.severity.value == "ERROR"}
    assert fault.caught_by <= caught, f"{fault.name}: caught by {sorted(caught)}"
    print(f"{fault.name}: " + "; ".join(f"{name}: {results[name].description}" for name in sorted(caught)))


@pytest.mark.slow
def test_a_landmark_fault_keeps_the_published_landmarks_and_history(platform_env, monkeypatch):
    import duckdb

    assert run_assets("survival_landmarks", "median_history", paths=platform_env).success

    def stored(schema: str, table: str) -> pl.DataFrame:
        with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
            return con.sql(f"select * from {schema}.{table}").pl()

    published = {name: stored("main", name) for name in ("survival_landmarks", "median_history")}
    landmark_at_risk_after_the_month(monkeypatch, {})
    history_events_from_pfs(monkeypatch, {})
    result = run_assets("survival_landmarks", "median_history", paths=platform_env)
    first_lines = failure_first_lines(result)
    assert first_lines["survival_landmarks"].startswith("survival_landmarks not published: landmark_rates_match_lifelines: 1 problem(s): ")
    assert first_lines["median_history"].startswith("median_history not published: median_history_matches_lifelines: 2 problem(s): ")
    for name, table in published.items():
        assert stored("main", name).equals(table), name
    assert not stored("staging", "survival_landmarks").equals(published["survival_landmarks"])


# --- faults in the analysis results dataset: the blocking check printed_values_in_results -----------------------


def results_of(records: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The ARD the pure builder makes from ``records``, and the summary tables it was made from."""
    from lms_assets.results import ard

    tables = summary_tables(records)
    studyid = SHIPPED_STUDY.studyid
    datasets = {
        "adtte": tables["adtte"],
        "adrs": adam.adrs.derive_adrs(records["response"], studyid=studyid),
        "adtr": adam.adtr.derive_adtr(records["response"], studyid=studyid),
        "adae": adam.adae.derive_adae(records["adverse_events"], studyid=studyid),
        "raw_patients": records["patients"],
        "raw_allocations": records["allocations"],
    }
    return ard.analysis_results(tables, PRINTED_VALUE_SOURCES, datasets, records["provenance"]), tables


def results_check(records: dict[str, pl.DataFrame]):
    """printed_values_in_results as analysis_results yields it, on the ARD the pure builder makes from ``records``."""
    from lms_assets.defs.results import printed_values_check

    candidate, tables = results_of(records)
    return printed_values_check(candidate, records["printed_values"], tables)


def percent_as_proportion(mp, records):
    # cards' convention slipped in: every percentage stored as a proportion (15.8 → 0.158).
    from lms_assets.results import ard

    def wrapper(original):
        def faulty(values, *args, **kwargs):
            pct = pl.col("quantity").str.ends_with(".pct")
            return original(values.with_columns(value=pl.when(pct).then(pl.col("value") / 100).otherwise(pl.col("value"))), *args, **kwargs)

        return faulty

    _wrap(mp, ard, "_rows", wrapper)


def table_4_left_out(mp, records):
    # A summary table missing from the map the ARD reads: none of its printed values has a row.
    from lms_assets.results import ard

    _wrap(
        mp,
        ard,
        "analysis_results",
        lambda original: lambda tables, sources, *args: original(tables, {k: v for k, v in sources.items() if k != "ae_summary"}, *args),
    )


def grade_groups_not_told_apart(mp, records):
    # The quantity's grade not parsed into group1_level: any grade, 1/2, 3/4 and 5 of a term name one statistic.
    from lms_assets.results import ard

    def wrapper(original):
        def faulty(quantity):
            fields = original(quantity)
            return fields | {"group1_level": None} if fields["group1"] == "ATOXGRGP" else fields

        return faulty

    _wrap(mp, ard, "cards_fields", wrapper)


RESULTS_FAULTS = [
    Fault("ARD percentages as proportions", percent_as_proportion, frozenset({"ABS.response.PR.pct", "T2.orr.pct"})),
    Fault("Table 4 left out of the ARD", table_4_left_out, frozenset({"ABS.ae.hand_foot_skin_syndrome.g34.pct", "SAF.ae.any_g34.n"})),
    Fault("ARD grade groups not told apart", grade_groups_not_told_apart, frozenset({"ABS.ae.hypertension.g34.pct"})),
]


def test_the_shipped_study_passes_the_results_check(records):
    result = results_check(records)
    assert result.passed, result.description


@pytest.mark.parametrize("fault", RESULTS_FAULTS, ids=[f.name for f in RESULTS_FAULTS])
def test_each_results_fault_fails_the_blocking_results_check(fault, records, monkeypatch):
    records = dict(records)
    fault.inject(monkeypatch, records)
    result = results_check(records)
    assert not result.passed and result.severity.value == "ERROR"
    named = {problem.split(" ")[0] for problem in result.metadata["problems"].value}
    assert fault.caught_by <= named, f"{fault.name}: {sorted(named)}"
    print(f"{fault.name}: caught by printed_values_in_results ({plain_text(result.description)[:200]})")


# --- faults in what changed between cuts: the blocking check changes_add_up of cut_changes -------------------------

LATER_CUT = "2022-03-31"


def with_a_later_cut(records: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The shipped records and a cut a year later: patients 1 and 2 died six months after their last contact, every
    other living patient was followed twelve months longer."""
    shipped = records["followup"]
    alive, dying = pl.col("died") == 0, pl.col("patient_id").is_in([1, 2])
    later = shipped.with_columns(
        pl.when(dying)
        .then(pl.col("os_months") + 6)
        .when(alive)
        .then(pl.col("os_months") + 12)
        .otherwise(pl.col("os_months"))
        .round(1)
        .alias("os_months"),
        pl.when(dying).then(1).otherwise(pl.col("died")).alias("died"),
        pl.lit(LATER_CUT).str.to_date().alias("data_cut"),
        pl.lit(f"followup/{LATER_CUT}.csv").alias(validation.FILE),
    )
    return {**records, "followup": pl.concat([shipped, later])}


def changes_check(records: dict[str, pl.DataFrame]):
    """changes_add_up as cut_changes yields it, on the changes the pure functions find in ``records``."""
    from lms_assets.defs.results import changes_check as check
    from lms_assets.results import changes

    candidate, tables = results_of(records)
    return check(changes.cut_changes(candidate, tables["adtte"], records["printed_values"]), candidate, records["printed_values"])


def censoring_read_as_the_event(mp, records):
    # cut_changes reads CNSR as the event flag: the two new deaths look like patients who came back to life.
    from lms_assets.results import changes

    _wrap(mp, changes, "patient_changes", lambda original: lambda adtte: original(adtte.with_columns(CNSR=1 - pl.col("CNSR"))))


def earlier_and_later_swapped(mp, records):
    # The statistics' pairing reversed: every move shown backwards (the OS median "falls" from 25.7 to 23.5).
    from lms_assets.results import changes

    def wrapper(original):
        def faulty(ard):
            table = original(ard)
            return table.with_columns(earlier_value=pl.col("later_value"), later_value=pl.col("earlier_value"))

        return faulty

    _wrap(mp, changes, "statistic_changes", wrapper)


def test_a_later_cut_passes_the_changes_check(records):
    result = changes_check(with_a_later_cut(records))
    assert result.passed and result.metadata["new events listed"].value == 2, result.description


def test_censoring_read_as_the_event_fails_the_blocking_changes_check(records, monkeypatch):
    censoring_read_as_the_event(monkeypatch, records)
    result = changes_check(with_a_later_cut(records))
    assert not result.passed and result.severity.value == "ERROR"
    assert plain_text(result.description) == (
        "OS 2021-03-31 → 2022-03-31: 0 patient(s) listed with a new event, but the Kaplan–Meier event count rose by 2 (12 → 14)"
    )


def test_earlier_and_later_swapped_fails_the_blocking_changes_check(records, monkeypatch):
    earlier_and_later_swapped(monkeypatch, records)
    result = changes_check(with_a_later_cut(records))
    assert not result.passed and result.severity.value == "ERROR"
    problems = result.metadata["problems"].value
    assert any(p.startswith("survival_summary: PARAMCD = OS, AVAL, Median (Kaplan–Meier; SPSS") and "shown 25.7 → 23.5" in p for p in problems), (
        problems
    )
