"""Figure 2: the waterfall plot of each patient's best % change of the target-lesion sum (Altair).

Above ``MAX_BARS`` patients the plot shows an evenly spaced sample of the sorted patients, and says
so, so that the chart payload stays bounded however large the study.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from lms_assets.graphs.stated import count_texts
from lms_assets.tables.response import PD_THRESHOLD, PR_THRESHOLD, RESPONSE_LABELS, best_responses, with_best_change

MAX_BARS = 300
# Patient ids under each bar stay legible up to about this many bars.
MAX_LABELLED_BARS = 60
RESPONSE_COLOURS = {"CR": "#08519c", "PR": "#4292c6", "SD": "#a6a6a6", "PD": "#d6604d", "NE": "#f4a582"}
COMBINATION_SHAPES = {
    "Immunotherapy": "diamond",
    "Immunotherapy+Chemotherapy": "cross",
    "Chemotherapy": "triangle-up",
    "Radiotherapy": "square",
}
FALLBACK_SHAPE = "circle"
RECIST_VERSION = "1.1"


def waterfall_data(adrs: pl.DataFrame, adtr: pl.DataFrame, adsl: pl.DataFrame, max_bars: int = MAX_BARS) -> tuple[pl.DataFrame, int]:
    """Patients with a best % change, largest increase first; above ``max_bars`` an evenly spaced sample in that order.

    Returns the bars and the number of patients they represent. The sample keeps the first and last
    patient, so the extremes and the shape of the curve survive.
    """
    measured = (
        with_best_change(best_responses(adrs), adtr)
        .filter(pl.col("PCHG").is_not_null())
        .join(adsl.select("SUBJID", "COMBFL", "COMBTRT"), on="SUBJID", how="left")
        .sort(["PCHG", "SUBJID"], descending=[True, False])
    )
    total = measured.height
    if total > max_bars:
        positions = pl.int_range(max_bars, eager=True) * (total - 1) / (max_bars - 1)
        measured = measured[positions.round().cast(pl.Int64).unique(maintain_order=True)]
    return (
        measured.with_row_index("position", offset=1).select(
            "position",
            pl.format("Pt {}", pl.col("SUBJID")).alias("patient"),
            pl.col("PCHG").alias("best_pct_change"),
            pl.col("AVALC").alias("response"),
            pl.col("AVALC").replace_strict(RESPONSE_LABELS, default=pl.col("AVALC")).alias("response_label"),
            pl.when(pl.col("COMBFL") == "Y").then(pl.col("COMBTRT")).alias("combination"),
        ),
        total,
    )


def records_line(what: str, data_cut: object | None) -> str:
    """The subtitle line naming the data cut of records that later follow-up cuts do not change."""
    cut = f" (data cut {data_cut})" if data_cut is not None else ""
    return f"{what} of the published analysis{cut}; later follow-up cuts do not change them."


def _subtitle(shown: int, total: int, data_cut: object | None) -> list[str]:
    bars = "One bar per patient" if shown == total else "Each bar one sampled patient"
    lines = [
        records_line("Tumour measurements", data_cut),
        f"{bars} ({total:,} with a measured change). Dashed lines: RECIST {RECIST_VERSION} thresholds, "
        f"{PR_THRESHOLD:+.0f}% (partial response) and {PD_THRESHOLD:+.0f}% (progression).",
        "RECIST judges progression against the smallest sum (nadir), so the +20% line is a guide only.",
    ]
    if shown < total:
        lines.append(f"Showing {shown:,} of {total:,} patients: an evenly spaced sample in sorted order (extremes kept).")
    return lines


def expected_numbers(bars: pl.DataFrame, total: int, data_cut: object | None) -> set[str]:
    """Every number the waterfall may state: the patients measured and drawn, the RECIST thresholds and version, the cut."""
    thresholds = {f"{abs(t):.0f}" for t in (PR_THRESHOLD, PD_THRESHOLD)}
    return count_texts([total, bars.height]) | thresholds | {RECIST_VERSION} | ({str(data_cut)} if data_cut is not None else set())


def waterfall_chart(bars: pl.DataFrame, total: int, data_cut: object | None = None) -> alt.TopLevelMixin:
    """Bars of best % change coloured by recorded response, dashed −30%/+20% lines, combination therapy marked at each bar's tip;
    the subtitle names ``data_cut``, the cut of the published analysis."""
    responses = [r for r in RESPONSE_COLOURS if r in set(bars["response"].to_list())]
    labels = [RESPONSE_LABELS[r] for r in responses]
    data = bars.with_columns(
        # Markers sit just beyond the bar's tip so they never hide it.
        (pl.col("best_pct_change") + pl.when(pl.col("best_pct_change") >= 0).then(6.0).otherwise(-6.0)).alias("marker_y")
    )
    labelled = bars.height <= MAX_LABELLED_BARS
    x = alt.X(
        "patient:N",
        # An explicit order: layered charts cannot share a domain sorted by another field.
        sort=bars.sort("position")["patient"].to_list(),
        title="Patients, ordered from largest increase to largest decrease",
        axis=alt.Axis(labels=labelled, ticks=labelled, labelAngle=-90),
    )
    tooltip = [
        alt.Tooltip("patient:N", title="Patient"),
        alt.Tooltip("best_pct_change:Q", title="Best change (%)", format="+.1f"),
        alt.Tooltip("response_label:N", title="Recorded response"),
        alt.Tooltip("combination:N", title="Combined with"),
    ]
    base = alt.Chart(data)
    bars_layer = base.mark_bar().encode(
        x=x,
        y=alt.Y("best_pct_change:Q", title="Best change in target-lesion sum from baseline (%)"),
        color=alt.Color(
            "response_label:N",
            scale=alt.Scale(domain=labels, range=[RESPONSE_COLOURS[r] for r in responses]),
            legend=alt.Legend(title=f"Best response (RECIST {RECIST_VERSION})", orient="right", titleLimit=0, labelLimit=0),
        ),
        tooltip=tooltip,
    )
    therapies = sorted(c for c in data["combination"].drop_nulls().unique().to_list())
    markers = (
        base.transform_filter("isValid(datum.combination)")
        .mark_point(filled=True, size=70 if labelled else 25, color="black")
        .encode(
            x=x,
            y=alt.Y("marker_y:Q"),
            shape=alt.Shape(
                "combination:N",
                scale=alt.Scale(domain=therapies, range=[COMBINATION_SHAPES.get(t, FALLBACK_SHAPE) for t in therapies]),
                legend=alt.Legend(title="Combined with the study treatment", orient="right", titleLimit=0, labelLimit=0),
            ),
            tooltip=tooltip,
        )
    )
    thresholds = pl.DataFrame({"y": [PR_THRESHOLD, PD_THRESHOLD]})
    rules = alt.Chart(thresholds).mark_rule(strokeDash=[6, 4], color="#333333").encode(y="y:Q")
    # Sorted bars leave the lower left and the upper right empty: the labels go there.
    pr_label = pl.DataFrame({"y": [PR_THRESHOLD], "label": [f"{PR_THRESHOLD:+.0f}%: partial response threshold"]})
    pd_label = pl.DataFrame({"y": [PD_THRESHOLD], "label": [f"{PD_THRESHOLD:+.0f}%: progression threshold (judged from nadir)"]})
    label_style: dict[str, Any] = {"fontSize": 11, "color": "#333333"}
    rule_labels = [
        alt.Chart(pr_label).mark_text(align="left", baseline="top", dx=4, dy=3, **label_style).encode(y="y:Q", text="label:N", x=alt.value(0)),
        alt.Chart(pd_label)
        .mark_text(align="right", baseline="bottom", dx=-4, dy=-3, **label_style)
        .encode(y="y:Q", text="label:N", x=alt.value("width")),
    ]
    zero = alt.Chart(pl.DataFrame({"y": [0.0]})).mark_rule(color="black", strokeWidth=0.8).encode(y="y:Q")
    return alt.layer(bars_layer, zero, rules, *rule_labels, markers).properties(
        width=min(800, max(420, 26 * bars.height)),
        height=380,
        title=alt.Title("Best change in tumour size from baseline, per patient", subtitle=_subtitle(bars.height, total, data_cut), anchor="start"),
    )
