"""The history chart: median PFS and OS with their intervals at every data cut, joined across cuts, with the
events and the patients still without one under each cut (Altair)."""

import altair as alt
import polars as pl

from lms_assets.graphs.stated import count_texts

METHODS = {"spss": "SPSS 24 (median ± 1.96·SE)", "brookmeyer_crowley_loglog": "Brookmeyer–Crowley, log(−log)"}
METHOD_COLOURS = ["#0072B2", "#D55E00"]
ENDPOINTS = {"PFS": "Progression-free survival", "OS": "Overall survival"}
PANEL_WIDTH = 300


def _panel(data: pl.DataFrame, endpoint: str, cuts: list[str]) -> alt.VConcatChart:
    """One endpoint: per method a line through the medians with its 95% intervals, and under the x-axis the
    number of events and of event-free patients (at risk or censored) at each cut."""
    part = data.filter(pl.col("endpoint") == endpoint)
    x = alt.X("data_cut:O", title="Data cut", sort=cuts, axis=alt.Axis(labelAngle=0))
    colour = alt.Color(
        "method_label:N",
        title="95% CI method",
        scale=alt.Scale(domain=list(METHODS.values()), range=METHOD_COLOURS),
        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0, titleLimit=0),
    )
    base = alt.Chart(part).encode(x=x, color=colour, xOffset=alt.XOffset("method_label:N", sort=list(METHODS.values())))
    rules = base.mark_rule(strokeWidth=2).encode(y=alt.Y("ci_lower:Q", title="Median (months) with 95% CI"), y2="ci_upper:Q")
    joined = base.mark_line(strokeWidth=1.5, point=False).encode(y="median:Q", detail="method_label:N")
    points = base.mark_point(filled=True, size=70, opacity=1).encode(
        y="median:Q",
        tooltip=[
            alt.Tooltip("data_cut:O", title="Data cut"),
            alt.Tooltip("method_label:N", title="Method"),
            alt.Tooltip("n:Q", title="Patients"),
            alt.Tooltip("events:Q", title="Events"),
            alt.Tooltip("median:Q", title="Median", format=".1f"),
            alt.Tooltip("ci_lower:Q", title="95% CI lower", format=".2f"),
            alt.Tooltip("ci_upper:Q", title="95% CI upper", format=".2f"),
            alt.Tooltip("note:N", title="Note"),
        ],
    )
    curves = alt.layer(rules, joined, points).properties(
        width=PANEL_WIDTH, height=240, title=alt.TitleParams(ENDPOINTS[endpoint], anchor="start", fontSize=13)
    )
    # The counts do not depend on the method; one row per cut and quantity.
    counts = part.unique(["data_cut"]).select("data_cut", "n", "events")
    rows = pl.concat(
        [
            counts.select("data_cut", row=pl.lit("Events"), value=pl.col("events")),
            counts.select("data_cut", row=pl.lit("Without event"), value=pl.col("n") - pl.col("events")),
        ]
    ).with_columns(pl.col("value").cast(pl.String))
    table = (
        alt.Chart(rows)
        .mark_text(fontSize=12)
        .encode(
            x=alt.X("data_cut:O", sort=cuts, axis=None),
            y=alt.Y("row:N", sort=["Events", "Without event"], axis=alt.Axis(title=None, domain=False, ticks=False)),
            text="value:N",
        )
        .properties(width=PANEL_WIDTH, height=44)
    )
    return alt.vconcat(curves, table, spacing=4)


def expected_numbers(table: pl.DataFrame) -> set[str]:
    """Every number the chart may state, from ``median_history``: the cuts, events and event-free patients per cut."""
    counts = count_texts(table["events"].to_list() + (table["n"] - table["events"]).to_list())
    # "95% CI method", the legend's title.
    return counts | {str(c) for c in table["data_cut"].to_list()} | {"95"}


def history_chart(table: pl.DataFrame) -> alt.TopLevelMixin:
    """Medians (points, joined per method across cuts) and 95% intervals (rules) by data cut, one panel per
    endpoint, one colour per method; under each panel the events and event-free patients at every cut."""
    data = table.with_columns(
        pl.col("data_cut").cast(pl.String),
        pl.col("note").cast(pl.String),
        method_label=pl.col("method").replace_strict(METHODS, default=pl.col("method")),
    )
    cuts = sorted(data["data_cut"].unique().to_list())
    endpoints = [e for e in ENDPOINTS if e in set(data["endpoint"].to_list())]
    subtitle = [
        f"Data cuts {', '.join(cuts)}." if len(cuts) > 1 else f"Data cut {cuts[0]}." if cuts else "No data cut.",
        "A missing point or interval end: median or bound not reached at that cut. Without event: at risk or censored.",
    ]
    return (
        alt.hconcat(*(_panel(data, e, cuts) for e in endpoints), spacing=30)
        .properties(title=alt.TitleParams("Median survival across data cuts", subtitle=subtitle, anchor="start", fontSize=16, subtitleFontSize=12))
        .configure_view(stroke=None)
    )
