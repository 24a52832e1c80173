"""The Kaplan–Meier estimator: product-limit steps, the log(−log) band, and the median by first crossing, by R's plateau
midpoint and with Brookmeyer–Crowley's interval.

Pure functions on Polars frames; no Dagster imports. Product-limit steps and the band are Polars expressions, so
the cost grows with the number of patients only through one aggregation. ``survival`` builds the study's tables
from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import polars as pl

Z_95 = 1.959963984540054
# S(t) is a product of floats: 5/10 may come out as 0.5000000000000001 and must still count as "≤ 0.5".
TOLERANCE = 1e-9


def km_steps(frame: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Kaplan–Meier product-limit estimate per group: one row per distinct time, tied events forming one step.

    ``frame`` has ``time`` (f64), ``event`` (1 event, 0 censored), the ``by`` columns and optionally
    ``count`` (patients sharing the row; 1 if absent). Returns ``by``, time, at_risk, events, censored,
    surv and std_err (Greenwood's SE of S(t); null where S(t) = 0, where Greenwood's formula divides by
    zero). A censoring tied with an event at t counts as at risk at t, as in SPSS, SAS, R and lifelines.
    Rows are sorted by ``by`` and time, so every sum below runs in one order and re-runs are bit-identical.
    """
    keys = list(by)

    def within(expr: pl.Expr) -> pl.Expr:
        return expr.over(keys) if keys else expr

    if "count" in frame.columns:
        totals = {"events": (pl.col("event") * pl.col("count")).sum(), "removed": pl.col("count").sum()}
    else:
        totals = {"events": pl.col("event").sum(), "removed": pl.len()}
    steps = frame.group_by(*keys, "time").agg(**{name: expr.cast(pl.Int64) for name, expr in totals.items()}).sort(*keys, "time")
    removed_before = within(pl.col("removed").cum_sum()) - pl.col("removed")
    steps = steps.with_columns(
        at_risk=within(pl.col("removed").sum()) - removed_before,
        censored=pl.col("removed") - pl.col("events"),
    )
    greenwood_term = pl.when(pl.col("at_risk") > pl.col("events")).then(
        pl.col("events") / (pl.col("at_risk") * (pl.col("at_risk") - pl.col("events")))
    )
    return steps.with_columns(
        surv=within((1 - pl.col("events") / pl.col("at_risk")).cum_prod()),
        greenwood_sum=within(greenwood_term.cum_sum()),
    ).select(
        *keys,
        "time",
        "at_risk",
        "events",
        "censored",
        "surv",
        std_err=pl.col("surv") * pl.col("greenwood_sum").sqrt(),
    )


def km_table(time: Sequence[float], event: Sequence[int]) -> pl.DataFrame:
    """Kaplan–Meier product-limit table of one sample (see ``km_steps``)."""
    frame = pl.DataFrame({"time": time, "event": event}, schema={"time": pl.Float64, "event": pl.Int64})
    return km_steps(frame)


def first_time_at_or_below(steps: pl.DataFrame, column: str, level: float) -> float | None:
    """First-crossing rule of SPSS and lifelines: the first time at which ``column`` is ≤ ``level`` (None if never; nulls never cross)."""
    hit = steps.filter(pl.col(column) <= level + TOLERANCE)
    return cast(float, hit["time"][0]) if hit.height else None


def plateau_midpoint_median(steps: pl.DataFrame) -> float | None:
    """Median by R's ``quantile.survfit`` and SAS PROC LIFETEST: where S(t) = 0.5 exactly over a stretch, its midpoint.

    The midpoint of the first time with S ≤ 0.5 and the first time with S < 0.5 (the same time when S
    jumps past 0.5; the last observed time when S never drops below 0.5). None if S stays above 0.5.
    """
    reached = first_time_at_or_below(steps, "surv", 0.5)
    if reached is None:
        return None
    below = steps.filter(pl.col("surv") < 0.5 - TOLERANCE)
    end = cast(float, below["time"][0] if below.height else steps["time"].max())
    return (reached + end) / 2


@dataclass(frozen=True)
class MedianEstimate:
    """A median survival time with its standard error and 95% interval; None where not estimable (see ``note``)."""

    median: float | None
    se: float | None
    ci_lower: float | None
    ci_upper: float | None
    note: str | None


def brookmeyer_crowley_median(steps: pl.DataFrame) -> MedianEstimate:
    """Brookmeyer–Crowley: the median's 95% CI is where the pointwise band crosses 0.5 (lower band → lower bound).

    ``steps`` carries ``surv``, ``ci_lower`` and ``ci_upper`` (see ``with_loglog_band``); the median is the
    first crossing (see ``plateau_midpoint_median`` for R's). A bound is read only where the band is
    defined: the band is null at S = 0, so a band that has not crossed 0.5 before S reaches 0 gives a
    bound that is not reached (None), as R's ``quantile.survfit`` gives NA. No SE exists.
    """
    median = first_time_at_or_below(steps, "surv", 0.5)
    lower = first_time_at_or_below(steps, "ci_lower", 0.5)
    upper = first_time_at_or_below(steps, "ci_upper", 0.5)
    reasons = [
        reason
        for value, reason in (
            (median, "median not reached: S(t) stays above 0.5"),
            (lower, "lower bound not reached: the defined lower band stays above 0.5"),
            (upper, "upper bound not reached: the defined upper band stays above 0.5"),
        )
        if value is None
    ]
    return MedianEstimate(median, None, lower, upper, "; ".join(reasons) or None)


def with_loglog_band(steps: pl.DataFrame) -> pl.DataFrame:
    """Log(−log) pointwise 95% band of S(t) (“exponential Greenwood”: R's ``conf.type = "log-log"``, lifelines' default).

    Adds ci_lower and ci_upper: S^exp(±1.96·σ/|log S|) with σ = SE(S)/S, σ² = Σ d/(n(n−d)). Null where
    the transform is undefined, as in R: where S = 1 (before the first event) and where S = 0 (lifelines
    writes 1/1 and 0/0 there, and its 0 at S = 0 would read as a crossing of 0.5). Row by row, so any
    number of groups of ``km_steps`` at once.
    """
    log_surv = pl.col("surv").log()
    exponent = (Z_95 * pl.col("std_err") / pl.col("surv") / log_surv.abs()).exp()
    defined = (pl.col("surv") > 0) & (pl.col("surv") < 1)
    return steps.with_columns(
        ci_lower=pl.when(defined).then(pl.col("surv").pow(exponent)),
        ci_upper=pl.when(defined).then(pl.col("surv").pow(1 / exponent)),
    )
