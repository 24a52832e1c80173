"""Kaplan–Meier estimation and the median-survival confidence interval of SPSS 24.

Pure functions on Polars frames and plain sequences; no Dagster imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import polars as pl

Z_95 = 1.959963984540054


def km_table(time: Sequence[float], event: Sequence[int]) -> pl.DataFrame:
    """Kaplan–Meier product-limit table: one row per distinct time, tied events forming one step.

    Columns: time, at_risk, events, censored, surv, greenwood_var (Greenwood's variance of S(t)).
    Censorings tied with an event at t count as at risk at t, as in SPSS, SAS and lifelines.
    """
    frame = pl.DataFrame({"time": list(time), "event": list(event)}, schema={"time": pl.Float64, "event": pl.Int64})
    n = frame.height
    steps = (
        frame.group_by("time")
        .agg(events=pl.col("event").sum(), removed=pl.len())
        .sort("time")
        .with_columns(censored=pl.col("removed") - pl.col("events"))
        .with_columns(at_risk=(n - pl.col("removed").cum_sum() + pl.col("removed")).cast(pl.Int64))
    )
    step_factor = 1 - pl.col("events") / pl.col("at_risk")
    greenwood_term = pl.when(pl.col("at_risk") > pl.col("events")).then(
        pl.col("events") / (pl.col("at_risk") * (pl.col("at_risk") - pl.col("events")))
    ).otherwise(float("nan"))
    return steps.with_columns(
        surv=step_factor.cum_prod(),
        greenwood_sum=greenwood_term.cum_sum(),
    ).select(
        "time",
        "at_risk",
        pl.col("events").cast(pl.Int64),
        pl.col("censored").cast(pl.Int64),
        "surv",
        greenwood_var=pl.col("surv") ** 2 * pl.col("greenwood_sum"),
    )


@dataclass(frozen=True)
class MedianEstimate:
    """A median survival time with its standard error and 95% interval; None where not estimable."""

    median: float | None
    se: float | None
    ci_lower: float | None
    ci_upper: float | None
    note: str | None


def spss_median_ci(time: Sequence[float], event: Sequence[int]) -> MedianEstimate:
    """SPSS 24 median: first event time with S ≤ 0.5; SE by Collett's density f = (S(u)−S(l))/(l−u); CI = median ± 1.96·SE.

    u is the last event time with S ≥ 0.55 and l the first event time with S ≤ 0.45;
    only event times are candidates.
    """
    table = km_table(time, event).filter(pl.col("events") > 0)
    at_or_below_half = table.filter(pl.col("surv") <= 0.5)
    if at_or_below_half.is_empty():
        return MedianEstimate(None, None, None, None, "median not reached: S(t) stays above 0.5")
    median_row = at_or_below_half.row(0, named=True)
    median = median_row["time"]
    upper_steps = table.filter(pl.col("surv") >= 0.55)
    lower_steps = table.filter(pl.col("surv") <= 0.45)
    if upper_steps.is_empty():
        return MedianEstimate(median, None, None, None, "no event time with S ≥ 0.55, so SPSS's SE is undefined")
    if lower_steps.is_empty():
        return MedianEstimate(median, None, None, None, "no event time with S ≤ 0.45, so SPSS's SE is undefined")
    u = upper_steps.row(-1, named=True)
    low = lower_steps.row(0, named=True)
    density = (u["surv"] - low["surv"]) / (low["time"] - u["time"])
    se = math.sqrt(median_row["greenwood_var"]) / density
    return MedianEstimate(median, se, median - Z_95 * se, median + Z_95 * se, None)
