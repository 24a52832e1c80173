"""The second programme in process: the median history and the 6- and 12-month rates recomputed from ADTTE with
lifelines' Kaplan–Meier, for the tables the independent R program does not read.

Pure functions on Polars frames; each returns the problems found, one sentence each, empty when all agree.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import polars as pl

from lms_assets.audit.verification import TOLERANCE

# The rates a reader quotes: the 6- and 12-month PFS and OS rates.
QUOTED_LANDMARKS = (6.0, 12.0)
# SPSS 24's density band and normal quantile (Collett), written out again here rather than read from the survival
# module, so that a change there shows against this second programme.
SPSS_BAND = (0.55, 0.45)
Z_95 = 1.959963984540054
# Survival probabilities ≤ 0.5 within this count as reaching it (float error in products of fractions).
HALF_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LifelinesCurve:
    """One cut's and endpoint's Kaplan–Meier curve by lifelines, with what the checks read of it."""

    n: int
    events: int
    first_time: float
    last_time: float
    times: np.ndarray  # lifelines' timeline, 0 first
    surv: np.ndarray
    band_lower: np.ndarray  # lifelines' pointwise 95% band (exponential Greenwood: log(−log))
    band_upper: np.ndarray
    greenwood: np.ndarray  # Greenwood's Σ d / (n (n − d)) up to each time
    event_times: np.ndarray

    def at(self, column: np.ndarray, t: float) -> float:
        """The step function ``column`` at ``t`` (its value at the last time ≤ t)."""
        return float(column[np.searchsorted(self.times, t, side="right") - 1])

    def first_time_at_or_below(self, column: np.ndarray, level: float) -> float | None:
        """The first time ``column`` is at or below ``level`` where the band is defined (0 < S < 1), or None."""
        reached = np.flatnonzero((column <= level + HALF_TOLERANCE) & (self.surv > 0) & (self.surv < 1))
        return float(self.times[reached[0]]) if len(reached) else None


def lifelines_curves(adtte: pl.DataFrame) -> dict[tuple[dt.date, str], LifelinesCurve]:
    """Every cut's and endpoint's Kaplan–Meier curve fitted by lifelines on ADTTE (AVAL, event = 1 − CNSR)."""
    from lifelines import KaplanMeierFitter

    curves = {}
    for (cut, endpoint), rows in adtte.group_by("DCUTDT", "PARAMCD"):
        time = rows["AVAL"].cast(pl.Float64).to_numpy()
        event = (1 - rows["CNSR"]).to_numpy()
        fitted = KaplanMeierFitter().fit(time, event)
        table = fitted.event_table
        at_risk, died = table["at_risk"].to_numpy().astype(float), table["observed"].to_numpy().astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(died > 0, died / (at_risk * (at_risk - died)), 0.0)
        band = fitted.confidence_interval_survival_function_
        curves[(cast(dt.date, cut), cast(str, endpoint))] = LifelinesCurve(
            n=len(time),
            events=int(event.sum()),
            first_time=float(time.min()),
            last_time=float(time.max()),
            times=fitted.survival_function_.index.to_numpy(dtype=float),
            surv=fitted.survival_function_.to_numpy()[:, 0],
            band_lower=band[f"{fitted.label}_lower_0.95"].to_numpy(),
            band_upper=band[f"{fitted.label}_upper_0.95"].to_numpy(),
            greenwood=np.cumsum(terms),
            event_times=table.index.to_numpy(dtype=float)[died > 0],
        )
    return curves


def _spss(curve: LifelinesCurve) -> tuple[float | None, float | None, float | None]:
    """SPSS 24's median and CI (median ± 1.96·SE, SE = Greenwood SE of S(median) over Collett's density) on ``curve``."""
    surv_at_events = np.array([curve.at(curve.surv, t) for t in curve.event_times])
    reached = np.flatnonzero(surv_at_events <= 0.5 + HALF_TOLERANCE)
    if not len(reached):
        return None, None, None
    median = float(curve.event_times[reached[0]])
    s_median = float(surv_at_events[reached[0]])
    above = np.flatnonzero(surv_at_events >= SPSS_BAND[0] - HALF_TOLERANCE)
    below = np.flatnonzero(surv_at_events <= SPSS_BAND[1] + HALF_TOLERANCE)
    if not len(above) or not len(below) or s_median == 0:
        return median, None, None
    u, low = above[-1], below[0]
    density = (surv_at_events[u] - surv_at_events[low]) / (curve.event_times[low] - curve.event_times[u])
    se = s_median * math.sqrt(curve.at(curve.greenwood, median)) / density
    return median, median - Z_95 * se, median + Z_95 * se


def _differs(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None or (isinstance(ours, float) and math.isnan(ours)):
        return (ours is None or math.isnan(ours)) != (theirs is None)
    return abs(ours - theirs) > TOLERANCE * max(1.0, abs(theirs))


def median_history_problems(history: pl.DataFrame, adtte: pl.DataFrame) -> list[str]:
    """Where ``median_history`` departs from lifelines on ADTTE: every cut and endpoint present, with its n, events and median;
    the SPSS rows' CI recomputed (Collett's SE on lifelines' curve) and the Brookmeyer–Crowley rows' CI where lifelines'
    log(−log) band first reaches 0.5 (null where it never does)."""
    curves = lifelines_curves(adtte)
    problems = []
    shown = set(zip(history["data_cut"].to_list(), history["endpoint"].to_list()))
    problems += [f"{cut} {endpoint}: in ADTTE but not in the history" for cut, endpoint in sorted(set(curves) - shown)]
    for row in history.iter_rows(named=True):
        key = (row["data_cut"], row["endpoint"])
        curve = curves.get(key)
        if curve is None:
            problems.append(f"{key[0]} {key[1]}: in the history but not in ADTTE")
            continue
        median, spss_lower, spss_upper = _spss(curve)
        if row["method"] == "spss":
            lower, upper = spss_lower, spss_upper
        else:
            # The band's lower edge reaches 0.5 first: it gives the CI's lower end.
            lower = curve.first_time_at_or_below(curve.band_lower, 0.5)
            upper = curve.first_time_at_or_below(curve.band_upper, 0.5)
        expected = {"n": curve.n, "events": curve.events, "median": median, "ci_lower": lower, "ci_upper": upper}
        problems += [
            f"{row['data_cut']} {row['endpoint']} {row['method']} {name}: {row[name]} in the history, lifelines {value}"
            for name, value in expected.items()
            if _differs(row[name], value)
        ]
    return problems


def landmark_problems(landmarks: pl.DataFrame, adtte: pl.DataFrame, months: tuple[float, ...] = QUOTED_LANDMARKS) -> list[str]:
    """Where the 6- and 12-month rows of ``survival_landmarks`` depart from lifelines on ADTTE: patients at risk
    (AVAL ≥ t, counted), S(t) and its log(−log) band (null beyond the last observed time)."""
    curves = lifelines_curves(adtte)
    problems = []
    for (cut, endpoint), curve in sorted(curves.items()):
        for month in months:
            rows = landmarks.filter((pl.col("data_cut") == cut) & (pl.col("endpoint") == endpoint) & (pl.col("month") == month))
            if month > curve.last_time:
                expected: dict[str, float | None] = {"surv": None, "ci_lower": None, "ci_upper": None}
                if rows.is_empty():
                    continue  # the grid stops at the last observed time's landmark
            else:
                surv = curve.at(curve.surv, month)
                # The band is undefined at S = 1 and S = 0, except before the first observed time, where R gives [1, 1].
                band = 0 < surv < 1
                before_first = month < curve.first_time
                expected = {
                    "surv": surv,
                    "ci_lower": curve.at(curve.band_lower, month) if band else (1.0 if before_first else None),
                    "ci_upper": curve.at(curve.band_upper, month) if band else (1.0 if before_first else None),
                }
            if rows.height != 1:
                problems.append(f"{cut} {endpoint} month {month:g}: {rows.height} rows, one expected")
                continue
            row = rows.row(0, named=True)
            at_risk = int((adtte.filter((pl.col("DCUTDT") == cut) & (pl.col("PARAMCD") == endpoint))["AVAL"] >= month).sum())
            problems += [
                f"{cut} {endpoint} month {month:g} {name}: {row[name]} in the table, lifelines {value}"
                for name, value in {"at_risk": at_risk, **expected}.items()
                if _differs(row[name], value)
            ]
    return problems
