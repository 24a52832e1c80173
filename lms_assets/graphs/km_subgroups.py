"""Kaplan–Meier curves by subgroup: for each factor ``survival_subgroups`` compares (the Discussion's sex, PS, treatment
history, primary site and combination therapy) and each endpoint, a small panel with the level's and the reference's
curves, their numbers at risk under it, and the log-rank p of ``survival_subgroups`` in its title (Altair).

``plotted_mismatches`` reads the drawn curves and titles back from the spec: each curve's median (first time S ≤ 0.5)
and n must be the ``survival_subgroups`` row's, and each panel's p its log-rank p.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import altair as alt
import polars as pl

from lms_assets.graphs.km import SERIES_COLOURS, compact_count, tick_step
from lms_assets.graphs.stated import count_texts, numbers
from lms_assets.tables.printed import fixed
from lms_assets.tables.survival import SUBGROUPS, Subgroup, first_time_at_or_below, km_steps

ENDPOINTS = ("PFS", "OS")
PANEL_WIDTH = 300
PANEL_HEIGHT = 120
MAX_TICKS = 7
P_DECIMALS = 3
ARMS = ("level", "reference")
ARM_COLOURS = dict(zip(ARMS, SERIES_COLOURS))


# The curve layers' Vega-Lite description: what ``plotted_mismatches`` reads back (Altair suffixes a view's name).
CURVE = "subgroup curve"


def subgroup_times(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: tuple[Subgroup, ...] = SUBGROUPS) -> pl.DataFrame:
    """ADTTE's latest cut as (factor, endpoint, arm, label, SUBJID, time, event), one row per patient in each
    factor's two compared levels (a patient in neither, such as a third primary site, is left out, as in
    ``survival_subgroups``)."""
    cut = adtte["DATACUT"].max()
    times = adtte.filter(pl.col("DATACUT") == cut).select(
        "SUBJID", endpoint="PARAMCD", time=pl.col("AVAL").cast(pl.Float64), event=(1 - pl.col("CNSR")).cast(pl.Int64)
    )
    parts = []
    for s in subgroups:
        arms = adsl.select(
            "SUBJID",
            factor=pl.lit(s.factor),
            arm=pl.when(pl.col(s.column) == s.level).then(pl.lit("level")).when(pl.col(s.column) == s.reference).then(pl.lit("reference")),
            label=pl.when(pl.col(s.column) == s.level).then(pl.lit(s.level_label)).otherwise(pl.lit(s.reference_label)),
        ).filter(pl.col("arm").is_not_null())
        parts.append(times.join(arms, on="SUBJID"))
    return pl.concat(parts).select("factor", "endpoint", "arm", "label", "SUBJID", "time", "event")


def at_risk_counts(times: pl.DataFrame, months: list[float]) -> pl.DataFrame:
    """Patients still at risk (time ≥ t) per factor, endpoint and arm at each of ``months``, counted from the patient
    rows: factor, endpoint, arm, month, at_risk."""
    grid = pl.DataFrame({"month": months}, schema={"month": pl.Float64})
    return (
        times.join(grid, how="cross")
        .group_by("factor", "endpoint", "arm", "label", "month")
        .agg(at_risk=(pl.col("time") >= pl.col("month")).sum().cast(pl.Int64))
        .sort("factor", "endpoint", "arm", "month")
    )


def _curves(times: pl.DataFrame) -> pl.DataFrame:
    """Each arm's step curve from S(0) = 1: factor, endpoint, arm, label, time, surv, censored."""
    steps = km_steps(times, by=["factor", "endpoint", "arm", "label"])
    origin = (
        steps.select("factor", "endpoint", "arm", "label").unique().with_columns(time=pl.lit(0.0), surv=pl.lit(1.0), censored=pl.lit(0, pl.Int64))
    )
    return pl.concat([origin, steps.select(origin.columns)]).sort("factor", "endpoint", "arm", "time")


def _p_text(p: float | None) -> str:
    return "log-rank p not computed" if p is None else f"log-rank p = {fixed(p, P_DECIMALS)}"


def _panel(curves: pl.DataFrame, risk: pl.DataFrame, row: dict, ticks: list[float]) -> alt.VConcatChart:
    """One factor and endpoint: the two curves with censor ticks, and the numbers at risk under them."""
    factor, endpoint = row["factor"], row["endpoint"]
    labels = {"level": f"{row['level']} ({row['events']}/{row['n']})", "reference": f"{row['reference']} ({row['events_ref']}/{row['n_ref']})"}
    drawn = curves.filter((pl.col("factor") == factor) & (pl.col("endpoint") == endpoint)).with_columns(
        legend=pl.col("arm").replace_strict(labels, return_dtype=pl.String)
    )
    x_scale = alt.Scale(domain=[0, ticks[-1]], nice=False)
    arm_scale = alt.Scale(domain=[labels[a] for a in ARMS], range=[ARM_COLOURS[a] for a in ARMS])
    # Concatenated panels place legends badly: the risk table's row labels name each curve instead.
    colour = alt.Color("legend:N", scale=arm_scale, legend=None)
    base = alt.Chart(drawn.to_pandas()).encode(x=alt.X("time:Q", scale=x_scale, axis=alt.Axis(values=ticks, title=None, grid=False)), color=colour)
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(
        y=alt.Y("surv:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(values=[0, 0.5, 1], format=".1f", title=None, grid=False)),
        tooltip=[
            alt.Tooltip("legend:N", title="Group"),
            alt.Tooltip("time:Q", title="Month", format=".1f"),
            alt.Tooltip("surv:Q", title="S(t)", format=".3f"),
        ],
    )
    ticks_layer = base.transform_filter(alt.datum.censored > 0).mark_point(shape="M0,-1L0,1", size=50, strokeWidth=1.2).encode(y="surv:Q")
    curve = alt.layer(line.properties(description=CURVE), ticks_layer).properties(
        width=PANEL_WIDTH,
        height=PANEL_HEIGHT,
        title=alt.TitleParams(f"{factor}, {endpoint}: {_p_text(row['logrank_p'])}", anchor="start", fontSize=12),
    )
    table = risk.filter((pl.col("factor") == factor) & (pl.col("endpoint") == endpoint) & pl.col("month").is_in(ticks))
    table = table.with_columns(
        text=pl.Series([compact_count(n) for n in table["at_risk"]], dtype=pl.String),
        legend=pl.col("arm").replace_strict(labels, return_dtype=pl.String),
    )
    numbers = (
        alt.Chart(table.to_pandas())
        .mark_text(fontSize=10)
        .encode(
            x=alt.X("month:Q", scale=x_scale, axis=None),
            y=alt.Y(
                "legend:N", sort=[labels[a] for a in ARMS], axis=alt.Axis(title=None, domain=False, ticks=False, labelFontSize=10, labelPadding=14)
            ),
            text="text:N",
            color=alt.Color("legend:N", scale=arm_scale, legend=None),
        )
        .properties(width=PANEL_WIDTH, height=28)
    )
    return alt.vconcat(curve, numbers, spacing=2)


def subgroup_figure(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: pl.DataFrame) -> alt.TopLevelMixin:
    """Small multiples of KM curves: one row per factor of ``survival_subgroups``' latest cut, PFS left and OS right."""
    cut = cast(dt.date | None, subgroups["data_cut"].max())
    rows = subgroups.filter(pl.col("data_cut") == cut)
    times = subgroup_times(adtte.filter(pl.col("DATACUT") == cut), adsl)
    if times.is_empty() or rows.is_empty():
        return alt.Chart(pl.DataFrame({"m": ["Survival by subgroup: no patients in any data cut"]}).to_pandas()).mark_text().encode(text="m:N")
    curves = _curves(times)
    step = tick_step(cast(float, times["time"].max()), every=6.0, max_ticks=MAX_TICKS)
    ticks = [step * i for i in range(int(cast(float, times["time"].max()) // step) + 2)]
    risk = at_risk_counts(times, ticks)
    factors = rows["factor"].unique(maintain_order=True).to_list()
    by_key = {(r["factor"], r["endpoint"]): r for r in rows.iter_rows(named=True)}
    grid = [
        alt.hconcat(*(_panel(curves, risk, by_key[(f, e)], ticks) for e in ENDPOINTS if (f, e) in by_key), spacing=24).resolve_scale(
            color="independent"
        )
        for f in factors
    ]
    subtitle = [
        f"Data cut {cut}. Each panel: the first-named level (blue) against the reference (orange); under it, the numbers at risk,",
        "each row named with its level's (events/patients). Ticks: censored.",
        "The log-rank p of each panel is survival_subgroups' (no multiplicity correction). x: months since start of anlotinib; y: S(t).",
    ]
    return (
        alt.vconcat(*grid, spacing=14)
        .resolve_scale(color="independent")
        .properties(
            title=alt.TitleParams("Kaplan–Meier curves by subgroup, PFS and OS", subtitle=subtitle, anchor="start", fontSize=16, subtitleFontSize=12)
        )
        .configure_view(stroke=None)
    )


def expected_numbers(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: pl.DataFrame) -> set[str]:
    """Every number the chart may state: ``survival_subgroups``' n, events and log-rank p of the latest cut and the
    numbers in its level names, and the patients with time ≥ t counted from ADTTE at every tick the chart can show."""
    cut = subgroups["data_cut"].max()
    rows = subgroups.filter(pl.col("data_cut") == cut)
    counts = count_texts(rows["n"].to_list() + rows["n_ref"].to_list() + rows["events"].to_list() + rows["events_ref"].to_list())
    p_values = {fixed(v, P_DECIMALS) for v in rows["logrank_p"].drop_nulls().to_list()}
    times = adtte.filter(pl.col("DATACUT") == cut)
    last = cast(float | None, times["AVAL"].max()) or 0.0
    step = tick_step(last, every=6.0, max_ticks=MAX_TICKS)
    months = [step * i for i in range(int(last // step) + 2)]
    at_risk = {compact_count(n) for n in at_risk_counts(subgroup_times(times, adsl), months)["at_risk"].to_list()}
    words = set(numbers(str(v) for c in ("factor", "level", "reference") for v in rows[c].to_list()))
    return counts | p_values | at_risk | words | {str(cut), "0.5", "0.0", "1.0", "0", "1"} | {f"{m:g}" for m in months}


def _panels(spec: dict[str, Any]):
    """Each panel's title and the rows of its curves, from the spec."""
    for row in spec.get("vconcat", []):
        for panel in row.get("hconcat", []):
            curve = panel["vconcat"][0]
            for layer in curve.get("layer", []):
                if layer.get("description") == CURVE:
                    yield curve["title"]["text"], spec["datasets"][layer.get("data", curve.get("data", {})).get("name")]


def plotted_mismatches(spec: dict[str, Any], subgroups: pl.DataFrame) -> list[str]:
    """Where a panel's drawn curves or stated p differ from ``survival_subgroups``' latest cut: each arm's first time
    with S ≤ 0.5 must be the row's median (median_ref for the reference), and the panel's log-rank p the row's."""
    cut = cast(dt.date | None, subgroups["data_cut"].max())
    rows = {(r["factor"], r["endpoint"]): r for r in subgroups.filter(pl.col("data_cut") == cut).iter_rows(named=True)}
    problems = []
    seen = set()
    for title, data in _panels(spec):
        frame = pl.DataFrame(data)
        factor, endpoint = frame["factor"][0], frame["endpoint"][0]
        row = rows.get((factor, endpoint))
        seen.add((factor, endpoint))
        if row is None:
            problems.append(f"{factor}, {endpoint}: drawn, but survival_subgroups has no such comparison at cut {cut}")
            continue
        if not title.endswith(_p_text(row["logrank_p"])):
            problems.append(f"{factor}, {endpoint}: the panel states '{title}', survival_subgroups' {_p_text(row['logrank_p'])}")
        for arm, column in (("level", "median"), ("reference", "median_ref")):
            part = frame.filter(pl.col("arm") == arm).sort("time")
            drawn = first_time_at_or_below(part, "surv", 0.5) if part.height else None
            if drawn != row[column]:
                problems.append(f"{factor}, {endpoint}: the {row[arm]} curve reaches S = 0.5 at {drawn}, survival_subgroups' median is {row[column]}")
    problems += [f"{f}, {e}: in survival_subgroups, not drawn" for f, e in rows if (f, e) not in seen]
    return problems
