"""The forest plot of the subgroup comparisons: per endpoint an overall row, then per factor its events/patients
in the level and the reference, the Cox hazard ratio with its 95% CI on a log axis, HR (CI) and log-rank p, and
which side of HR = 1 favours which group (Altair; pure builders).
"""

from __future__ import annotations

import datetime as dt
from typing import cast

import altair as alt
import polars as pl

from lms_assets.graphs.km import ENDPOINT_TITLES, SERIES_COLOURS, compact_count, no_data
from lms_assets.graphs.stated import count_texts, numbers
from lms_assets.tables.printed import fixed
from lms_assets.tables.survival import SIGNIFICANCE

# Places of the hazard ratios, p-values and the overall medians; below the floor p is shown as "p < 0.001".
HR_DECIMALS = 2
P_DECIMALS = 3
P_FLOOR = 0.001
MEDIAN_DECIMALS = 1
OVERALL = "All patients"
HR_DOMAIN = (0.05, 20.0)
FAVOURS = "< favours the first-named level  |  favours the reference >"
ROW_HEIGHT = 26


def _hr_text(row: dict) -> str:
    p = row["logrank_p"]
    p_text = "p not computed" if p is None else f"p = {fixed(p, P_DECIMALS)}" if p >= P_FLOOR else f"p < {P_FLOOR}"
    if row["hr"] is None:
        return f"HR not estimated · {p_text}"
    return f"{fixed(row['hr'], HR_DECIMALS)} ({fixed(row['hr_ci_lower'], HR_DECIMALS)}–{fixed(row['hr_ci_upper'], HR_DECIMALS)}) · {p_text}"


def _overall_text(row: dict | None) -> str:
    if row is None or row["median"] is None:
        return "median not reached"
    return f"median {fixed(row['median'], MEDIAN_DECIMALS)} months (SPSS)"


def forest_rows(subgroups: pl.DataFrame, summary: pl.DataFrame, endpoint: str) -> pl.DataFrame:
    """One endpoint's rows as drawn: the overall row first (``survival_summary``'s n, events and SPSS median), then
    each comparison with its level's and reference's events/patients and its HR (CI) and p."""
    part = subgroups.filter(pl.col("endpoint") == endpoint)
    overall = summary.filter((pl.col("endpoint") == endpoint) & (pl.col("method") == "spss")).rows(named=True)
    first = overall[0] if overall else None
    head = pl.DataFrame(
        {
            "row": [OVERALL],
            "counts": [f"{compact_count(first['events'])}/{compact_count(first['n'])}" if first else ""],
            "text": [_overall_text(first)],
        }
    )
    rows = part.select(
        row=pl.format("{}: {} vs {}", "factor", "level", "reference"),
        counts=pl.Series(
            [
                f"{compact_count(e)}/{compact_count(n)} vs {compact_count(er)}/{compact_count(nr)}"
                for e, n, er, nr in part.select("events", "n", "events_ref", "n_ref").iter_rows()
            ],
            dtype=pl.String,
        ),
        text=pl.Series([_hr_text(r) for r in part.iter_rows(named=True)], dtype=pl.String),
        hr="hr",
        hr_ci_lower="hr_ci_lower",
        hr_ci_upper="hr_ci_upper",
        logrank_p="logrank_p",
        note="note",
    )
    return pl.concat([head, rows], how="diagonal_relaxed")


def _block(rows: pl.DataFrame, endpoint: str) -> alt.HConcatChart:
    """One endpoint: row labels, events/patients, the HR with its CI on a log axis, and HR (CI) with p."""
    order = rows["row"].to_list()
    # The domain named: the HR panel draws no point on the overall row, and its rows must still line up with the text.
    y = alt.Y("row:N", sort=order, scale=alt.Scale(domain=order), axis=None)
    height = ROW_HEIGHT * len(order)
    data = alt.Chart(rows)

    def column(field: str, width: int, title: str, **mark) -> alt.Chart:
        return (
            data.mark_text(align="left", fontSize=11, **mark)
            .encode(x=alt.value(0), y=y, text=f"{field}:N")
            .properties(width=width, height=height, title=alt.TitleParams(title, anchor="start", fontSize=11))
        )

    x_scale = alt.Scale(type="log", domain=list(HR_DOMAIN), clamp=True)
    estimated = data.transform_filter("isValid(datum.hr)")
    one = alt.Chart(pl.DataFrame({"hr": [1.0]})).mark_rule(strokeDash=[4, 3], color="#777777").encode(x=alt.X("hr:Q", scale=x_scale))
    whiskers = estimated.mark_rule(strokeWidth=2, color=SERIES_COLOURS[0]).encode(
        x=alt.X(
            "hr_ci_lower:Q",
            scale=x_scale,
            axis=alt.Axis(title=FAVOURS, values=[0.1, 0.25, 0.5, 1, 2, 4, 10], format="~g", grid=False, titleFontSize=10),
        ),
        x2="hr_ci_upper:Q",
        y=y,
    )
    points = estimated.mark_square(size=70, color=SERIES_COLOURS[0]).encode(
        x=alt.X("hr:Q", scale=x_scale),
        y=y,
        tooltip=[
            alt.Tooltip("row:N", title="Subgroup"),
            alt.Tooltip("hr:Q", title="HR", format=".2f"),
            alt.Tooltip("hr_ci_lower:Q", title="95% CI lower", format=".2f"),
            alt.Tooltip("hr_ci_upper:Q", title="95% CI upper", format=".2f"),
            alt.Tooltip("logrank_p:Q", title="log-rank p", format=".3f"),
            alt.Tooltip("note:N", title="Note"),
        ],
    )
    panel = alt.layer(one, whiskers, points).properties(
        width=250, height=height, title=alt.TitleParams("Hazard ratio (log scale)", anchor="middle", fontSize=11)
    )
    return alt.hconcat(
        column("row", 265, ENDPOINT_TITLES[endpoint], fontWeight="normal").properties(
            title=alt.TitleParams(ENDPOINT_TITLES[endpoint], anchor="start", fontSize=13)
        ),
        column("counts", 85, "Events/patients", color="#444444"),
        panel,
        column("text", 175, "HR (95% CI) · log-rank p"),
        spacing=6,
    )


def forest_plot(subgroups: pl.DataFrame, summary: pl.DataFrame, title: str, subtitle: list[str]) -> alt.VConcatChart:
    """The forest plot of one data cut: one block per endpoint, stacked (HRs outside ``HR_DOMAIN`` drawn clipped at the edge)."""
    blocks = [_block(forest_rows(subgroups, summary, e), e) for e in ENDPOINT_TITLES if e in set(subgroups["endpoint"].to_list())]
    return (
        alt.vconcat(*blocks, spacing=18)
        .properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start", fontSize=16, subtitleFontSize=12))
        .configure_view(stroke=None)
    )


def forest_expected_numbers(subgroups: pl.DataFrame, summary: pl.DataFrame) -> set[str]:
    """Every number the forest plot may state, formatted from the latest cut's ``survival_subgroups`` cells (HRs and their
    bounds, p-values, events and patients, how many comparisons reach significance, numbers in labels and notes) and
    its ``survival_summary`` SPSS rows (the overall n, events and median)."""
    cut = subgroups["data_cut"].max()
    rows = subgroups.filter(pl.col("data_cut") == cut)
    overall = summary.filter((pl.col("data_cut") == cut) & (pl.col("method") == "spss"))
    hrs = {fixed(v, HR_DECIMALS) for c in ("hr", "hr_ci_lower", "hr_ci_upper") for v in rows[c].drop_nulls().to_list()}
    p_values = {fixed(v, P_DECIMALS) for v in rows["logrank_p"].drop_nulls().to_list()} | {str(P_FLOOR)}
    tested = rows["logrank_p"].drop_nulls()
    counted = [*rows["n"], *rows["n_ref"], *rows["events"], *rows["events_ref"], *overall["n"], *overall["events"]]
    counts = {compact_count(v) for v in counted} | count_texts([tested.filter(tested < SIGNIFICANCE).len(), tested.len()])
    medians = {fixed(v, MEDIAN_DECIMALS) for v in overall["median"].drop_nulls().to_list()}
    words = set(numbers(str(v) for c in ("factor", "level", "reference", "note") for v in rows[c].drop_nulls().to_list()))
    # "HR (95% CI)" in the column titles, the axis' ticks and the significance level in the subtitle.
    ticks = {"0.1", "0.25", "0.5", "1", "2", "4", "10"}
    return hrs | p_values | counts | medians | words | ticks | {str(cut), str(SIGNIFICANCE), "95"}


def forest_chart(subgroups: pl.DataFrame, summary: pl.DataFrame) -> alt.TopLevelMixin:
    """The subgroup forest plot of the latest data cut in ``survival_subgroups``, with ``survival_summary``'s overall rows."""
    cut = cast(dt.date | None, subgroups["data_cut"].max())
    if cut is None:
        return no_data("Subgroup analysis: no patients in any data cut")
    rows = subgroups.filter(pl.col("data_cut") == cut)
    significant = rows.filter(pl.col("logrank_p") < SIGNIFICANCE).height
    tested = rows["logrank_p"].drop_nulls().len()
    subtitle = [
        f"Data cut {cut}. Cox hazard ratio of the first-named level against the reference (HR > 1: higher hazard,",
        "shorter survival: the reference fares better); log-rank p. Events/patients: the level's vs the reference's.",
        f"{significant} of {tested} log-rank comparisons have p < {SIGNIFICANCE} (no multiplicity correction); the Discussion reports none.",
    ]
    missing = rows.filter(pl.col("hr").is_null())["note"].drop_nulls().unique().sort().to_list()
    if missing:
        subtitle.append("HR not estimated: " + "; ".join(missing) + ".")
    return forest_plot(rows, summary.filter(pl.col("data_cut") == cut), "Subgroup analysis of PFS and OS", subtitle)
