"""What a placement of the living patients' last contacts fixes of the OS statistics, for every placement at once.

Pure NumPy/Polars; no Dagster. Kaplan–Meier S(t) depends only on the gaps; the numbers at risk and the
reverse-KM follow-up depend on the time inside a gap, so they are intervals spanning what the gap and the
patient's own bounds allow. Each runs over the placements in chunks of ``batched.MEMORY_BUDGET``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from lms_assets.audit.reconstructions import Placements, gaps_of
from lms_assets.tables import batched, kaplan_meier


def _by_chunks(compute: Callable[[np.ndarray], tuple[np.ndarray, ...]], gaps: np.ndarray, bytes_per_row: int) -> tuple[np.ndarray, ...]:
    """``compute`` on the placements ``gaps`` a chunk of rows at a time, each of its arrays joined over the chunks."""
    parts = [compute(gaps[rows]) for rows in batched.row_chunks(len(gaps), bytes_per_row)]
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def landmark_rates(deaths: np.ndarray, gaps: np.ndarray, months: npt.ArrayLike) -> np.ndarray:
    """Kaplan–Meier S(t) at each landmark for every placement: (N, M). Depends on the gaps only."""
    distinct, counts = np.unique(deaths, return_counts=True)
    deaths_from = counts[::-1].cumsum()[::-1]  # deaths at or after each distinct death time
    upto = distinct[None, :] <= np.asarray(months, dtype=float)[:, None]  # (M, D)

    def rates(chunk: np.ndarray) -> tuple[np.ndarray]:
        # A censoring in gap g is at risk at death time k when g > k.
        censored_from = (chunk[:, :, None] > np.arange(len(distinct))[None, None, :]).sum(axis=1)
        steps = 1.0 - counts[None, :] / (deaths_from[None, :] + censored_from)
        # A product, not exp(Σ log): the last step may reach S = 0.
        return (np.where(upto[None, :, :], steps[:, None, :], 1.0).prod(axis=2),)

    return _by_chunks(rates, gaps, 8 * len(distinct) * (gaps.shape[1] + len(upto) + 3))[0]


def os_curve_envelope(placements: Placements, shipped_times: Sequence[float]) -> pl.DataFrame:
    """The Kaplan–Meier OS curve's lowest and highest S(t) at each death time over the placements, beside the shipped curve's."""
    times = np.unique(placements.death_times)
    curves = landmark_rates(placements.death_times, placements.gaps, times)
    shipped = landmark_rates(placements.death_times, gaps_of(shipped_times, placements.death_times)[None, :], times)[0]
    return pl.DataFrame({"time": times, "surv_min": curves.min(axis=0), "surv_max": curves.max(axis=0), "surv_shipped": shipped})


def time_bounds(p: Placements, gaps: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Earliest and latest time each censored patient can have inside its gap: (N, C) each."""
    return np.maximum(p.gap_lo[gaps], lower), np.minimum(p.gap_hi[gaps], upper)


def at_risk_bounds(p: Placements, gaps: np.ndarray, lower: np.ndarray, upper: np.ndarray, months: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fewest and most patients at risk (time ≥ t) at each landmark for every placement: (N, M) each."""
    t = np.asarray(months, dtype=float)[None, None, :]
    dying_later = (p.death_times[None, :] >= t[0, :, :].T).sum(axis=1)

    def bounds(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        earliest, _ = time_bounds(p, chunk, lower, upper)
        fewest = dying_later[None, :] + (earliest[:, :, None] >= t).sum(axis=1)
        # Reaching t needs the gap's open end beyond it and the patient's own (closed) upper bound at or beyond it.
        can_reach = (p.gap_hi[chunk][:, :, None] > t) & (np.broadcast_to(upper, chunk.shape)[:, :, None] >= t)
        return fewest, dying_later[None, :] + can_reach.sum(axis=1)

    fewest, most = _by_chunks(bounds, gaps, 8 * gaps.shape[1] * (3 * t.size + 3))
    return fewest, most


@dataclass(frozen=True)
class FollowUp:
    """Bounds of the reverse-KM median follow-up and of the shortest and longest observed time, per placement."""

    median_lo: np.ndarray
    median_hi: np.ndarray
    min_lo: np.ndarray
    min_hi: np.ndarray
    max_lo: np.ndarray
    max_hi: np.ndarray


def followup_bounds(p: Placements, gaps: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> FollowUp:
    """Reverse Kaplan–Meier (censoring is the event) median follow-up, and the range, as intervals per placement.

    The reverse curve's steps depend only on the gaps: sorted by gap, the j-th censoring has at risk the deaths
    after its gap and the C − j censorings from it on. The median is the first censoring where the curve is
    ≤ 0.5; being the k-th within its gap, its time lies between the k-th smallest earliest and latest times
    of the patients in that gap. A censoring is taken strictly after a death it falls on (the gap's interior).
    """
    n_cens = gaps.shape[1]
    first_death, last_death = p.death_times.min(), p.death_times.max()

    def bounds(chunk: np.ndarray) -> tuple[np.ndarray, ...]:
        earliest, latest = time_bounds(p, chunk, lower, upper)
        order = np.argsort(chunk, axis=1, kind="stable")
        sorted_gaps = np.take_along_axis(chunk, order, axis=1)
        deaths_after = (p.death_times[None, None, :] >= p.gap_hi[sorted_gaps][:, :, None]).sum(axis=2)
        at_risk = deaths_after + (n_cens - np.arange(n_cens))[None, :]
        curve = np.cumprod(1.0 - 1.0 / at_risk, axis=1)
        reached = curve <= 0.5 + kaplan_meier.TOLERANCE
        position = np.argmax(reached, axis=1)
        median_gap = sorted_gaps[np.arange(len(chunk)), position]
        rank = position - np.argmax(sorted_gaps == median_gap[:, None], axis=1)
        in_gap = chunk == median_gap[:, None]
        kth = np.arange(len(chunk)), rank
        median_lo = np.sort(np.where(in_gap, earliest, np.inf), axis=1)[kth]
        median_hi = np.sort(np.where(in_gap, latest, np.inf), axis=1)[kth]
        missing = ~reached.any(axis=1)
        median_lo[missing] = np.nan
        median_hi[missing] = np.nan
        return (
            median_lo,
            median_hi,
            np.minimum(first_death, earliest.min(axis=1)),
            np.minimum(first_death, latest.min(axis=1)),
            np.maximum(last_death, earliest.max(axis=1)),
            np.maximum(last_death, latest.max(axis=1)),
        )

    return FollowUp(*_by_chunks(bounds, gaps, 8 * n_cens * (len(p.death_times) + 16)))
