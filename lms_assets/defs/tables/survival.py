"""Group ``survival``: Kaplan–Meier PFS and OS per data cut (Figure 1A/B, Table 2), landmarks, follow-up and subgroups."""

from typing import Any

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetIn, MetadataValue, Output

from lms_assets.audit import lifelines_check
from lms_assets.defs.audit.verification import problems_result
from lms_assets.defs.constants import SURVIVAL
from lms_assets.defs.metadata import preview, table_output
from lms_assets.defs.tables.step import gated_summary, table_defaults
from lms_assets.records.declarations import SUBGROUP_COLUMNS
from lms_assets.records.study import Study
from lms_assets.tables import survival

survival_table = table_defaults(group=SURVIVAL, kinds={"polars", "duckdb", "lifelines"})
# Only the columns read are loaded (AssetIn metadata "columns" becomes the SELECT list): ADTTE's text columns
# are most of its size, and on a million patients loading them all takes ten times as long.
TIME_TO_EVENT = AssetIn("adtte", metadata={"columns": ["DCUTDT", "PARAMCD", "SUBJID", "AVAL", "CNSR"]})
# Every survival table's OS rows rest on this reconstructed input; its description says so.
RECONSTRUCTED_OS = (
    "Reconstructed input: OS at the published cut rests on the reconstructed last-contact times of the patients alive "
    "then (Table 3 prints NA; ADTTE AVALRFL = 'Y'); sensitivity_ranges gives how far each OS result can move."
)
# Blocking checks of the two tables no printed value and no R comparison covers: recomputed by lifelines from ADTTE.
LANDMARKS_MATCH = "landmark_rates_match_lifelines"
HISTORY_MATCHES = "median_history_matches_lifelines"


def landmarks_check(table: pl.DataFrame, adtte: pl.DataFrame) -> AssetCheckResult:
    """``LANDMARKS_MATCH`` on a candidate ``survival_landmarks``, as its step yields it."""
    return problems_result(LANDMARKS_MATCH, lifelines_check.landmark_problems(table, adtte), "the 6- and 12-month rows equal lifelines on ADTTE")


def history_check(table: pl.DataFrame, adtte: pl.DataFrame) -> AssetCheckResult:
    """``HISTORY_MATCHES`` on a candidate ``median_history``, as its step yields it."""
    cuts = table["data_cut"].n_unique()
    return problems_result(
        HISTORY_MATCHES, lifelines_check.median_history_problems(table, adtte), f"{table.height} rows at {cuts} cut(s) equal lifelines on ADTTE"
    )


# Every ADSL variable a study's subgroup may split: the study (study.toml) says which are compared.
SUBGROUP_FACTORS = AssetIn("adsl", metadata={"columns": ["SUBJID", *sorted(SUBGROUP_COLUMNS)]})


@survival_table(
    ins={"adtte": TIME_TO_EVENT},
    description=(
        "Kaplan–Meier step function of PFS and OS for every data cut: one row per cut, endpoint and distinct time "
        "(so it grows with distinct times, not patients) with patients at risk, events, censorings, S(t), Greenwood "
        'SE (`std_err`) and the pointwise log(−log) 95% band (`ci_lower`/`ci_upper`, R\'s conf.type = "log-log"), '
        "null where it is undefined (S = 1 before the first event, S = 0), as R gives NA. Figure 1A/B. " + RECONSTRUCTED_OS
    ),
)
def survival_curves(context: AssetExecutionContext, adtte: pl.DataFrame) -> Output[pl.DataFrame]:
    curves = survival.km_curves(adtte)
    steps = curves.group_by("data_cut", "endpoint").len().sort("data_cut", "endpoint")
    context.log.info(f"Kaplan–Meier steps per cut and endpoint: {steps.rows()}")
    return table_output(curves, steps=preview(steps))


@gated_summary(
    survival_table,
    description=(
        "Table 2's medians, two rows per cut and endpoint. `method = 'spss'`: SPSS 24, which the paper used — median = "
        "first event time with S ≤ 0.5, SE = Greenwood SE of S(median) / f with f = (S(u) − S(l)) / (l − u) (u: last "
        "event time with S ≥ 0.55, l: first with S ≤ 0.45), CI = median ± 1.96·SE. `method = "
        "'brookmeyer_crowley_loglog'`: the CI where the defined log(−log) band crosses 0.5 (R's quantile.survfit with "
        'conf.type = "log-log"); `se` is null by design. `median` is the first time S ≤ 0.5 (SPSS, the paper\'s '
        "values); `median_midpoint` is R's and SAS's median, the midpoint where S = 0.5 exactly over a stretch. "
        "Anything not reached is null with the reason in `note`. " + RECONSTRUCTED_OS
    ),
)
def survival_summary(survival_curves: pl.DataFrame) -> Output[pl.DataFrame]:
    table = survival.median_summary(survival_curves)
    latest = table.filter((pl.col("data_cut") == table["data_cut"].max()) & (pl.col("method") == "spss"))
    # The paper's medians as numbers, so the asset's Plots tab draws them across materializations.
    medians: dict[str, Any] = {
        f"m{r['endpoint']}": MetadataValue.float(r["median"]) if r["median"] is not None else MetadataValue.text("not reached")
        for r in latest.iter_rows(named=True)
    }
    # One row per cut and endpoint, PFS first, with each method's interval beside the median: the page's metadata
    # column is about 500 px wide at 1440 px, too narrow for the methods' names as rows.
    intervals = table.select(
        "data_cut", "endpoint", "median", "n", "events", "method", pl.col("ci_lower").alias("_lower"), pl.col("ci_upper").alias("_upper")
    ).pivot("method", index=["data_cut", "endpoint", "median", "n", "events"], values=["_lower", "_upper"])
    shown = intervals.sort("data_cut", "endpoint", descending=[False, True]).select(
        "endpoint",
        "median",
        *(pl.col(f"_{b}_{m}").alias(f"{m}_ci_{b}") for m in ("spss", "brookmeyer_crowley_loglog") for b in ("lower", "upper")),
        "n",
        "events",
        "data_cut",
    )
    return table_output(table, shown=shown.rename({c: c.replace("brookmeyer_crowley_loglog", "bc") for c in shown.columns}), **medians)


def _landmarks_checks(context, outputs, table: pl.DataFrame, inputs) -> list[AssetCheckResult]:
    return [landmarks_check(table, inputs["adtte"])]


def _history_checks(context, outputs, table: pl.DataFrame, inputs) -> list[AssetCheckResult]:
    return [history_check(table, inputs["adtte"])]


@survival_table(
    description=(
        "Landmarks every 3 months per cut and endpoint (the risk table under Figure 1A/B): patients at risk "
        "(AVAL ≥ t), cumulative events and censorings, and the event-free rate S(t) with its log(−log) 95% CI — "
        "month 6 and 12 are the 6- and 12-month PFS/OS rates. S(t) is null beyond the last observed time. "
        f"{RECONSTRUCTED_OS} Blocking check {LANDMARKS_MATCH}: the 6- and 12-month rows equal lifelines' "
        "Kaplan–Meier on ADTTE."
    ),
    check_specs=[
        AssetCheckSpec(
            LANDMARKS_MATCH,
            asset="survival_landmarks",
            blocking=True,
            description=(
                "At 6 and 12 months, every cut and endpoint: patients at risk counted on ADTTE, S(t) and its log(−log) "
                "band as lifelines' KaplanMeierFitter gives them on ADTTE (ERROR otherwise; the table goes to staging)."
            ),
        )
    ],
    checks=_landmarks_checks,
    check_ins={"adtte": TIME_TO_EVENT},
)
def survival_landmarks(survival_curves: pl.DataFrame) -> Output[pl.DataFrame]:
    table = survival.landmarks(survival_curves)
    rates = table.filter(pl.col("month").is_in(lifelines_check.QUOTED_LANDMARKS)).select(
        "data_cut", "endpoint", "month", "surv", "ci_lower", "ci_upper"
    )
    return table_output(table, limit=40, rates=preview(rates))


@gated_summary(
    survival_table,
    ins={"adtte": TIME_TO_EVENT},
    description=(
        "Follow-up per cut and endpoint: median by the reverse Kaplan–Meier method (time to censoring; an event "
        "censors; `median_midpoint`: R's plateau midpoint) with its log(−log) 95% CI, and the range = shortest and longest observed time (AVAL, event or "
        "censoring) over all patients. The paper's 'median follow-up 17.8 months (range 4.3–23.5)' is checked "
        "against the OS rows of the published cut; `patients` lists the SUBJIDs. " + RECONSTRUCTED_OS
    ),
)
def survival_followup(adtte: pl.DataFrame) -> Output[pl.DataFrame]:
    table = survival.reverse_km_followup(adtte)
    # A preview row would turn every patient list into Python objects; n already says how many.
    return table_output(table, shown=table.drop("patients"))


@gated_summary(
    survival_table,
    ins={"adtte": TIME_TO_EVENT, "adsl": SUBGROUP_FACTORS},
    description=(
        "Subgroups of PFS and OS per cut (forest table): each comparison study.toml declares ([[subgroups]]: a factor, "
        "the ADSL variable it splits, its level against its reference), in its order. Per level n, events and KM median (first crossing; "
        "`median_midpoint`/`median_ref_midpoint`: R's and SAS's plateau midpoint); log-rank p (lifelines) and Cox HR "
        "with 95% CI and Wald p (lifelines, Efron ties, run to the maximum as R's coxph; fitted up to "
        f"{survival.COX_MAX_ROWS:,} patients, null with a note when the likelihood is monotone). Rows are summed in one "
        "order, so re-runs are bit-identical. A printed claim that no subgroup differed significantly is "
        "checked by the blocking checks of its printed counts (subgroups.pfs/os.significant.n). Reconstructed inputs: "
        "an allocated factor (ADSL RECONVAR names it) and, for OS, the living patients' last-contact times. " + RECONSTRUCTED_OS
    ),
)
def survival_subgroups(adtte: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> Output[pl.DataFrame]:
    table = survival.subgroup_comparisons(adtte, adsl, study.subgroups)
    significant = table.filter(pl.col("logrank_p") < survival.SIGNIFICANCE)
    return table_output(
        table,
        limit=30,
        comparisons=table.height,
        logrank_p_below_0_05=significant.height,
    )


@survival_table(
    kinds={"polars", "duckdb"},
    description=(
        "Median PFS and OS with both 95% intervals at every data cut, oldest first, so the study team sees how the "
        "estimates move as follow-up matures (the paper expects median OS to fall). Earlier cuts are never overwritten: "
        f"each cut's rows come from its own follow-up file. {RECONSTRUCTED_OS} Blocking check {HISTORY_MATCHES}: every "
        "row equals lifelines' Kaplan–Meier on ADTTE."
    ),
    check_specs=[
        AssetCheckSpec(
            HISTORY_MATCHES,
            asset="median_history",
            blocking=True,
            description=(
                "Every cut and endpoint of ADTTE is in the history and each row's n, events, median and CI equal lifelines' "
                "Kaplan–Meier on ADTTE (SPSS: Collett's SE recomputed on lifelines' curve; Brookmeyer–Crowley: where "
                "lifelines' log(−log) band reaches 0.5). ERROR otherwise; the table goes to staging."
            ),
        )
    ],
    checks=_history_checks,
    check_ins={"adtte": TIME_TO_EVENT},
)
def median_history(survival_summary: pl.DataFrame) -> Output[pl.DataFrame]:
    table = survival.median_history(survival_summary)
    return table_output(table, data_cuts=table["data_cut"].n_unique())
