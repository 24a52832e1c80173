"""Figure 1A/B as survminer and ggsurvfit draw them (Kaplan–Meier curve, band, censor marks, median line,
number-at-risk table) (Altair; pure builders).

Payloads stay bounded: above ``MAX_POINTS`` steps a curve is thinned to one step per time bin, so its
size depends on the chart's resolution, not on the number of patients or distinct times.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import cast

import altair as alt
import polars as pl

from lms_assets.graphs.stated import count_texts
from lms_assets.tables.printed import fixed

MAX_POINTS = 600
# Above this many censoring times per curve the ticks merge into a band and hide the curve.
MAX_CENSOR_MARKS = 150
MAX_TICKS = 13
WIDTH = 620
X_TITLE = "Months since start of the study treatment"
Y_TITLE = "Survival probability"
# Colour-blind-safe (Okabe–Ito): the latest cut first, an overlaid cut second.
SERIES_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
# The first series solid, the others dashed (km_plot draws them on top of it).
SERIES_DASHES = ((1, 0), (7, 4), (2, 3), (9, 3, 2, 3))
BAND_OPACITY = 0.08
# Censorings at a last-contact time reconstructed for the paper (ADTTE AVALRFL = "Y"): hollow orange circles, with this legend entry.
RECONSTRUCTED_CENSOR = "censored, reconstructed last contact"
RECONSTRUCTED_COLOUR = "#E69F00"
ENDPOINT_TITLES = {"PFS": "Progression-free survival", "OS": "Overall survival"}


def tick_step(last_time: float, every: float = 3.0, max_ticks: int = MAX_TICKS) -> float:
    """The x-tick spacing: the smallest multiple of ``every`` months that keeps at most ``max_ticks`` ticks."""
    span = max(last_time, every)
    return every * max(1, math.ceil(span / every / (max_ticks - 1)))


def thin_curve(curve: pl.DataFrame, max_points: int = MAX_POINTS) -> pl.DataFrame:
    """At most ``max_points`` steps per series: the last step of each time bin (censorings, and the reconstructed ones
    where the curve counts them, summed), so the drawn step function moves by less than a bin."""
    if cast(int, curve.group_by("series").len()["len"].max()) <= max_points:
        return curve
    width = cast(float, curve["time"].max()) / max_points
    counts = [c for c in ("censored", "reconstructed") if c in curve.columns]
    return (
        curve.sort("series", "time")
        .group_by("series", (pl.col("time") / width).floor().alias("_bin"), maintain_order=True)
        .agg(pl.col("time", "surv", "ci_lower", "ci_upper").last(), pl.col(counts).sum())
        .drop("_bin")
    )


def compact_count(n: int) -> str:
    """A count short enough for a risk-table cell: 950, 9,500, 95k, 1.2M."""
    if n < 10_000:
        return f"{n:,}"
    return f"{n / 1e3:.0f}k" if n < 999_500 else f"{n / 1e6:.1f}M"


def _with_origin(curve: pl.DataFrame) -> pl.DataFrame:
    """Every curve starts at S(0) = 1 with a band of width zero."""
    origin = (
        curve.select("series")
        .unique()
        .with_columns(
            time=pl.lit(0.0),
            surv=pl.lit(1.0),
            ci_lower=pl.lit(1.0),
            ci_upper=pl.lit(1.0),
            censored=pl.lit(0, dtype=pl.Int64),
            reconstructed=pl.lit(0, dtype=pl.Int64),
        )
    )
    return pl.concat([origin, curve.select(origin.columns)], how="vertical_relaxed").sort("series", "time", maintain_order=True)


def km_plot(
    curve: pl.DataFrame,
    at_risk: pl.DataFrame,
    medians: pl.DataFrame,
    title: str,
    subtitle: list[str],
) -> alt.VConcatChart:
    """Kaplan–Meier plot with a number-at-risk table under the x-axis, aligned on the same ticks.

    ``curve``: series, time, surv, ci_lower, ci_upper, censored (one row per step, ``survival_curves``) and
    reconstructed (how many of those censorings are at a reconstructed last contact, ``reconstructed_censorings``).
    ``at_risk``: series, month, at_risk, events_cum (``survival_landmarks``). ``medians``: series, median.
    Series are drawn in the order they first appear (the first is the emphasised one); risk-table rows
    are labelled by the cut date in the series name, the legend carries the full name.
    """
    series = curve["series"].unique(maintain_order=True).to_list()
    colours = alt.Scale(domain=series, range=list(SERIES_COLOURS[: len(series)]))
    last = max(cast(float, curve["time"].max()), cast(float | None, at_risk["month"].max()) or 0.0)
    step = tick_step(last)
    ticks = [step * i for i in range(math.ceil(last / step) + 1)]
    x_scale = alt.Scale(domain=[0, ticks[-1]], nice=False, zero=True)
    drawn = _with_origin(thin_curve(curve))
    # The first series (the latest cut) is solid, the others (the published cut) dashed and drawn on top:
    # where two cuts share a step (PFS is often final by the published cut) both stay visible.
    dashes = alt.Scale(domain=series, range=[list(d) for d in SERIES_DASHES[: len(series)]])
    legend = alt.Legend(title=None, orient="top-right", symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1, labelLimit=0, symbolDashOffset=0)
    base = alt.Chart(drawn.to_pandas()).encode(
        x=alt.X("time:Q", scale=x_scale, axis=alt.Axis(values=ticks, title=X_TITLE, grid=False)),
        color=alt.Color("series:N", scale=colours, legend=legend),
    )
    y_scale = alt.Scale(domain=[0, 1])
    y_axis = alt.Axis(values=[0, 0.25, 0.5, 0.75, 1.0], format=".2f", title=Y_TITLE, grid=False)
    # A faint fill per cut, edged by thin lines of its colour: overlapping bands stay two tints with two
    # outlines instead of blending into one grey area.
    band = base.mark_area(interpolate="step-after", opacity=BAND_OPACITY).encode(y=alt.Y("ci_lower:Q", scale=y_scale, axis=y_axis), y2="ci_upper:Q")
    band_edges = [
        base.mark_line(interpolate="step-after", strokeWidth=0.8, opacity=0.7).encode(
            y=alt.Y(f"{bound}:Q", scale=y_scale), strokeDash=alt.StrokeDash("series:N", scale=dashes, legend=None)
        )
        for bound in ("ci_lower", "ci_upper")
    ]
    tooltip = [
        alt.Tooltip("series:N", title="Series"),
        alt.Tooltip("time:Q", title="Month", format=".1f"),
        alt.Tooltip("surv:Q", title="S(t)", format=".3f"),
        alt.Tooltip("ci_lower:Q", title="95% CI lower", format=".3f"),
        alt.Tooltip("ci_upper:Q", title="95% CI upper", format=".3f"),
    ]
    # One layer per series, in series order, so the dashed ones lie on top of the solid one.
    lines = [
        base.transform_filter(alt.datum.series == name)
        .mark_line(interpolate="step-after", strokeWidth=2.5 if i == 0 else 2)
        .encode(y=alt.Y("surv:Q", scale=y_scale), strokeDash=alt.StrokeDash("series:N", scale=dashes, legend=legend), tooltip=tooltip)
        for i, name in enumerate(series)
    ]
    censor_marks = [
        base.transform_filter(alt.datum.censored > alt.datum.reconstructed)
        .mark_point(shape="M0,-1L0,1", size=70, strokeWidth=1.5, filled=False)
        .encode(
            y=alt.Y("surv:Q"),
            tooltip=[alt.Tooltip("time:Q", title="Censored at month", format=".1f"), alt.Tooltip("censored:Q", title="Censored")],
        )
    ]
    if drawn["reconstructed"].sum():
        # Their own mark and legend entry: these times were not recorded, and a reader should not take them for data.
        reconstructed = drawn.filter(pl.col("reconstructed") > 0).with_columns(kind=pl.lit(RECONSTRUCTED_CENSOR))
        censor_marks.append(
            alt.Chart(reconstructed.to_pandas())
            .mark_point(size=80, strokeWidth=2, filled=False, color=RECONSTRUCTED_COLOUR)
            .encode(
                x=alt.X("time:Q", scale=x_scale),
                y=alt.Y("surv:Q", scale=y_scale),
                shape=alt.Shape(
                    "kind:N",
                    scale=alt.Scale(domain=[RECONSTRUCTED_CENSOR], range=["circle"]),
                    legend=alt.Legend(
                        title=None, orient="top-right", labelLimit=0, symbolStrokeColor=RECONSTRUCTED_COLOUR, symbolFillColor="transparent"
                    ),
                ),
                tooltip=[
                    alt.Tooltip("series:N", title="Series"),
                    alt.Tooltip("time:Q", title="Censored at month (reconstructed)", format=".1f"),
                    alt.Tooltip("reconstructed:Q", title="Censored, last contact reconstructed"),
                ],
            )
        )
    reached = medians.filter(pl.col("median").is_not_null())
    median_lines = alt.Chart(reached.with_columns(zero=pl.lit(0.0), half=pl.lit(0.5)).to_pandas()).mark_rule(
        strokeDash=[1.5, 3], color="#555555", strokeWidth=1.5
    )
    most_censor_marks = cast(int | None, drawn.filter(pl.col("censored") > 0).group_by("series").len()["len"].max()) or 0
    layers = [band, *band_edges, *lines] + (censor_marks if most_censor_marks <= MAX_CENSOR_MARKS else [])
    if most_censor_marks > MAX_CENSOR_MARKS:
        subtitle = [*subtitle, f"Censor ticks omitted: more than {MAX_CENSOR_MARKS} censoring times per curve would hide it."]
    if reached.height:
        layers += [
            median_lines.encode(x=alt.X("zero:Q", scale=x_scale), x2="median:Q", y=alt.Y("half:Q", scale=y_scale)),
            median_lines.encode(x=alt.X("median:Q", scale=x_scale), y=alt.Y("zero:Q", scale=y_scale), y2="half:Q"),
        ]
    curve_chart = alt.layer(*layers).properties(width=WIDTH, height=340)
    table = at_risk.filter(pl.col("month").is_in(ticks))
    table = table.with_columns(
        label=pl.Series([f"{compact_count(n)} ({compact_count(e)})" for n, e in zip(table["at_risk"], table["events_cum"])], dtype=pl.String),
        row=pl.col("series").str.extract(r"(\d{4}-\d{2}-\d{2})").fill_null(pl.col("series")),
    )
    risk_table = (
        alt.Chart(table.to_pandas())
        .mark_text(fontSize=11)
        .encode(
            x=alt.X("month:Q", scale=x_scale, axis=None),
            y=alt.Y(
                "row:N",
                sort=table["row"].unique(maintain_order=True).to_list(),
                axis=alt.Axis(title=None, domain=False, ticks=False, labelFontSize=11, labelPadding=30),
            ),
            text="label:N",
            color=alt.Color("series:N", scale=colours, legend=None),
        )
        .properties(
            width=WIDTH,
            height=22 * len(series),
            title=alt.TitleParams("Number at risk (cumulative events)", anchor="start", fontSize=12, fontWeight="normal"),
        )
    )
    return (
        alt.vconcat(curve_chart, risk_table, spacing=8)
        .properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start", fontSize=16, subtitleFontSize=12))
        .configure_view(stroke=None)
    )


NOT_REACHED = "not reached"


# Places of every median interval a chart states, as the paper prints them (Table 2: 2.96~5.24) and the report shows them.
CI_DECIMALS = 2


def interval_text(lower: float | None, upper: float | None, digits: int) -> str:
    """'2.96–5.24', with 'not reached' for a bound the band never gives (R: NA)."""
    return "–".join(NOT_REACHED if b is None else fixed(b, digits) for b in (lower, upper))


def median_caption(row: dict) -> str:
    """'median 4.1 months (95% CI 2.96–5.24)' from a ``survival_summary`` row, or why it is missing.

    Where S(t) = 0.5 over a stretch, R's and SAS's plateau midpoint is named beside SPSS's first crossing.
    """
    if row["median"] is None:
        return f"median {NOT_REACHED} ({row['note']})"
    midpoint = row.get("median_midpoint")
    plateau = f"; R/SAS plateau midpoint {fixed(midpoint, 1)}" if midpoint is not None and abs(midpoint - row["median"]) > 1e-9 else ""
    return f"median {fixed(row['median'], 1)} months{plateau} (95% CI {interval_text(row['ci_lower'], row['ci_upper'], CI_DECIMALS)})"


def no_data(message: str) -> alt.Chart:
    """A placeholder that says why there is nothing to draw."""
    return (
        alt.Chart(pl.DataFrame({"message": [message]}).to_pandas()).mark_text(fontSize=14).encode(text="message:N").properties(width=WIDTH, height=60)
    )


def series_of(cuts: list, latest, published) -> dict:
    """Which cuts to draw and their legend labels: the latest, and the published cut overlaid when it differs."""
    labels = {latest: f"Data cut {latest}" + (" (published)" if latest == published else " (latest)")}
    if published is not None and published != latest and published in cuts:
        labels[published] = f"Data cut {published} (published)"
    return labels


# The method whose median and CI a KM chart's title states, as its subtitle names it, and the names a reader sees of each method.
TITLE_METHOD = "SPSS 24"
METHOD_NAMES = {"SPSS 24": "spss", "log(−log)": "brookmeyer_crowley_loglog"}
# Numbers the KM chart's fixed wording states: 95% CI, S = 1 or 0, S ≤ 0.5, 1.96·SE, SPSS 24.
KM_WORDING_NUMBERS = {"95", "1", "0", "0.5", "1.96", "24"}
_MEDIAN_STATED = re.compile(r"median (not reached|[\d.]+)(?: months)?(?:; R/SAS plateau midpoint [\d.]+)?(?: \(95% CI ([^)]*)\))?")


def title_row(rows: pl.DataFrame, cut) -> dict:
    """The ``survival_summary`` row whose median and CI the title states: the title method's (SPSS's, the paper's) at ``cut``."""
    return rows.filter((pl.col("data_cut") == cut) & (pl.col("method") == METHOD_NAMES[TITLE_METHOD])).row(0, named=True)


def expected_numbers(summary: pl.DataFrame, landmarks: pl.DataFrame, endpoint: str) -> set[str]:
    """Every number a KM chart of ``endpoint`` may state, formatted from the table cells: dates, counts, medians and
    CI bounds of ``survival_summary``, at-risk and cumulative-event counts of ``survival_landmarks``, and its wording's."""
    rows = summary.filter(pl.col("endpoint") == endpoint)
    marks = landmarks.filter(pl.col("endpoint") == endpoint)
    medians = {fixed(v, 1) for v in rows["median"].drop_nulls().to_list() + rows["median_midpoint"].drop_nulls().to_list()}
    bounds = {fixed(v, CI_DECIMALS) for v in rows["ci_lower"].drop_nulls().to_list() + rows["ci_upper"].drop_nulls().to_list()}
    counts = count_texts(rows["n"].to_list() + rows["events"].to_list())
    at_risk = {compact_count(v) for v in marks["at_risk"].to_list() + marks["events_cum"].to_list()}
    cuts = {str(c) for c in rows["data_cut"].to_list()}
    return medians | bounds | counts | at_risk | cuts | KM_WORDING_NUMBERS | {str(MAX_CENSOR_MARKS)}


def _median_mismatch(text: str, row: dict | None, where: str) -> list[str]:
    """Why ``text``'s median and CI are not ``row``'s cells, or nothing."""
    if row is None:
        return [f"{where}: no survival_summary row"]
    found = _MEDIAN_STATED.search(text)
    shown = (found[1], found[2]) if found else None
    expected = (
        (NOT_REACHED, None) if row["median"] is None else (fixed(row["median"], 1), interval_text(row["ci_lower"], row["ci_upper"], CI_DECIMALS))
    )
    if shown == expected:
        return []
    stated = "no median" if shown is None else f"median {shown[0]} (95% CI {shown[1]})"
    return [f"{where} shows {stated}; survival_summary's {row['method']} row has median {expected[0]} (95% CI {expected[1]})"]


def title_mismatches(spec: dict, summary: pl.DataFrame, endpoint: str) -> list[str]:
    """Where a KM chart's title or per-cut subtitle line states a median, CI, n or event count other than the
    ``survival_summary`` row of the method and cut it names. The title's method is read from the subtitle
    ("CI in the title: SPSS 24"), so a title showing another method's interval under SPSS's name fails."""
    rows = {(r["data_cut"], r["method"]): r for r in summary.filter(pl.col("endpoint") == endpoint).iter_rows(named=True)}
    if not rows:
        return []
    title = spec.get("title", {})
    subtitle = [line for line in title.get("subtitle", []) if isinstance(line, str)]
    claimed = re.search(r"CI in the title: (" + "|".join(re.escape(name) for name in METHOD_NAMES) + ")", " ".join(subtitle))
    if claimed is None:
        return ["the subtitle does not name the method of the title's CI"]
    latest = max(cut for cut, _ in rows)
    problems = _median_mismatch(title.get("text", ""), rows.get((latest, METHOD_NAMES[claimed[1]])), f"title ({claimed[1]}, cut {latest})")
    loglog = METHOD_NAMES["log(−log)"]
    for line in subtitle:
        cut_text = re.match(r"Data cut (\d{4}-\d{2}-\d{2})", line)
        if cut_text is None:
            continue
        cut = dt.date.fromisoformat(cut_text[1])
        spss_part, _, loglog_ci = line.partition("; log(−log) CI ")
        spss_row = rows.get((cut, METHOD_NAMES[TITLE_METHOD]))
        problems += _median_mismatch(spss_part, spss_row, f"subtitle, cut {cut} ({TITLE_METHOD})")
        counts = re.search(r"n = ([\d,]+), ([\d,]+) events", line)
        if spss_row is not None and (counts is None or (counts[1], counts[2]) != (f"{spss_row['n']:,}", f"{spss_row['events']:,}")):
            problems.append(f"subtitle, cut {cut}: n and events are not survival_summary's {spss_row['n']:,} and {spss_row['events']:,}")
        loglog_row = rows.get((cut, loglog))
        if loglog_row is not None and loglog_ci != interval_text(loglog_row["ci_lower"], loglog_row["ci_upper"], CI_DECIMALS):
            problems.append(f"subtitle, cut {cut}: log(−log) CI {loglog_ci} is not survival_summary's")
    return problems


def _series_caption(label: str, spss: dict, loglog: dict) -> str:
    loglog_ci = interval_text(loglog["ci_lower"], loglog["ci_upper"], CI_DECIMALS)
    return f"{label}: n = {spss['n']:,}, {spss['events']:,} events; {median_caption(spss)}, SPSS 24; log(−log) CI {loglog_ci}"


def reconstructed_censorings(adtte: pl.DataFrame) -> pl.DataFrame:
    """Per data cut, endpoint and time, how many patients are censored at a reconstructed last-contact time
    (ADTTE ``AVALRFL = "Y"``, ``CNSR = 1``): data_cut, endpoint, time, reconstructed."""
    return (
        adtte.filter((pl.col("AVALRFL") == "Y") & (pl.col("CNSR") == 1))
        .group_by(data_cut="DCUTDT", endpoint="PARAMCD", time="AVAL")
        .agg(reconstructed=pl.len().cast(pl.Int64))
    )


def endpoint_chart(
    curves: pl.DataFrame, landmarks: pl.DataFrame, summary: pl.DataFrame, endpoint: str, published, adtte: pl.DataFrame | None = None
) -> alt.TopLevelMixin:
    """Figure 1A/B for one endpoint from ``survival_curves``, ``survival_landmarks`` and ``survival_summary``;
    ``adtte`` (SUBJID, DCUTDT, PARAMCD, AVAL, CNSR, AVALRFL) marks the censorings at reconstructed last contacts.

    Draws the latest cut; the published cut is overlaid when it is another cut present in the data.
    The title carries the median with SPSS's interval (the paper's), the subtitle the log(−log) interval too.
    """
    if adtte is None:
        curves = curves.with_columns(reconstructed=pl.lit(0, dtype=pl.Int64))
    else:
        curves = curves.join(reconstructed_censorings(adtte), on=["data_cut", "endpoint", "time"], how="left").with_columns(
            pl.col("reconstructed").fill_null(0)
        )
    cuts = curves.filter(pl.col("endpoint") == endpoint)["data_cut"].unique().sort().to_list()
    if not cuts:
        return no_data(f"{ENDPOINT_TITLES[endpoint]}: no patients in any data cut")
    labels = series_of(cuts, cuts[-1], published)
    label_of = pl.col("data_cut").replace_strict(labels, default=None, return_dtype=pl.String)

    def pick(frame: pl.DataFrame) -> pl.DataFrame:
        chosen = frame.filter((pl.col("endpoint") == endpoint) & pl.col("data_cut").is_in(list(labels))).with_columns(series=label_of)
        return (
            chosen.with_columns(_order=pl.col("data_cut").replace_strict({c: i for i, c in enumerate(labels)}, return_dtype=pl.Int64))
            .sort("_order", maintain_order=True)
            .drop("_order")
        )

    rows = pick(summary)
    spss = {r["data_cut"]: r for r in rows.filter(pl.col("method") == "spss").iter_rows(named=True)}
    loglog = {r["data_cut"]: r for r in rows.filter(pl.col("method") == "brookmeyer_crowley_loglog").iter_rows(named=True)}
    title = f"{ENDPOINT_TITLES[endpoint]}: {median_caption(title_row(rows, cuts[-1]))}"
    subtitle = [_series_caption(label, spss[cut], loglog[cut]) for cut, label in labels.items()]
    # Short lines: the longest one sets the picture's width, and a long one left the plot a third of it.
    subtitle += [
        "Shaded and outlined: pointwise 95% CI (log(−log); undefined where S = 1 or 0); ticks: censored;",
        f"dotted: median (first time S ≤ 0.5, SPSS). CI in the title: {TITLE_METHOD} (median ± 1.96·SE), as the paper.",
    ]
    drawn = pick(curves)
    if drawn["reconstructed"].sum():
        subtitle.append("Hollow orange circles: censored at a last contact reconstructed for the paper, not recorded (ADTTE AVALRFL = Y).")
    medians = rows.filter(pl.col("method") == "spss").select("series", "median")
    return km_plot(drawn, pick(landmarks), medians, title, subtitle)
