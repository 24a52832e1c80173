"""The swimmer plot: one lane per patient, time on study from the start of the study treatment to death or last contact, with
progression, death, alive at the cut and best response marked, coloured by combination therapy (Altair).

Every plotted time is an ADTTE ``AVAL``; ``plotted_mismatches`` reads them back from the chart's spec and compares
them with ADTTE's rows, so a chart that drew another endpoint's time, or a censored time as an event, fails.
Above ``MAX_LANES`` patients an evenly spaced sample of the sorted lanes is drawn, and the chart says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

import altair as alt
import polars as pl

from lms_assets.graphs.km import RECONSTRUCTED_CENSOR, RECONSTRUCTED_COLOUR, X_TITLE, tick_step
from lms_assets.graphs.stated import count_texts
from lms_assets.graphs.waterfall import RESPONSE_COLOURS

MAX_LANES = 60
MONOTHERAPY = "None (study treatment alone)"
# A patient with no best response recorded in ADRS: not "NE", which is a recorded response.
NO_RESPONSE = "–"
THERAPY_COLOURS = ("#BBBBBB", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#F0E442")
# Each layer's Vega-Lite description: what ``plotted_mismatches`` reads back (Altair suffixes a view's name).
LANES, PROGRESSION, DEATH, ALIVE, RECONSTRUCTED = "lanes", "progression", "death", "alive", "reconstructed"
MARKS = {PROGRESSION: ("Progression (PFS event)", "diamond"), DEATH: ("Death", "cross"), ALIVE: ("Alive at the data cut", "triangle-right")}
LANE_HEIGHT = 20
WIDTH = 660


@dataclass(frozen=True)
class Cohort:
    """What the lanes represent: every patient of the cut, not only those drawn."""

    cut: dt.date | None
    patients: int
    deaths: int
    reconstructed: int  # OS times at a reconstructed last contact (ADTTE AVALRFL = "Y")


def swimmer_data(adtte: pl.DataFrame, adrs: pl.DataFrame, adsl: pl.DataFrame, max_lanes: int = MAX_LANES) -> tuple[pl.DataFrame, Cohort]:
    """One row per patient at the latest data cut, longest time on study first: SUBJID, lane, os (AVAL), died,
    pfs (AVAL), progressed, os_reconstructed and pfs_reconstructed (AVALRFL = "Y"), response, therapy.

    Returns the lanes (above ``max_lanes`` an evenly spaced sample of them, first and last kept) and the cohort
    they represent."""
    cut = cast(dt.date | None, adtte["DCUTDT"].max())
    latest = adtte.filter(pl.col("DCUTDT") == cut)

    def endpoint(code: str, time: str, event: str, flag: str) -> pl.DataFrame:
        rows = latest.filter(pl.col("PARAMCD") == code)
        return rows.select(
            "SUBJID", pl.col("AVAL").alias(time), (pl.col("CNSR") == 0).alias(event), (pl.col("AVALRFL") == "Y").fill_null(False).alias(flag)
        )

    best = adrs.filter(pl.col("PARAMCD") == "BOR").select("SUBJID", response=pl.col("AVALC"))
    therapy = adsl.select("SUBJID", therapy=pl.when(pl.col("COMBFL") == "Y").then(pl.col("COMBTRT")).otherwise(pl.lit(MONOTHERAPY)))
    lanes = (
        endpoint("OS", "os", "died", "os_reconstructed")
        .join(endpoint("PFS", "pfs", "progressed", "pfs_reconstructed"), on="SUBJID", how="left")
        .join(best, on="SUBJID", how="left")
        .join(therapy, on="SUBJID", how="left")
        .sort(["os", "SUBJID"], descending=[True, False])
    )
    cohort = Cohort(cut, lanes.height, int(lanes["died"].sum()), int(lanes["os_reconstructed"].sum()))
    if lanes.height > max_lanes:
        positions = pl.int_range(max_lanes, eager=True) * (lanes.height - 1) / (max_lanes - 1)
        lanes = lanes[positions.round().cast(pl.Int64).unique(maintain_order=True)]
    return lanes.with_columns(lane=pl.format("Pt {}", "SUBJID"), response=pl.col("response").fill_null(NO_RESPONSE), zero=pl.lit(0.0)), cohort


def _subtitle(shown: int, cohort: Cohort) -> list[str]:
    lines = [
        f"Data cut {cohort.cut}: {cohort.patients:,} patients, {cohort.deaths:,} died; longest time on study on top. Bar: start of the study treatment to death or last contact.",
        "Marks: progression at the PFS time, death, an arrow where the patient was alive at the cut; best response (RECIST 1.1) on the left.",
    ]
    if cohort.reconstructed:
        lines.append(
            f"Hollow orange circles: {cohort.reconstructed:,} last-contact times reconstructed for the paper, not recorded (ADTTE AVALRFL = Y)."
        )
    if shown < cohort.patients:
        lines.append(f"Showing {shown:,} of {cohort.patients:,} patients: an evenly spaced sample in sorted order (extremes kept).")
    return lines


def expected_numbers(adtte: pl.DataFrame, shown: int) -> set[str]:
    """Every number the swimmer plot may state, from ADTTE's latest cut: the patients, deaths and reconstructed
    last contacts, the lanes drawn, the cut, RECIST's version and its axis ticks' wording."""
    cut = adtte["DCUTDT"].max()
    os_rows = adtte.filter((pl.col("DCUTDT") == cut) & (pl.col("PARAMCD") == "OS"))
    reconstructed = adtte.filter((pl.col("DCUTDT") == cut) & (pl.col("AVALRFL") == "Y")).height
    counts = count_texts([os_rows.height, os_rows.filter(pl.col("CNSR") == 0).height, reconstructed, shown])
    return counts | {str(cut), "1.1"}


def swimmer_chart(lanes: pl.DataFrame, cohort: Cohort) -> alt.TopLevelMixin:
    """Lanes of time on study coloured by combination therapy, with progression, death, alive-at-cut and reconstructed marks."""
    order = lanes["lane"].to_list()
    last = max(cast(float | None, lanes["os"].max()) or 0.0, cast(float | None, lanes["pfs"].max()) or 0.0)
    step = tick_step(last, max_ticks=11)
    ticks = [step * i for i in range(int(last // step) + 2)]
    x_scale = alt.Scale(domain=[0, ticks[-1]], nice=False)
    y = alt.Y("lane:N", sort=order, title=None, axis=alt.Axis(labelFontSize=11, ticks=False, domain=False))
    therapies = [MONOTHERAPY, *sorted(t for t in lanes["therapy"].drop_nulls().unique().to_list() if t != MONOTHERAPY)]
    tooltip = [
        alt.Tooltip("lane:N", title="Patient"),
        alt.Tooltip("os:Q", title="OS / last contact (months)", format=".1f"),
        alt.Tooltip("pfs:Q", title="PFS (months)", format=".1f"),
        alt.Tooltip("response:N", title="Best response"),
        alt.Tooltip("therapy:N", title="Combined with"),
    ]
    data = lanes.drop("SUBJID").to_pandas()
    base = alt.Chart(data)
    bars = base.mark_bar(height=LANE_HEIGHT * 0.55).encode(
        x=alt.X("zero:Q", scale=x_scale, axis=alt.Axis(values=ticks, grid=False), title=X_TITLE),
        x2="os:Q",
        y=y,
        color=alt.Color(
            "therapy:N",
            scale=alt.Scale(domain=therapies, range=list(THERAPY_COLOURS[: len(therapies)])),
            legend=alt.Legend(title="Combined with the study treatment", orient="bottom", direction="vertical", labelLimit=0, titleLimit=0),
        ),
        tooltip=tooltip,
    )
    bars = bars.properties(description=LANES)
    kind_scale = alt.Scale(domain=[label for label, _ in MARKS.values()], range=[shape for _, shape in MARKS.values()])
    kind_legend = alt.Legend(title="Marks", orient="bottom", direction="vertical", labelLimit=0)

    def marks(name: str, time: str, keep: str) -> alt.Chart:
        label = MARKS[name][0]
        return (
            base.transform_filter(keep)
            .transform_calculate(kind=f"'{label}'")
            .mark_point(filled=True, size=70, color="black", opacity=1)
            .encode(x=alt.X(f"{time}:Q", scale=x_scale), y=y, shape=alt.Shape("kind:N", scale=kind_scale, legend=kind_legend), tooltip=tooltip)
            .properties(description=name)
        )

    layers: list[Any] = [
        bars,
        marks(PROGRESSION, "pfs", "datum.progressed"),
        marks(DEATH, "os", "datum.died"),
        marks(ALIVE, "os", "!datum.died"),
    ]
    flagged = lanes.filter(pl.col("os_reconstructed")).height
    if flagged:
        # Their own mark and legend entry, as on the KM plot: these times were not recorded.
        layers.append(
            base.transform_filter("datum.os_reconstructed")
            .transform_calculate(flag=f"'{RECONSTRUCTED_CENSOR}'")
            .mark_point(size=190, strokeWidth=2, filled=False, color=RECONSTRUCTED_COLOUR)
            .encode(
                x=alt.X("os:Q", scale=x_scale),
                y=y,
                stroke=alt.Stroke(
                    "flag:N",
                    scale=alt.Scale(domain=[RECONSTRUCTED_CENSOR], range=[RECONSTRUCTED_COLOUR]),
                    legend=alt.Legend(title=None, orient="bottom", direction="vertical", labelLimit=0, symbolType="circle"),
                ),
                tooltip=tooltip,
            )
            .properties(description=RECONSTRUCTED)
        )
    height = LANE_HEIGHT * lanes.height
    colours = {**RESPONSE_COLOURS, NO_RESPONSE: "#999999"}
    responses = [r for r in colours if r in set(lanes["response"].to_list())]
    response_column = (
        base.mark_text(fontSize=11, fontWeight="bold")
        .encode(
            y=alt.Y("lane:N", sort=order, axis=None),
            text="response:N",
            color=alt.Color("response:N", scale=alt.Scale(domain=responses, range=[colours[r] for r in responses]), legend=None),
        )
        .properties(width=34, height=height, title=alt.TitleParams("Best", fontSize=11, anchor="middle"))
    )
    swim = alt.layer(*layers).properties(width=WIDTH, height=height)
    return (
        alt.hconcat(response_column, swim, spacing=2)
        .resolve_scale(color="independent")
        .properties(
            title=alt.TitleParams(
                "Time on study, progression and survival per patient",
                subtitle=_subtitle(lanes.height, cohort),
                anchor="start",
                fontSize=16,
                subtitleFontSize=12,
            )
        )
        .configure_view(stroke=None)
    )


def _layer_rows(spec: dict[str, Any], name: str) -> list[dict] | None:
    """The data rows of the layer described as ``name``, after its filter (the marks it draws); None if none is."""
    for panel in spec.get("hconcat", []):
        for layer in panel.get("layer", []):
            if layer.get("description") == name:
                rows = spec["datasets"][layer.get("data", panel.get("data", spec.get("data", {}))).get("name")]
                flag = next((step["filter"] for step in layer.get("transform", []) if "filter" in step), None)
                return [row for row in rows if flag is None or _holds(flag, row)]
    return None


def _holds(expression: str, row: dict) -> bool:
    """The swimmer's own filters, ``datum.<flag>`` and ``!datum.<flag>``, on one row."""
    negated = expression.startswith("!")
    return bool(row[expression.removeprefix("!").removeprefix("datum.")]) != negated


def plotted_mismatches(spec: dict[str, Any], adtte: pl.DataFrame) -> list[str]:
    """Where the chart's plotted times and marks differ from ADTTE's latest cut: each lane's bar must end at the
    patient's OS AVAL, a progression mark sit at each PFS event's AVAL, a death mark at each OS event, an arrow at
    each censored OS time and a hollow circle at each reconstructed one (AVALRFL = "Y") — and nowhere else."""
    cut = cast(dt.date | None, adtte["DCUTDT"].max())
    latest = adtte.filter(pl.col("DCUTDT") == cut)
    rows = {(r["PARAMCD"], f"Pt {r['SUBJID']}"): r for r in latest.iter_rows(named=True)}
    drawn_lanes = _layer_rows(spec, LANES)
    if drawn_lanes is None:
        return ["the chart draws no lanes"]
    lanes = {row["lane"] for row in drawn_lanes}
    expected = {
        LANES: {(lane, rows[("OS", lane)]["AVAL"]) for lane in lanes if ("OS", lane) in rows},
        PROGRESSION: {(lane, r["AVAL"]) for (p, lane), r in rows.items() if p == "PFS" and lane in lanes and r["CNSR"] == 0},
        DEATH: {(lane, r["AVAL"]) for (p, lane), r in rows.items() if p == "OS" and lane in lanes and r["CNSR"] == 0},
        ALIVE: {(lane, r["AVAL"]) for (p, lane), r in rows.items() if p == "OS" and lane in lanes and r["CNSR"] == 1},
        RECONSTRUCTED: {(lane, r["AVAL"]) for (p, lane), r in rows.items() if p == "OS" and lane in lanes and r["AVALRFL"] == "Y"},
    }
    time_of = {LANES: "os", PROGRESSION: "pfs", DEATH: "os", ALIVE: "os", RECONSTRUCTED: "os"}
    problems = []
    for name, want in expected.items():
        drawn = {(row["lane"], row[time_of[name]]) for row in _layer_rows(spec, name) or []}
        for lane, time in sorted(drawn - want, key=str)[:3]:
            problems.append(f"{name}: {lane} drawn at {time} months, not an ADTTE {name} time of cut {cut}")
        for lane, time in sorted(want - drawn, key=str)[:3]:
            problems.append(f"{name}: {lane}'s ADTTE time {time} (cut {cut}) is not drawn")
    return problems
