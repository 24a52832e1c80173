"""Kaplan–Meier curves by subgroup: for each factor ``survival_subgroups`` compares (the study's, study.toml) and each endpoint, a small panel with the level's and the reference's
curves, their numbers at risk under it, and the log-rank p of ``survival_subgroups`` in its title (Altair).

``plotted_mismatches`` reads the drawn curves and titles back from the spec: each curve's median (first time S ≤ 0.5)
and n must be the ``survival_subgroups`` row's, and each panel's p its log-rank p.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

import altair as alt
import polars as pl

from lms_assets.graphs.km import SERIES_COLOURS, compact_count, tick_step
from lms_assets.graphs.stated import count_texts, numbers
from lms_assets.tables.printed import fixed
from lms_assets.tables.survival import TOLERANCE, Subgroup, first_time_at_or_below, km_steps

ENDPOINTS = ("PFS", "OS")
PANEL_WIDTH = 300
PANEL_HEIGHT = 170
MAX_TICKS = 7
P_DECIMALS = 3
# Steps drawn per arm: a 300 px panel shows no more.
MAX_POINTS = 80
# Above this many censoring times in a panel its ticks merge into a band: they are left out, as the subtitle says.
MAX_CENSOR_MARKS = 60
ARMS = ("level", "reference")
ARM_COLOURS = dict(zip(ARMS, SERIES_COLOURS))


def subgroup_times(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: Sequence[Subgroup]) -> pl.DataFrame:
    """ADTTE's latest cut as (factor, endpoint, arm, label, time, event, count): how many patients of each of the study's factors' two
    compared levels share each time and outcome (a patient in neither, such as a third primary site, is left out, as
    in ``survival_subgroups``). Counts, not patient rows, so a large study costs its distinct times, not 14 rows a patient."""
    cut = adtte["DCUTDT"].max()
    times = adtte.filter(pl.col("DCUTDT") == cut).select(
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
        parts.append(times.join(arms, on="SUBJID").group_by("factor", "endpoint", "arm", "label", "time", "event").agg(count=pl.len().cast(pl.Int64)))
    return pl.concat(parts).sort("factor", "endpoint", "arm", "time", "event")


GROUP = ["factor", "endpoint", "arm"]


def at_risk_counts(times: pl.DataFrame, months: list[float]) -> pl.DataFrame:
    """Patients with time ≥ t per factor, endpoint and arm at each of ``months``, counted from ``subgroup_times``:
    factor, endpoint, arm, month, at_risk. The check's count, apart from the curves' risk table (``_risk_table``)."""
    return pl.concat(
        [times.group_by(GROUP).agg(month=pl.lit(m), at_risk=(pl.col("count") * (pl.col("time") >= m)).sum().cast(pl.Int64)) for m in months]
    ).sort(*GROUP, "month")


def _risk_table(steps: pl.DataFrame, months: list[float]) -> pl.DataFrame:
    """The numbers at risk the panels show, read off the KM steps as survminer does: at t, the at-risk count of the
    first step at or after t (0 past the last): factor, endpoint, arm, month, at_risk."""
    grid = steps.select(GROUP).unique().join(pl.DataFrame({"month": months}, schema={"month": pl.Float64}), how="cross").sort("month")
    ahead = steps.select(*GROUP, "time", "at_risk").sort("time")
    return (
        grid.join_asof(ahead, left_on="month", right_on="time", by=GROUP, strategy="forward", check_sortedness=False)
        .select(*GROUP, "month", at_risk=pl.col("at_risk").fill_null(0))
        .sort(*GROUP, "month")
    )


def _curves(steps: pl.DataFrame, max_points: int = MAX_POINTS) -> pl.DataFrame:
    """Each arm's step curve from S(0) = 1: factor, endpoint, arm, time, surv, censored. Above ``max_points`` steps an
    arm keeps the last step of each of ``max_points`` time bins (censorings summed) and the step where S first falls
    to 0.5 or below, so a panel's payload is bounded and its median stays exact."""
    origin = steps.select(GROUP).unique().with_columns(time=pl.lit(0.0), surv=pl.lit(1.0), censored=pl.lit(0, pl.Int64))
    steps = steps.select(origin.columns)
    if cast(int, steps.group_by(GROUP).len()["len"].max()) > max_points:
        width = cast(float, steps["time"].max()) / max_points
        crossing = steps.filter(pl.col("surv") <= 0.5 + TOLERANCE).group_by(GROUP).agg(pl.col("time").min().alias("_crossing"))
        steps = (
            steps.join(crossing, on=GROUP, how="left")
            .with_columns(
                _bin=pl.when(pl.col("time") == pl.col("_crossing"))
                .then(-1.0)
                .otherwise((pl.col("time") / width).floor().clip(upper_bound=max_points - 1))
            )
            .sort(*GROUP, "time")
            .group_by(*GROUP, "_bin", maintain_order=True)
            .agg(pl.col("time", "surv").last(), pl.col("censored").sum())
            .drop("_bin")
        )
    return pl.concat([origin, steps.select(origin.columns)]).sort(*GROUP, "time")


def _p_text(p: float | None) -> str:
    return "log-rank p not computed" if p is None else f"log-rank p = {fixed(p, P_DECIMALS)}"


def _labels(rows: pl.DataFrame) -> pl.DataFrame:
    """Each panel's name of each curve: factor, endpoint, arm and 'Male (4/5)', the level with its events/patients."""
    return pl.concat(
        [
            rows.select("factor", "endpoint", arm=pl.lit("level"), legend=pl.format("{} ({}/{})", "level", "events", "n")),
            rows.select("factor", "endpoint", arm=pl.lit("reference"), legend=pl.format("{} ({}/{})", "reference", "events_ref", "n_ref")),
        ]
    )


# The numbers at risk sit in the panel's own view, below S = 0 (one view per panel: Altair copies every nested
# sub-chart at each level of nesting, which for 14 panels of two views each cost about a second).
RISK_ROWS = {"level": -0.22, "reference": -0.36}
Y_FLOOR = -0.44


def _panel(row: dict, legends: list[str], ticks: list[float], censor_ticks: bool = True) -> alt.LayerChart | alt.FacetChart:
    """One factor and endpoint: the two curves with censor ticks and the numbers at risk under them, drawn from the
    value's one dataset."""
    factor, endpoint = row["factor"], row["endpoint"]
    mine = (alt.datum.factor == factor) & (alt.datum.endpoint == endpoint)
    x_scale = alt.Scale(domain=[0, ticks[-1]], nice=False)
    x = alt.X("time:Q", scale=x_scale, axis=alt.Axis(values=ticks, title=None, grid=False))
    y_scale = alt.Scale(domain=[Y_FLOOR, 1], nice=False)
    # Concatenated panels place legends badly: the risk rows' labels name each curve instead.
    colour = alt.Color("legend:N", scale=alt.Scale(domain=legends, range=[ARM_COLOURS[a] for a in ARMS]), legend=None)
    curves = alt.Chart().transform_filter(mine & (alt.datum.kind == "curve")).encode(x=x, color=colour)
    line = curves.mark_line(interpolate="step-after", strokeWidth=2).encode(
        y=alt.Y("surv:Q", scale=y_scale, axis=alt.Axis(values=[0, 0.5, 1], format=".1f", title=None, grid=False)),
        tooltip=[
            alt.Tooltip("legend:N", title="Group"),
            alt.Tooltip("time:Q", title="Month", format=".1f"),
            alt.Tooltip("surv:Q", title="S(t)", format=".3f"),
        ],
    )
    censored = curves.transform_filter(alt.datum.censored > 0).mark_point(shape="M0,-1L0,1", size=50, strokeWidth=1.2).encode(y="surv:Q")
    risk = (
        alt.Chart()
        .transform_filter(mine & (alt.datum.kind == "risk"))
        .transform_calculate(row=f"datum.arm == 'level' ? {RISK_ROWS['level']} : {RISK_ROWS['reference']}")
    )
    numbers = risk.mark_text(fontSize=10).encode(x=alt.X("month:Q", scale=x_scale), y=alt.Y("row:Q", scale=y_scale), text="text:N", color=colour)
    names = (
        risk.transform_filter(alt.datum.month == 0)
        .mark_text(fontSize=10, align="right", dx=-14)
        .encode(x=alt.X("month:Q", scale=x_scale), y=alt.Y("row:Q", scale=y_scale), text="legend:N", color=colour)
    )
    floor = alt.Chart().mark_rule(color="#888888", strokeWidth=0.8).encode(y=alt.datum(0.0))
    return alt.layer(line, *([censored] if censor_ticks else []), floor, numbers, names).properties(
        width=PANEL_WIDTH,
        height=PANEL_HEIGHT,
        title=alt.TitleParams(f"{factor}, {endpoint}: {_p_text(row['logrank_p'])}", anchor="start", fontSize=12),
    )


def reconstructed_inputs(at_cut: pl.DataFrame, adsl: pl.DataFrame, declared: Sequence[Subgroup], factors: list[str]) -> str:
    """What the drawn panels rest on that the paper does not print, in words ("" if nothing): OS times ending at a
    reconstructed last contact (ADTTE AVALRFL = Y) and factors whose allocation is reconstructed (ADSL RECONVAR)."""
    parts = ["OS at reconstructed last-contact times (ADTTE AVALRFL = Y)"] if at_cut.filter(pl.col("AVALRFL") == "Y").height else []
    allocated = set(" ".join(adsl["RECONVAR"].drop_nulls().to_list()).split())
    named = [s.factor for s in declared if s.column in allocated and s.factor in factors]
    parts += [f"the allocation of {', '.join(named)} (ADSL RECONVAR)"] if named else []
    return f"Rests on reconstructed inputs, not printed in the paper: {'; '.join(parts)}." if parts else ""


def subgroup_chart(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: pl.DataFrame, declared: Sequence[Subgroup]) -> alt.TopLevelMixin:
    """Small multiples of KM curves: one row per factor of ``survival_subgroups``' latest cut (``declared``: the study's
    subgroups, which name each factor's ADSL variable and labels), PFS left and OS right."""
    cut = cast(dt.date | None, subgroups["data_cut"].max())
    rows = subgroups.filter(pl.col("data_cut") == cut)
    times = subgroup_times(adtte.filter(pl.col("DCUTDT") == cut), adsl, declared)
    if times.is_empty() or rows.is_empty():
        return alt.Chart(pl.DataFrame({"m": ["Survival by subgroup: no patients in any data cut"]})).mark_text().encode(text="m:N")
    last = cast(float, times["time"].max())
    step = tick_step(last, every=6.0, max_ticks=MAX_TICKS)
    ticks = [step * i for i in range(int(last // step) + 2)]
    labels = _labels(rows)
    steps = km_steps(times, by=GROUP)
    risk = _risk_table(steps, ticks)
    curves = _curves(steps)
    censor_ticks = (cast(int | None, curves.filter(pl.col("censored") > 0).group_by(GROUP).len()["len"].max()) or 0) <= MAX_CENSOR_MARKS
    data = pl.concat(
        [
            curves.with_columns(kind=pl.lit("curve")),
            risk.with_columns(kind=pl.lit("risk"), text=pl.Series([compact_count(n) for n in risk["at_risk"]], dtype=pl.String)),
        ],
        how="diagonal_relaxed",
    ).join(labels, on=["factor", "endpoint", "arm"])
    order = {(r["factor"], r["endpoint"]): r for r in rows.iter_rows(named=True)}
    legends = {(f, e): [dict(zip(g["arm"], g["legend"]))[a] for a in ARMS] for (f, e), g in labels.group_by("factor", "endpoint")}
    factors = rows["factor"].unique(maintain_order=True).to_list()
    panels = [_panel(order[(f, e)], legends[(f, e)], ticks, censor_ticks) for f in factors for e in ENDPOINTS if (f, e) in order]
    subtitle = [
        f"Data cut {cut}. Each panel: the first-named level (blue) against the reference (orange); under it, the numbers at risk,",
        "each row named with its level's (events/patients). "
        + ("Ticks: censored." if censor_ticks else f"Censor ticks omitted: more than {MAX_CENSOR_MARKS} censoring times per curve would hide it."),
        "The log-rank p of each panel is survival_subgroups' (no multiplicity correction). x: months since start of the study treatment; y: S(t).",
    ]
    subtitle += [note] if (note := reconstructed_inputs(adtte.filter(pl.col("DCUTDT") == cut), adsl, declared, factors)) else []
    return (
        alt.concat(*panels, columns=len(ENDPOINTS), spacing=16, data=data)
        .resolve_scale(color="independent", y="independent")
        .properties(
            title=alt.TitleParams("Kaplan–Meier curves by subgroup, PFS and OS", subtitle=subtitle, anchor="start", fontSize=16, subtitleFontSize=12)
        )
        .configure_view(stroke=None)
    )


def expected_numbers(adtte: pl.DataFrame, adsl: pl.DataFrame, subgroups: pl.DataFrame, declared: Sequence[Subgroup]) -> set[str]:
    """Every number the chart may state: ``survival_subgroups``' n, events and log-rank p of the latest cut and the
    numbers in its level names, and the patients with time ≥ t counted from ADTTE at every tick the chart can show."""
    cut = subgroups["data_cut"].max()
    rows = subgroups.filter(pl.col("data_cut") == cut)
    counts = count_texts(rows["n"].to_list() + rows["n_ref"].to_list() + rows["events"].to_list() + rows["events_ref"].to_list())
    p_values = {fixed(v, P_DECIMALS) for v in rows["logrank_p"].drop_nulls().to_list()}
    times = adtte.filter(pl.col("DCUTDT") == cut)
    last = cast(float | None, times["AVAL"].max()) or 0.0
    step = tick_step(last, every=6.0, max_ticks=MAX_TICKS)
    months = [step * i for i in range(int(last // step) + 2)]
    at_risk = {compact_count(n) for n in at_risk_counts(subgroup_times(times, adsl, declared), months)["at_risk"].to_list()}
    words = set(numbers(str(v) for c in ("factor", "level", "reference") for v in rows[c].to_list()))
    return counts | p_values | at_risk | words | {str(cut), "0.5", "0.0", "1.0", "0", "1", str(MAX_CENSOR_MARKS)} | {f"{m:g}" for m in months}


def _panels(spec: dict[str, Any]) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """The panels' titles, the drawn curve rows (factor, endpoint, arm, time, surv) and the drawn numbers at risk
    (factor, endpoint, arm, month, text), from the spec."""
    titles = [panel["title"]["text"] for panel in spec.get("concat", [])]
    rows = spec.get("datasets", {}).get(spec.get("data", {}).get("name", ""), [])
    curve = {"factor": pl.String, "endpoint": pl.String, "arm": pl.String, "time": pl.Float64, "surv": pl.Float64}
    risk = {"factor": pl.String, "endpoint": pl.String, "arm": pl.String, "month": pl.Float64, "text": pl.String}

    def frame(kind: str, schema: dict) -> pl.DataFrame:
        return pl.DataFrame([{k: r[k] for k in schema} for r in rows if r.get("kind") == kind], schema=schema)

    return titles, frame("curve", curve), frame("risk", risk)


def plotted_mismatches(
    spec: dict[str, Any], subgroups: pl.DataFrame, adtte: pl.DataFrame, adsl: pl.DataFrame, declared: Sequence[Subgroup]
) -> list[str]:
    """Where a panel's drawn curves, numbers at risk or stated p differ from their tables at ``survival_subgroups``'
    latest cut: each arm's first time with S ≤ 0.5 must be the row's median (median_ref for the reference), the
    panel's log-rank p the row's, and each number at risk the patients of that arm with ADTTE AVAL ≥ t."""
    cut = cast(dt.date | None, subgroups["data_cut"].max())
    rows = {(r["factor"], r["endpoint"]): r for r in subgroups.filter(pl.col("data_cut") == cut).iter_rows(named=True)}
    titles, curves, risk = _panels(spec)
    stated = {title.partition(": ")[0]: title.partition(": ")[2] for title in titles}
    problems = []
    for (factor, endpoint), row in rows.items():
        shown = stated.get(f"{factor}, {endpoint}")
        if shown is None:
            problems.append(f"{factor}, {endpoint}: in survival_subgroups, no panel")
            continue
        if shown != _p_text(row["logrank_p"]):
            problems.append(f"{factor}, {endpoint}: the panel states '{shown}', survival_subgroups' {_p_text(row['logrank_p'])}")
        for arm, column in (("level", "median"), ("reference", "median_ref")):
            part = curves.filter((pl.col("factor") == factor) & (pl.col("endpoint") == endpoint) & (pl.col("arm") == arm)).sort("time")
            drawn = first_time_at_or_below(part, "surv", 0.5) if part.height else None
            if drawn != row[column]:
                problems.append(f"{factor}, {endpoint}: the {row[arm]} curve reaches S = 0.5 at {drawn}, survival_subgroups' median is {row[column]}")
    problems += [f"{title}: a panel of no survival_subgroups comparison" for title in stated if tuple(title.split(", ", 1)) not in rows]
    counted = at_risk_counts(subgroup_times(adtte.filter(pl.col("DCUTDT") == cut), adsl, declared), sorted(set(risk["month"].to_list())))
    expected = {(f, e, a, m): compact_count(n) for f, e, a, m, n in counted.iter_rows()}
    wrong = [(f, e, a, m, t, expected.get((f, e, a, m))) for f, e, a, m, t in risk.iter_rows() if expected.get((f, e, a, m)) != t]
    problems += [f"{f}, {e}, {a}: {t} at risk drawn at month {m:g}, {n} patients of ADTTE have AVAL ≥ {m:g}" for f, e, a, m, t, n in wrong[:3]]
    return problems
