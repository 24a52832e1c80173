"""The study's survival tables: Kaplan–Meier curves, median survival with SPSS 24's and Brookmeyer–Crowley's
intervals, landmarks, reverse-KM follow-up, subgroup comparisons (log-rank, Cox) and the median history; the printed
values they yield are read in ``survival_values``.

Pure functions on Polars frames; no Dagster imports. The estimator is ``kaplan_meier``'s and the subgroups are
``subgroups``'; lifelines (log-rank, Cox) is fitted on the aggregated (time, status, count) rows, whose number
grows with the number of distinct times.

Two conventions for the median where S(t) equals 0.5 exactly over a stretch, both reported by name:
``median`` is the first time with S(t) ≤ 0.5 (SPSS's rule, and lifelines'; the paper's values), and
``median_midpoint`` the midpoint of that plateau (R's ``quantile.survfit`` and SAS PROC LIFETEST).
Every printed value here is reproduced independently by R (``lms_assets/audit/survival_check.R``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import polars as pl

from lms_assets.records.study import SHIPPED_STUDY_DIR, load_study
from lms_assets.tables.cox import COX_FIT_OPTIONS, monotone_likelihood
from lms_assets.tables.kaplan_meier import (
    TOLERANCE,
    Z_95,
    MedianEstimate,
    brookmeyer_crowley_median,
    first_time_at_or_below,
    km_steps,
    plateau_midpoint_median,
    with_loglog_band,
)
from lms_assets.tables.subgroups import SUBGROUP_SCHEMA, Subgroup, subgroup_codes

SPSS_UPPER, SPSS_LOWER = 0.55, 0.45
GROUP = ("data_cut", "endpoint")
SIGNIFICANCE = 0.05
# lifelines' Cox fit takes ~0.1 s at 20,000 rows and ~20 s at 1,000,000 (one binary covariate).
COX_MAX_ROWS = 20_000


def spss_median_ci(steps: pl.DataFrame) -> MedianEstimate:
    """SPSS 24 median: first event time with S ≤ 0.5; SE by Collett's density f = (S(u)−S(l))/(l−u); CI = median ± 1.96·SE.

    ``steps`` is one sample's ``km_steps``; see ``spss_medians`` for the rule and the notes.
    """
    estimates = spss_medians(steps.with_columns(pl.lit(0).alias("_sample")), by=["_sample"])
    if estimates.is_empty():
        return MedianEstimate(None, None, None, None, "median not reached: no events")
    row = estimates.row(0, named=True)
    return MedianEstimate(row["median"], row["se"], row["ci_lower"], row["ci_upper"], row["note"])


def _time_to_event(adtte: pl.DataFrame) -> pl.DataFrame:
    """ADTTE as (data_cut, endpoint, SUBJID, time, event): event = 1 − CNSR."""
    return adtte.select(
        pl.col("DCUTDT").alias("data_cut"),
        pl.col("PARAMCD").alias("endpoint"),
        "SUBJID",
        pl.col("AVAL").cast(pl.Float64).alias("time"),
        (1 - pl.col("CNSR")).cast(pl.Int64).alias("event"),
    )


def km_curves(adtte: pl.DataFrame) -> pl.DataFrame:
    """Kaplan–Meier curve of every data cut and endpoint: ``km_steps`` plus the log(−log) band, one row per distinct time."""
    return with_loglog_band(km_steps(_time_to_event(adtte), by=GROUP))


SUMMARY_SCHEMA = {
    "data_cut": pl.Date,
    "endpoint": pl.String,
    "method": pl.String,
    "n": pl.Int64,
    "events": pl.Int64,
    "median": pl.Float64,
    "median_midpoint": pl.Float64,
    "se": pl.Float64,
    "ci_lower": pl.Float64,
    "ci_upper": pl.Float64,
    "note": pl.String,
}


def median_summary(curves: pl.DataFrame) -> pl.DataFrame:
    """Median survival per cut and endpoint, twice: SPSS 24 (median ± 1.96·SE) and Brookmeyer–Crowley on the log(−log) band.

    ``median`` is the first crossing of 0.5 (SPSS, the paper's values); ``median_midpoint`` beside it is
    R's and SAS's median, which differs only where S(t) = 0.5 exactly over a stretch.
    """
    rows = []
    for (cut, endpoint), curve in curves.group_by(list(GROUP), maintain_order=True):
        n, events = curve["at_risk"][0], curve["events"].sum()
        midpoint = plateau_midpoint_median(curve)
        for method, estimate in (("spss", spss_median_ci(curve)), ("brookmeyer_crowley_loglog", brookmeyer_crowley_median(curve))):
            rows.append(
                {"data_cut": cut, "endpoint": endpoint, "method": method, "n": n, "events": events, "median_midpoint": midpoint, **asdict(estimate)}
            )
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA).sort("data_cut", "endpoint", "method")


def landmarks(curves: pl.DataFrame, every: float = 3.0) -> pl.DataFrame:
    """Number at risk (AVAL ≥ t), cumulative events and censorings, and event-free rate S(t) with its log(−log) 95% CI at t = 0, 3, 6, … months.

    The grid of each cut and endpoint runs to the first multiple of ``every`` at or after its last time.
    S(t) is null beyond the last observed time, where the Kaplan–Meier estimate is undefined. Before the
    first observed time S = 1 with the band [1, 1], as R's ``summary.survfit`` gives; later the band is
    that of ``with_loglog_band`` (null where S = 1 or 0).
    """
    grid = (
        curves.group_by(list(GROUP))
        .agg(last_time=pl.col("time").max())
        .with_columns(month=pl.int_ranges(0, (pl.col("last_time") / every).ceil().cast(pl.Int64) + 1) * every)
        .explode("month")
        .with_columns(pl.col("month").cast(pl.Float64))
        .sort("month")
    )
    cumulative = curves.with_columns(
        events_cum=pl.col("events").cum_sum().over(list(GROUP)),
        censored_cum=pl.col("censored").cum_sum().over(list(GROUP)),
    ).sort("time")
    ahead = cumulative.select(*GROUP, "time", next_at_risk="at_risk")
    behind = cumulative.select(*GROUP, "time", "events_cum", "censored_cum", "surv", "ci_lower", "ci_upper")
    joined = grid.join_asof(ahead, left_on="month", right_on="time", by=list(GROUP), strategy="forward", check_sortedness=False).drop("time")
    joined = joined.join_asof(behind, left_on="month", right_on="time", by=list(GROUP), strategy="backward", check_sortedness=False).drop("time")
    before_first = pl.col("surv").is_null()
    beyond_last = pl.col("month") > pl.col("last_time")

    def estimate(column: str) -> pl.Expr:
        return pl.when(beyond_last).then(None).when(before_first).then(1.0).otherwise(pl.col(column))

    return joined.select(
        *GROUP,
        "month",
        at_risk=pl.col("next_at_risk").fill_null(0),
        events_cum=pl.col("events_cum").fill_null(0),
        censored_cum=pl.col("censored_cum").fill_null(0),
        surv=estimate("surv"),
        ci_lower=estimate("ci_lower"),
        ci_upper=estimate("ci_upper"),
        note=pl.when(beyond_last).then(pl.lit("beyond the last observed time: S(t) not estimable")),
    ).sort(*GROUP, "month")


def reverse_km_followup(adtte: pl.DataFrame) -> pl.DataFrame:
    """Follow-up per cut and endpoint: median by reverse Kaplan–Meier (censoring is the event, the event censors); range = shortest and longest observed time.

    Observed time = AVAL, time from the first dose to the event or last contact, of every patient
    (events included). The median (first crossing; ``median_midpoint``: R's and SAS's plateau midpoint)
    carries the Brookmeyer–Crowley log(−log) 95% CI of the reverse curve. With no censored patient the
    reverse curve never drops, so the median is null with a note.
    """
    reverse = _time_to_event(adtte).with_columns(event=1 - pl.col("event"))
    curves = with_loglog_band(km_steps(reverse, by=GROUP))
    per_group = reverse.group_by(list(GROUP)).agg(
        n=pl.len().cast(pl.Int64),
        censored=pl.col("event").sum().cast(pl.Int64),
        min=pl.col("time").min(),
        max=pl.col("time").max(),
        patients=pl.col("SUBJID").cast(pl.Int64).sort(),
    )
    medians = []
    for (cut, endpoint), curve in curves.group_by(list(GROUP), maintain_order=True):
        estimate = brookmeyer_crowley_median(curve)
        if curve["events"].sum() == 0:
            estimate = MedianEstimate(None, None, None, None, "no patient censored: the reverse Kaplan–Meier curve never drops")
        medians.append(
            {
                "data_cut": cut,
                "endpoint": endpoint,
                "median": estimate.median,
                "median_midpoint": plateau_midpoint_median(curve),
                "ci_lower": estimate.ci_lower,
                "ci_upper": estimate.ci_upper,
                "note": estimate.note,
            }
        )
    median_frame = pl.DataFrame(
        medians,
        schema={
            "data_cut": pl.Date,
            "endpoint": pl.String,
            "median": pl.Float64,
            "median_midpoint": pl.Float64,
            "ci_lower": pl.Float64,
            "ci_upper": pl.Float64,
            "note": pl.String,
        },
    )
    return (
        per_group.join(median_frame, on=list(GROUP), how="left")
        .select(*GROUP, "n", "censored", "median", "median_midpoint", "ci_lower", "ci_upper", "min", "max", "note", "patients")
        .sort(*GROUP)
    )


def _cox_hazard_ratio(weighted: pl.DataFrame, events: dict[int, int]) -> tuple[float | None, float | None, float | None, float | None, str | None]:
    """Cox (lifelines, Efron ties) HR of ``x`` = 1 vs 0 with Wald 95% CI and p; None with a reason when not estimable.

    ``weighted`` has one row per (time, event, x) with its ``count``, sorted; lifelines is fitted on the
    patient rows it stands for, because lifelines' Efron handling of weighted ties differs from that of the rows.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    if min(events.values()) == 0:
        return None, None, None, None, "HR not estimable: a level has no event"
    if monotone_likelihood(weighted):
        return (
            None,
            None,
            None,
            None,
            "HR not estimable: wherever both levels are at risk the events fall in one level (monotone likelihood, β infinite)",
        )
    patients = int(weighted["count"].sum())
    if patients > COX_MAX_ROWS:
        return (
            None,
            None,
            None,
            None,
            f"Cox not fitted: {patients:,} patients exceed {COX_MAX_ROWS:,} (lifelines' fit is too slow); log-rank p is exact",
        )
    rows = weighted.select(pl.col("time", "event", "x").repeat_by("count").explode())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = CoxPHFitter().fit(rows.to_pandas(), duration_col="time", event_col="event", fit_options=COX_FIT_OPTIONS)
    except ConvergenceError as error:
        return None, None, None, None, f"Cox did not converge: {str(error).splitlines()[0]}"
    row = fit.summary.loc["x"]
    hr, lower, upper, p = (float(row[c]) for c in ("exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%", "p"))
    if not all(np.isfinite((hr, lower, upper, p))):
        return None, None, None, None, "Cox fit gave a non-finite estimate"
    return hr, lower, upper, p, None


def _compare(weighted: pl.DataFrame, subgroup: Subgroup) -> dict:
    """One forest row from (time, event, x, count) rows: n, events and KM median per level, log-rank p and Cox HR of level vs reference.

    The rows are sorted first: they come from a group-by in no fixed order, and lifelines' floating-point
    sums follow the row order, so an unsorted input changes the p-values' last bits from run to run.
    """
    from lifelines.statistics import multivariate_logrank_test

    notes = []
    left_out = weighted.filter(pl.col("x").is_null())["count"].sum()
    if left_out:
        notes.append(f"{left_out} patient(s) with {subgroup.column} not {subgroup.reference} or {subgroup.level} left out")
    weighted = weighted.filter(pl.col("x").is_not_null()).sort("time", "event", "x", "count")
    per_level = weighted.group_by("x").agg(n=pl.col("count").sum(), events=(pl.col("event") * pl.col("count")).sum())
    n = dict.fromkeys((0, 1), 0) | dict(zip(per_level["x"], per_level["n"]))
    events = dict.fromkeys((0, 1), 0) | dict(zip(per_level["x"], per_level["events"]))
    steps = km_steps(weighted, by=["x"])
    levels = {x: steps.filter(pl.col("x") == x) for x in (0, 1)}
    medians = {x: first_time_at_or_below(level, "surv", 0.5) for x, level in levels.items()}
    midpoints = {x: plateau_midpoint_median(level) for x, level in levels.items()}
    logrank_p = None
    if min(n.values()) == 0 or sum(events.values()) == 0:
        notes.append("log-rank not computable: a level is empty or no event occurred")
    else:
        test = multivariate_logrank_test(
            weighted["time"].to_numpy(), weighted["x"].to_numpy(), weighted["event"].to_numpy(), weights=weighted["count"].to_numpy()
        )
        logrank_p = float(test.p_value)
    hr, hr_lower, hr_upper, cox_p, cox_note = _cox_hazard_ratio(weighted, events)
    if cox_note:
        notes.append(cox_note)
    return {
        "factor": subgroup.factor,
        "level": subgroup.level_label,
        "reference": subgroup.reference_label,
        "n": n[1],
        "events": events[1],
        "median": medians[1],
        "median_midpoint": midpoints[1],
        "n_ref": n[0],
        "events_ref": events[0],
        "median_ref": medians[0],
        "median_ref_midpoint": midpoints[0],
        "hr": hr,
        "hr_ci_lower": hr_lower,
        "hr_ci_upper": hr_upper,
        "cox_p": cox_p,
        "logrank_p": logrank_p,
        "note": "; ".join(notes) or None,
    }


def subgroup_comparisons(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: Sequence[Subgroup] | None = None) -> pl.DataFrame:
    """Log-rank test (lifelines) and Cox HR with 95% CI (lifelines) of each two-level subgroup, per cut and endpoint:
    ``subgroups``, a study's declared ones (``Study.subgroups``), or without them the shipped study's (data/study.toml).

    The patient rows are aggregated once to (cut, endpoint, time, event, subgroup code) counts; every
    test runs on those counts, so the cost past that aggregation grows with distinct times, not patients.
    """
    if subgroups is None:
        subgroups = load_study(SHIPPED_STUDY_DIR).subgroups
    compact = (
        _time_to_event(adtte)
        .lazy()
        .join(subgroup_codes(adsl, subgroups).lazy(), on="SUBJID", how="left")
        .group_by(*GROUP, "time", "event", "code")
        .agg(count=pl.len().cast(pl.Int64))
        .collect()
    )
    rows = []
    for order, subgroup in enumerate(subgroups):
        digit = (pl.col("code") // 3**order) % 3
        x = pl.when(digit < 2).then(digit).cast(pl.Int64).alias("x")
        weighted = compact.group_by(*GROUP, "time", "event", x).agg(pl.col("count").sum())
        for (cut, endpoint), table in weighted.group_by(list(GROUP)):
            rows.append({"data_cut": cut, "endpoint": endpoint, "_order": order, **_compare(table, subgroup)})
    return pl.DataFrame(rows, schema={**SUBGROUP_SCHEMA, "_order": pl.Int64}).sort("data_cut", "endpoint", "_order").drop("_order")


def spss_medians(steps: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """SPSS 24 median: first event time with S ≤ 0.5; SE by Collett's density f = (S(u)−S(l))/(l−u); CI = median ± 1.96·SE.

    For every group of ``km_steps`` at once (thousands of small samples in the audit's search).
    SE = SE_Greenwood(S(median)) / f, where u is the last event time with S ≥ 0.55 and l the first event
    time with S ≤ 0.45; only event times are candidates (tied deaths are one step). Comparisons allow
    ``TOLERANCE`` for floating-point error in S. Returns ``by``, median, se, ci_lower, ci_upper and a
    ``note`` saying why a value is null; groups without any event are absent.
    """
    events = steps.filter(pl.col("events") > 0)
    at_median = pl.col("surv") <= 0.5 + TOLERANCE
    upper = pl.col("surv") >= SPSS_UPPER - TOLERANCE
    lower = pl.col("surv") <= SPSS_LOWER + TOLERANCE
    per_group = events.group_by(*by).agg(
        median=pl.col("time").filter(at_median).first(),
        se_surv=pl.col("std_err").filter(at_median).first(),
        lowest=pl.col("surv").min(),
        u_time=pl.col("time").filter(upper).last(),
        u_surv=pl.col("surv").filter(upper).last(),
        l_time=pl.col("time").filter(lower).first(),
        l_surv=pl.col("surv").filter(lower).first(),
    )
    note = (
        pl.when(pl.col("median").is_null())
        .then(pl.format("median not reached: S(t) stays above 0.5 (lowest {})", pl.col("lowest").round(3)))
        .when(pl.col("u_time").is_null())
        .then(pl.lit("no event time with S ≥ 0.55, so SPSS's SE is undefined"))
        .when(pl.col("l_time").is_null())
        .then(pl.lit("no event time with S ≤ 0.45, so SPSS's SE is undefined"))
        .when(pl.col("se_surv").is_null())
        .then(pl.lit("S(median) = 0, where Greenwood's SE is undefined"))
    )
    se = pl.when(note.is_null()).then(pl.col("se_surv") / ((pl.col("u_surv") - pl.col("l_surv")) / (pl.col("l_time") - pl.col("u_time"))))
    return per_group.with_columns(se=se, note=note).select(
        *by,
        "median",
        "se",
        ci_lower=pl.col("median") - Z_95 * pl.col("se"),
        ci_upper=pl.col("median") + Z_95 * pl.col("se"),
        note="note",
    )


def median_history(survival_summary: pl.DataFrame) -> pl.DataFrame:
    """Median PFS and OS with their intervals at every data cut, each method beside the other, oldest cut first."""
    return survival_summary.select("data_cut", "endpoint", "method", "n", "events", "median", "ci_lower", "ci_upper", "note").sort(
        "endpoint", "method", "data_cut"
    )
