"""The history chart: median PFS and OS with their intervals at every data cut (Altair)."""

import polars as pl


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
