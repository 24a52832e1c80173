"""The adverse-event chart: Table 4 as horizontal bars, one row per term, split by worst CTCAE grade group (Altair).

Above ``MAX_TERMS`` terms only the most frequent are drawn, and the chart says so.
"""

from __future__ import annotations

from typing import cast

import altair as alt
import polars as pl

from lms_assets.graphs.stated import count_texts, numbers
from lms_assets.graphs.waterfall import records_line
from lms_assets.tables.printed import fixed
from lms_assets.tables.toxicity import GRADE_GROUPS, TERM

MAX_TERMS = 40
PCT_DECIMALS = 1
GRADE_COLOURS = {"Grade 1/2": "#f4a582", "Grade 3/4": "#b2182b", "Grade 5": "#252525"}


def ae_chart_data(table: pl.DataFrame, max_terms: int = MAX_TERMS) -> tuple[pl.DataFrame, int]:
    """Table 4's term rows in its order (most frequent first), one row per term and grade group; the first ``max_terms`` terms only.

    Grade 5 is left out when no patient had it. Returns the rows and the number of terms in the table.
    """
    terms = table.filter(pl.col("section") == TERM)
    shown = terms.head(max_terms).with_row_index("rank")
    groups = [(tag, label) for tag, label in GRADE_GROUPS.items() if tag != "g5" or terms["g5_n"].sum() > 0]
    long = pl.concat(
        [
            shown.select(
                "rank",
                "term",
                pl.lit(label).alias("grade_group"),
                pl.lit(order).alias("grade_order"),
                pl.col(f"{tag}_n").alias("n"),
                pl.col(f"{tag}_pct").alias("pct"),
                "total_n",
                "total_pct",
                "denominator",
            )
            for order, (tag, label) in enumerate(groups)
        ]
    )
    return long.sort("rank", "grade_order"), terms.height


def expected_numbers(table: pl.DataFrame, data_cut: object | None, max_terms: int = MAX_TERMS) -> set[str]:
    """Every number the chart may state, formatted from Table 4's term rows: patients and percent per term, the
    denominator, how many terms are shown of how many, the grade groups' numbers and the cut."""
    terms = table.filter(pl.col("section") == TERM)
    counts = count_texts(terms["total_n"].to_list() + terms["denominator"].to_list() + [terms.height, min(terms.height, max_terms)])
    percents = {fixed(v, PCT_DECIMALS) for v in terms["total_pct"].drop_nulls().to_list()}
    return counts | percents | set(numbers(GRADE_GROUPS.values())) | ({str(data_cut)} if data_cut is not None else set())


def ae_chart(long: pl.DataFrame, total_terms: int, data_cut: object | None = None) -> alt.TopLevelMixin:
    """Stacked bars of patients per term by worst grade group, most frequent term on top, each labelled 'n (% of all patients)';
    the subtitle names ``data_cut``, the cut of the published analysis."""
    order = long.sort("rank")["term"].unique(maintain_order=True).to_list()
    denominator = cast(int, long["denominator"].max()) if long.height else 0
    grades = long["grade_group"].unique(maintain_order=True).to_list()
    y = alt.Y("term:N", sort=order, title=None, axis=alt.Axis(labelLimit=0))
    tooltip = [
        alt.Tooltip("term:N", title="Adverse event"),
        alt.Tooltip("grade_group:N", title="Worst grade"),
        alt.Tooltip("n:Q", title="Patients"),
        alt.Tooltip("pct:Q", title="% of all patients", format=".1f"),
    ]
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=y,
            x=alt.X(
                "n:Q",
                stack="zero",
                title=f"Patients with the event, counted once at their worst grade (of {denominator:,})",
                # Room to the right of the longest bar for its "n (%)" label.
                scale=alt.Scale(domain=[0, max(1, cast(int | None, long["total_n"].max()) or 0) * 1.25], nice=False),
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            color=alt.Color(
                "grade_group:N",
                scale=alt.Scale(domain=grades, range=[GRADE_COLOURS[g] for g in grades]),
                legend=alt.Legend(title="Worst CTCAE grade", orient="top", titleOrient="left"),
            ),
            order=alt.Order("grade_order:Q"),
            tooltip=tooltip,
        )
    )
    totals = long.unique(subset=["rank"], keep="first")
    totals = totals.with_columns(
        label=pl.Series([f"{n} ({fixed(pct, PCT_DECIMALS)}%)" for n, pct in zip(totals["total_n"], totals["total_pct"])], dtype=pl.String)
    )
    labels = alt.Chart(totals).mark_text(align="left", dx=4, fontSize=11).encode(y=y, x="total_n:Q", text="label:N")
    subtitle = [
        records_line("Adverse-event records", data_cut),
        f"Treatment-emergent adverse events; percent of all {denominator:,} patients, most frequent first.",
    ]
    if len(order) < total_terms:
        subtitle.append(f"Showing the {len(order)} most frequent of {total_terms} terms; all are in ae_summary.")
    return alt.layer(bars, labels).properties(
        width=620,
        height=alt.Step(22),
        title=alt.Title("Adverse events by term and worst CTCAE grade", subtitle=subtitle, anchor="start"),
    )
