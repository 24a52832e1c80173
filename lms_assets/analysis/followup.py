"""Consistency of successive data cuts: follow-up may only extend what an earlier cut recorded."""

import datetime as dt

import polars as pl

REGRESSION_SCHEMA = {
    "SUBJID": pl.Int64,
    "PARAMCD": pl.String,
    "earlier_cut": pl.Date,
    "later_cut": pl.Date,
    "earlier_aval": pl.Float64,
    "later_aval": pl.Float64,
    "earlier_cnsr": pl.Int64,
    "later_cnsr": pl.Int64,
    "problem": pl.String,
}


def cut_regressions(adtte: pl.DataFrame) -> pl.DataFrame:
    """Each cut against the one before it: an event stays an event at the same time, times never shrink, no patient disappears."""
    cuts = adtte["DATACUT"].unique().sort().to_list()
    found = [pl.DataFrame(schema=REGRESSION_SCHEMA)]
    for earlier_cut, later_cut in zip(cuts, cuts[1:]):
        earlier = adtte.filter(pl.col("DATACUT") == earlier_cut).select("SUBJID", "PARAMCD", "AVAL", "CNSR")
        later = adtte.filter(pl.col("DATACUT") == later_cut).select("SUBJID", "PARAMCD", "AVAL", "CNSR")
        paired = earlier.join(later, on=["SUBJID", "PARAMCD"], how="left", suffix="_later")
        problem = (
            pl.when(pl.col("AVAL_later").is_null())
            .then(pl.lit("patient missing from the later cut"))
            .when((pl.col("CNSR") == 0) & (pl.col("CNSR_later") != 0))
            .then(pl.lit("an event in the earlier cut is censored in the later cut"))
            .when((pl.col("CNSR") == 0) & (pl.col("AVAL_later") != pl.col("AVAL")))
            .then(pl.lit("an event's time changed between cuts"))
            .when(pl.col("AVAL_later") < pl.col("AVAL"))
            .then(pl.lit("follow-up time shrank between cuts"))
        )
        found.append(
            paired.with_columns(problem.alias("problem"))
            .filter(pl.col("problem").is_not_null())
            .select(
                "SUBJID",
                "PARAMCD",
                pl.lit(earlier_cut).alias("earlier_cut"),
                pl.lit(later_cut).alias("later_cut"),
                pl.col("AVAL").alias("earlier_aval"),
                pl.col("AVAL_later").alias("later_aval"),
                pl.col("CNSR").alias("earlier_cnsr"),
                pl.col("CNSR_later").alias("later_cnsr"),
                "problem",
            )
            .cast(REGRESSION_SCHEMA)
        )
    return pl.concat(found).sort("later_cut", "SUBJID", "PARAMCD")


def withdrawn_cuts(candidate: pl.DataFrame, published_cuts: list[dt.date]) -> list[dt.date]:
    """Cuts already published that the candidate lacks: their file was removed or renamed, so the analysis would go back."""
    present = set(candidate["DATACUT"].unique().to_list())
    return [cut for cut in published_cuts if cut not in present]


def describe_withdrawn(cut: dt.date) -> str:
    """One sentence for a published cut whose file is gone."""
    return f"data cut {cut} is published but no file in followup/ gives it any more: restore it (cuts are only added)"


def describe_regression(row: dict) -> str:
    """One sentence a study nurse can act on."""
    return (
        f"patient {row['SUBJID']} {row['PARAMCD']}: {row['problem']} "
        f"({row['earlier_cut']}: {row['earlier_aval']} months, {'event' if row['earlier_cnsr'] == 0 else 'censored'}; "
        f"{row['later_cut']}: "
        + (
            "no row"
            if row["later_aval"] is None
            else f"{row['later_aval']} months, {'event' if row['later_cnsr'] == 0 else 'censored'}"
        )
        + ")"
    )


def history(survival_summary: pl.DataFrame) -> pl.DataFrame:
    """Median PFS and OS with their intervals at every data cut, each method beside the other, oldest cut first."""
    return survival_summary.select(
        "data_cut", "endpoint", "method", "n", "events", "median", "ci_lower", "ci_upper", "note"
    ).sort("endpoint", "method", "data_cut")


def history_chart(table: pl.DataFrame):
    """Medians (points) and 95% intervals (rules) by data cut, one panel per endpoint, one colour per method."""
    import altair as alt

    data = table.with_columns(pl.col("data_cut").cast(pl.String), pl.col("note").cast(pl.String))
    base = alt.Chart(data).encode(
        x=alt.X("data_cut:O", title="Data cut"),
        color=alt.Color(
            "method:N",
            title="95% CI method",
            scale=alt.Scale(domain=["spss", "brookmeyer_crowley_loglog"], range=["#0072B2", "#D55E00"]),
            legend=alt.Legend(labelExpr="datum.label == 'spss' ? 'SPSS 24 (median ± 1.96·SE)' : 'Brookmeyer–Crowley, log(−log)'"),
        ),
        xOffset="method:N",
    )
    rules = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y("ci_lower:Q", title="Median (months) with 95% CI"), y2="ci_upper:Q"
    )
    points = base.mark_point(filled=True, size=70).encode(
        y="median:Q",
        tooltip=["data_cut:O", "endpoint:N", "method:N", "n:Q", "events:Q", "median:Q", "ci_lower:Q", "ci_upper:Q", "note:N"],
    )
    return (
        alt.layer(rules, points, data=data)
        .properties(width=280, height=260)
        .facet(column=alt.Column("endpoint:N", title=None, sort=["PFS", "OS"]))
        .resolve_scale(y="independent")
        .properties(title={"text": "Median survival across data cuts", "subtitle": "Missing points: median or bound not reached at that cut"})
    )
