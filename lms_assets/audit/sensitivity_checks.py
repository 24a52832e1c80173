"""What the sensitivity table must obey whatever the records are: the blocking checks of ``sensitivity_ranges``.

Pure NumPy/Polars; no Dagster. Each function returns its problems as sentences (none when the table holds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl

from lms_assets.audit.placement_statistics import at_risk_bounds, followup_bounds, time_bounds
from lms_assets.audit.reconstructions import Placements
from lms_assets.audit.sensitivity import LANDMARK_MONTHS
from lms_assets.audit.sensitivity_inputs import Study
from lms_assets.tables import kaplan_meier

# A range's ends and the shipped value are compared to this: they are computed from the same float times.
RANGE_TOLERANCE = 1e-9
# Months from one date to another differ by convention (calendar months, 365.25/12 days, 365.2425/12 days) by up to
# about two days (a February counted as a whole month or as 28 days); a 30-day month is off by half a month over
# the shipped study's 39.
WINDOW_TOLERANCE_MONTHS = 0.1
# A concrete reconstruction places each censored time this far (as a share of its gap) inside its gap, never on a
# death it could be read as tied with; its statistics then reach a range's end to within EXTREME_TOLERANCE months.
INSIDE_GAP = 1e-6
EXTREME_TOLERANCE = 1e-3


def ranges_hold_the_shipped_value(table: pl.DataFrame) -> list[str]:
    """Rows whose range does not hold the shipped reconstruction's own value, or whose shares add up to more than all.

    The shipped reconstruction is one of the consistent ones, so its value must lie between the minimum and maximum.
    """
    ranged = table.filter(pl.col("minimum").is_not_null() & pl.col("shipped").is_not_null())
    outside = ranged.filter((pl.col("shipped") < pl.col("minimum") - RANGE_TOLERANCE) | (pl.col("shipped") > pl.col("maximum") + RANGE_TOLERANCE))
    problems = [f"{r['result']}: shipped {r['shipped']:.6g} outside {r['minimum']:.6g}–{r['maximum']:.6g}" for r in outside.iter_rows(named=True)]
    overfull = table.filter(pl.col("holds") + pl.col("fails") > 1 + RANGE_TOLERANCE)
    problems += [f"{r['result']}: holds {r['holds']:.4f} + fails {r['fails']:.4f} > 1" for r in overfull.iter_rows(named=True)]
    return problems


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months, its day of the month clamped to the target month's length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def calendar_months(start: dt.date, end: dt.date) -> float:
    """Months from ``start`` to ``end`` on the calendar: whole months, then the days left as a share of the next month.

    A second route to ``os_window``'s day count, so that a wrong month length in one shows against the other.
    """
    whole = (end.year - start.year) * 12 + end.month - start.month
    if _add_months(start, whole) > end:
        whole -= 1
    anchor, following = _add_months(start, whole), _add_months(start, whole + 1)
    return whole + (end - anchor).days / (following - anchor).days


def window_problems(study: Study, table: pl.DataFrame, cut: dt.date, enrolment_start: dt.date, enrolment_end: dt.date) -> list[str]:
    """Where the living patients' OS bounds, or the follow-up ranges built on them, depart from the study's dates.

    A patient alive at ``cut`` started between ``enrolment_start`` and ``enrolment_end`` (study.toml), so their
    time is at least the months from the end of enrolment to the cut (or their PFS) and at most those from its
    start; both are recounted on the calendar here, and no follow-up range may end beyond the longest.
    """
    shortest, longest = calendar_months(enrolment_end, cut), calendar_months(enrolment_start, cut)
    censored = study.died == 0
    expected_lower = np.maximum(study.pfs[censored], shortest)
    late = study.subjid[censored][np.abs(study.upper[censored] - longest) > WINDOW_TOLERANCE_MONTHS]
    early = study.subjid[censored][np.abs(study.lower[censored] - expected_lower) > WINDOW_TOLERANCE_MONTHS]
    problems = []
    if len(late):
        upper = study.upper[censored][np.isin(study.subjid[censored], late)]
        problems.append(
            f"patients {', '.join(map(str, late))}: latest OS time {', '.join(f'{u:.2f}' for u in np.unique(upper))} months, "
            f"but {enrolment_start} to the cut {cut} is {longest:.2f} calendar months"
        )
    if len(early):
        problems.append(
            f"patients {', '.join(map(str, early))}: earliest OS time not the later of their PFS and the {shortest:.2f} calendar "
            f"months from {enrolment_end} to the cut {cut}"
        )
    beyond = table.filter(pl.col("result").str.starts_with("followup.") & (pl.col("maximum") > longest + WINDOW_TOLERANCE_MONTHS))
    problems += [
        f"{r['result']}: maximum {r['maximum']:.2f} months beyond the {longest:.2f} calendar months from {enrolment_start} to the cut"
        for r in beyond.unique("result", keep="first", maintain_order=True).iter_rows(named=True)
    ]
    return problems


def _concrete_times(study: Study, p: Placements, gaps: np.ndarray, where: float) -> np.ndarray:
    """Every patient's OS time under one placement, each censored time ``where`` of the way through what its gap allows."""
    earliest, latest = time_bounds(p, gaps, p.lower, p.upper)
    times = study.os.astype(float)
    times[study.died == 0] = earliest + (latest - earliest) * np.clip(where, INSIDE_GAP, 1 - INSIDE_GAP)
    return times


def extremes_problems(study: Study, p: Placements, table: pl.DataFrame) -> list[str]:
    """Where a follow-up or at-risk range's end is not what a concrete reconstruction at that end gives.

    For each end, the placement the batched formulas put it at is made concrete (every censored time at the start
    or the end of what its gap and bounds allow) and its statistic recomputed directly: the reverse Kaplan–Meier
    median by ``kaplan_meier.km_table``, the range and the numbers at risk by counting. A formula that misplaces an end
    shows as a difference; the ranges' own test (test_sensitivity) checks the formulas against brute force.
    """
    bounds = followup_bounds(p, p.gaps, p.lower, p.upper)
    fewest, most = at_risk_bounds(p, p.gaps, p.lower, p.upper, LANDMARK_MONTHS)

    def reverse_median(times: np.ndarray) -> float:
        median = kaplan_meier.first_time_at_or_below(kaplan_meier.km_table(times.tolist(), (1 - study.died).tolist()), "surv", 0.5)
        return np.nan if median is None else median

    statistics: dict[str, tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], float], float]] = {
        "followup.median": (bounds.median_lo, bounds.median_hi, reverse_median, EXTREME_TOLERANCE),
        "followup.min": (bounds.min_lo, bounds.min_hi, lambda times: float(times.min()), EXTREME_TOLERANCE),
        "followup.max": (bounds.max_lo, bounds.max_hi, lambda times: float(times.max()), EXTREME_TOLERANCE),
    }

    def at_risk(month: float) -> Callable[[np.ndarray], float]:
        return lambda times: float((times >= month).sum())

    for j, month in enumerate(LANDMARK_MONTHS):
        statistics[f"os.landmark.{month:g}m.at_risk"] = (fewest[:, j], most[:, j], at_risk(month), 0.0)
    reported = {r["result"]: r for r in table.unique("result", keep="first", maintain_order=True).iter_rows(named=True)}
    problems = []
    for result, (lo, hi, recompute, tolerance) in statistics.items():
        row = reported.get(result)
        if row is None or row["minimum"] is None:
            continue
        for end, values, where, pick in (("minimum", lo, 0.0, np.nanargmin), ("maximum", hi, 1.0, np.nanargmax)):
            concrete = recompute(_concrete_times(study, p, p.gaps[int(pick(values))], where))
            if not abs(concrete - row[end]) <= tolerance:
                problems.append(f"{result}: {end} {row[end]:.4f}, but the reconstruction at that end gives {concrete:.4f}")
    return problems
