"""What the paper's data permits: every result that rests on reconstructed inputs, over all reconstructions consistent with the paper.

Pure NumPy/Polars; no Dagster. A *reconstruction* is one choice of everything the paper does not print:

* **OS placement**: which gap between the 12 death times each living patient's last contact falls in, for
  every labelled assignment that respects each patient's bounds (at least the PFS, inside the enrolment
  window, at most the follow-up cut) and reproduces the printed median and a reachable printed 95% CI under
  the paper's (SPSS) method. Kaplan–Meier, log-rank and Cox depend on the times only through these gaps;
  statistics that depend on the time inside a gap (follow-up, numbers at risk) are intervals spanning the
  gap's bounds.
* **Allocation**: which patients have each primary site (Table 1's counts; the uterine primary is female)
  and each starting dose (Table 1's counts). Dose reductions, discontinuations and adverse-event episodes
  feed only the counts printed as their constraints, so every consistent reconstruction prints the same.

Each result carries a binary *conclusion* (p ≥ 0.05, agrees with the printed value, …) and the share of
reconstructions where it holds, fails, or depends on the time inside a gap; the verdict is ``robust``
(one outcome everywhere), ``depends on the reconstruction`` or ``fixed by the paper`` (no reconstructed input).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from lms_assets.adam.adsl import ALLOCATED_VARIABLES, derive_adsl
from lms_assets.adam.adtte import derive_adtte
from lms_assets.audit.basis import basis_of
from lms_assets.audit.feasibility import bound_enumeration, os_feasibility
from lms_assets.records import boundary, schemas, validation

# Aliased: this module's own Study is the sensitivity computation's arrays.
from lms_assets.records.study import Study as StudyFile
from lms_assets.records.study import load_study
from lms_assets.tables import printed as fig
from lms_assets.tables import survival

ROBUST = "robust"
DEPENDS = "depends on the reconstruction"
FIXED = "fixed by the paper"

LANDMARK_MONTHS = (6.0, 12.0, 24.0)
# A landmark rate is "the same" when it rounds to the same percentage point, the precision a reader quotes.
RATE_DECIMALS = 2
# Sites only a patient of one sex can have (provenance.csv: "Uterus only for a female patient"), by registry slug.
SEX_RESTRICTED_SITES = {"uterus": "F"}
# Labelled placements are expanded from gap multisets by permuting the censored patients: C! rows per multiset.
MAX_CENSORED = 9
# Shares from the two halves of this sample agree to within half a percentage point on the shipped study.
DEFAULT_SAMPLE = 50_000
DEFAULT_SEED = 20  # issue 20
# Cox Newton–Raphson: a binary covariate's β beyond this is a monotone likelihood (HR → 0 or ∞), not an estimate.
COX_MAX_ABS_BETA = 15.0
COX_ITERATIONS = 60
COX_TOLERANCE = 1e-10

SENSITIVITY_SCHEMA = {
    "result": pl.String,
    "figure_id": pl.String,
    "label": pl.String,
    "rests_on": pl.String,
    "coverage": pl.String,
    "reconstructions": pl.Int64,
    "shipped": pl.Float64,
    "minimum": pl.Float64,
    "maximum": pl.Float64,
    "conclusion": pl.String,
    "holds": pl.Float64,
    "fails": pl.Float64,
    "verdict": pl.String,
    "sensitivity_range": pl.String,
    "note": pl.String,
}


# --- batched survival statistics ------------------------------------------------------------------------------


def risk_sets(until: np.ndarray, event_index: np.ndarray, group: np.ndarray, n_times: int, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Patients at risk and events per reconstruction, event time and group: two (R, T, K) integer arrays.

    ``until[r, p]``: patient p is at risk at the first ``until`` event times (``searchsorted(times, t, "right")``,
    so a censoring tied with an event is at risk at it); ``event_index[r, p]``: the event time index of p's
    event, −1 if censored; ``group[r, p]`` in 0..K−1, or −1 to leave p out. Rows broadcast against each other.
    """
    until, event_index, group = np.broadcast_arrays(until, event_index, group)
    n_rec = until.shape[0]
    rows = np.broadcast_to(np.arange(n_rec)[:, None], until.shape)
    kept = group >= 0
    base = (rows[kept] * n_groups + group[kept]) * (n_times + 1)
    leaving = np.bincount(base + until[kept], minlength=n_rec * n_groups * (n_times + 1)).reshape(n_rec, n_groups, n_times + 1)
    # At risk at time t: every patient whose ``until`` exceeds t.
    at_risk = np.cumsum(leaving[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]
    has_event = kept & (event_index >= 0)
    events = np.bincount(
        (rows[has_event] * n_groups + group[has_event]) * (n_times + 1) + event_index[has_event],
        minlength=n_rec * n_groups * (n_times + 1),
    ).reshape(n_rec, n_groups, n_times + 1)[:, :, :n_times]
    return at_risk.transpose(0, 2, 1), events.transpose(0, 2, 1)


def logrank(at_risk: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Log-rank (Mantel–Haenszel, hypergeometric variance) p-value of K groups, for every reconstruction: (R,) floats.

    Groups empty in a reconstruction are dropped from it; NaN where fewer than two groups remain or no
    event carries information. The same statistic as lifelines' ``multivariate_logrank_test``.
    """
    n_rec, _, n_groups = at_risk.shape
    if n_groups == 2:
        return _logrank_two(at_risk, events)
    n = at_risk.astype(float)
    d = events.astype(float)
    total_n = n.sum(axis=2, keepdims=True)
    total_d = d.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total_n > 0, n / total_n, 0.0)
        spread = np.where(total_n > 1, total_d * (total_n - total_d) / (total_n - 1), 0.0)
    observed_minus_expected = (d - total_d * share).sum(axis=1)
    # V_kl = Σ_t spread_t · share_tk · (δ_kl − share_tl)
    spread = spread[:, :, 0]
    covariance = np.einsum("rt,rtk->rk", spread, share)[:, :, None] * np.eye(n_groups)[None] - np.einsum(
        "rt,rtk,rtl->rkl", spread, share, share, optimize=True
    )
    present = at_risk.sum(axis=1) > 0
    pattern = present @ (1 << np.arange(n_groups))
    p = np.full(n_rec, np.nan)
    for code in np.unique(pattern):
        rows = pattern == code
        kept = np.flatnonzero((code >> np.arange(n_groups)) & 1)
        if len(kept) < 2:
            continue
        # One group is redundant (the deviations sum to zero): drop the last present one.
        use = kept[:-1]
        u = observed_minus_expected[rows][:, use]
        v = covariance[rows][:, use][:, :, use]
        chi2 = np.full(rows.sum(), np.nan)
        if len(use) == 1:
            variance = v[:, 0, 0]
            solvable = variance > 1e-12
            chi2[solvable] = u[solvable, 0] ** 2 / variance[solvable]
        else:
            solvable = np.linalg.det(v) > 1e-12
            chi2[solvable] = np.einsum("rk,rk->r", u[solvable], np.linalg.solve(v[solvable], u[solvable][:, :, None])[:, :, 0])
        p[rows] = special.chdtrc(len(use), chi2)
    return p


def _logrank_two(at_risk: np.ndarray, events: np.ndarray) -> np.ndarray:
    """``logrank`` for two groups, on group 1's counts alone: most tests here are two-level, and this is a third of the work."""
    n1 = at_risk[:, :, 1].astype(float)
    total_n = (at_risk[:, :, 0] + at_risk[:, :, 1]).astype(float)
    total_d = (events[:, :, 0] + events[:, :, 1]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total_n > 0, n1 / total_n, 0.0)
        spread = np.where(total_n > 1, total_d * (total_n - total_d) / (total_n - 1), 0.0)
    deviation = (events[:, :, 1] - total_d * share).sum(axis=1)
    variance = (spread * share * (1 - share)).sum(axis=1)
    both = (at_risk[:, :, 0].sum(axis=1) > 0) & (at_risk[:, :, 1].sum(axis=1) > 0) & (variance > 1e-12)
    p = np.full(len(n1), np.nan)
    p[both] = special.chdtrc(1, deviation[both] ** 2 / variance[both])
    return p


def cox_binary(at_risk: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cox hazard ratio of group 1 vs group 0 (Efron ties) by batched Newton–Raphson: (hr, converged), each (R,).

    ``at_risk`` and ``events`` are (R, T, 2). With one binary covariate the partial likelihood needs only the
    counts at risk and dying per group at each event time, so every reconstruction is fitted at once. HR is
    NaN where a group has no event or β runs past ±``COX_MAX_ABS_BETA`` (monotone likelihood: not estimable).
    """
    n0, n1 = (at_risk[:, :, k].astype(float) for k in (0, 1))
    d0, d1 = (events[:, :, k].astype(float) for k in (0, 1))
    total = d0 + d1
    ties = max(int(total.max()), 1)
    steps = np.arange(ties, dtype=float)
    active = steps[None, None, :] < total[:, :, None]
    # Efron: the l-th of d tied deaths sees the risk set less l/d of the dying.
    fraction = np.where(active, steps[None, None, :] / np.maximum(total[:, :, None], 1.0), 0.0)
    reference_part = n0[:, :, None] - fraction * d0[:, :, None]
    level_part = n1[:, :, None] - fraction * d1[:, :, None]
    level_events = d1.sum(axis=1)
    beta = np.zeros(len(n0))
    converged = np.zeros(len(n0), dtype=bool)
    running = np.arange(len(n0))
    for _ in range(COX_ITERATIONS):
        if not len(running):
            break
        phi = np.exp(beta[running])[:, None, None]
        derivative = phi * level_part[running]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(active[running], derivative / (derivative + reference_part[running]), 0.0)
        score = level_events[running] - ratio.sum(axis=(1, 2))
        information = (ratio - ratio**2).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.clip(np.where(information > 0, score / information, 0.0), -2.0, 2.0)
        beta[running] += step
        done = np.abs(step) < COX_TOLERANCE
        converged[running[done]] = True
        # Rows running off to ±∞ are left: their likelihood has no maximum.
        running = running[~done & (np.abs(beta[running]) < COX_MAX_ABS_BETA)]
    estimable = converged & (np.abs(beta) < COX_MAX_ABS_BETA) & (d0.sum(axis=1) > 0) & (level_events > 0)
    return np.where(estimable, np.exp(beta), np.nan), estimable


# --- the OS placements ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placements:
    """Every labelled placement of the censored patients among the death times consistent with the printed OS figures."""

    death_times: np.ndarray  # (D,) sorted
    gap_lo: np.ndarray  # (G,) gap g holds times in [gap_lo[g], gap_hi[g]); G = distinct deaths + 1
    gap_hi: np.ndarray
    lower: np.ndarray  # (C,) each censored patient's bounds
    upper: np.ndarray
    gaps: np.ndarray  # (N, C) gap of each censored patient, one row per placement
    median: np.ndarray  # (N,) SPSS median and CI of each placement
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    multisets_examined: int
    multisets_feasible: int
    multisets_consistent: int
    printed: dict[str, tuple[float, int]]  # the printed OS figures the placements reproduce (name → value, decimals)


class NoConsistentReconstruction(ValueError):
    """The study leaves nothing to vary, or nothing it could be varied to reproduces the printed OS figures."""


def _printed_os_sets(registry: pl.DataFrame) -> list[dict[str, tuple[float, int]]]:
    """Each source's printed (median, ci_lower, ci_upper), as the audit's feasibility search reads them."""
    rows = registry.filter(pl.col("quantity").is_in(["os.median", "os.ci_lower", "os.ci_upper"]))
    found = []
    for _, group in rows.group_by("source", maintain_order=True):
        printed = {r["quantity"].split(".", 1)[1]: (r["value"], r["decimals"]) for r in group.iter_rows(named=True)}
        if "median" in printed:
            found.append(printed)
    return found


def _matches(values: dict[str, np.ndarray], printed: dict[str, tuple[float, int]]) -> np.ndarray:
    mask = np.ones(len(next(iter(values.values()))), dtype=bool)
    for name, (value, decimals) in printed.items():
        mask &= np.abs(values[name] - value) <= 0.5 * 10 ** (-decimals) + 1e-9
    return mask


def os_placements(death_times: np.ndarray, lower: npt.ArrayLike, upper: npt.ArrayLike, registry: pl.DataFrame) -> Placements:
    """Enumerate the labelled placements reproducing the printed median and the most complete reachable printed CI.

    The gap multisets come from the audit's exhaustive search (``feasibility.os_feasibility``); the printed sets are
    tried with the CI first and the median alone last, the first reachable one defines consistency. Each
    consistent multiset is expanded to every assignment of its gaps to patients whose bounds allow it.
    """
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if not len(lower):
        raise NoConsistentReconstruction("no censored OS time at the published cut: no last-contact time is reconstructed")
    if len(lower) > MAX_CENSORED:
        raise NoConsistentReconstruction(
            f"{len(lower)} censored patients: more than {MAX_CENSORED}, the labelled placements are too many to enumerate"
        )
    feasibility = os_feasibility(death_times, list(zip(lower, upper)))
    estimates = feasibility.estimates
    values = {name: estimates[name].fill_null(np.nan).to_numpy() for name in ("median", "ci_lower", "ci_upper")}
    candidates = sorted(_printed_os_sets(registry), key=len, reverse=True)
    candidates += [{"median": c["median"]} for c in candidates]
    chosen, mask = {}, np.zeros(estimates.height, dtype=bool)
    for printed in candidates:
        mask = _matches(values, printed)
        if mask.any():
            chosen = printed
            break
    if not chosen:
        raise NoConsistentReconstruction(
            "printed_values.csv: no placement of the unpublished last-contact times reproduces any printed os.median "
            f"({feasibility.patterns_feasible:,} feasible placements of {feasibility.patterns_examined:,} examined)"
        )
    deaths = np.sort(np.asarray(death_times, dtype=float))
    distinct = np.unique(deaths)
    gap_lo = np.r_[0.0, distinct]
    gap_hi = np.r_[distinct, np.inf]
    multisets = np.array(estimates.filter(pl.Series(mask))["gaps"].to_list(), dtype=np.int64).reshape(-1, len(lower))
    permutations = np.array(list(itertools.permutations(range(len(lower)))), dtype=np.int64).reshape(-1, len(lower))
    bound_enumeration(
        f"labelled OS placements ({len(multisets):,} gap multisets reproducing the printed {', '.join(chosen)} × {len(permutations):,} orders of the censored)",
        len(multisets) * len(permutations),
        len(lower),
    )
    labelled = multisets[:, permutations].reshape(-1, len(lower))
    origin = np.repeat(np.arange(len(multisets)), len(permutations))
    start = np.maximum(gap_lo[labelled], lower)
    allowed = np.all((start < gap_hi[labelled]) & (start <= upper), axis=1)
    labelled, origin = labelled[allowed], origin[allowed]
    # Permuting equal gaps repeats a row; one integer per row (its digits in base G) dedupes far faster than rows do.
    if len(gap_lo) ** len(lower) < 2**62:
        _, first = np.unique(labelled @ (len(gap_lo) ** np.arange(len(lower) - 1, -1, -1, dtype=np.int64)), return_index=True)
    else:
        _, first = np.unique(labelled, axis=0, return_index=True)
    labelled, origin = labelled[first], origin[first]
    chosen_values = {name: v[mask][origin] for name, v in values.items()}
    return Placements(
        deaths,
        gap_lo,
        gap_hi,
        lower,
        upper,
        labelled,
        chosen_values["median"],
        chosen_values["ci_lower"],
        chosen_values["ci_upper"],
        feasibility.patterns_examined,
        feasibility.patterns_feasible,
        len(multisets),
        chosen,
    )


def gaps_of(times: npt.ArrayLike, death_times: npt.ArrayLike) -> np.ndarray:
    """The gap (0 = before the first death) each censoring time falls in; a time tied with a death is after it."""
    return np.searchsorted(np.unique(np.asarray(death_times, dtype=float)), np.asarray(times, dtype=float), side="right")


def landmark_rates(deaths: np.ndarray, gaps: np.ndarray, months: npt.ArrayLike) -> np.ndarray:
    """Kaplan–Meier S(t) at each landmark for every placement: (N, M). Depends on the gaps only."""
    distinct, counts = np.unique(deaths, return_counts=True)
    deaths_from = counts[::-1].cumsum()[::-1]  # deaths at or after each distinct death time
    # A censoring in gap g is at risk at death time k when g > k.
    censored_from = (gaps[:, :, None] > np.arange(len(distinct))[None, None, :]).sum(axis=1)
    at_risk = deaths_from[None, :] + censored_from
    steps = 1.0 - counts[None, :] / at_risk
    upto = distinct[None, :] <= np.asarray(months, dtype=float)[:, None]  # (M, D)
    # A product, not exp(Σ log): the last step may reach S = 0.
    return np.where(upto[None, :, :], steps[:, None, :], 1.0).prod(axis=2)


def os_curve_envelope(placements: Placements, shipped_times: Sequence[float]) -> pl.DataFrame:
    """The Kaplan–Meier OS curve's lowest and highest S(t) at each death time over the placements, beside the shipped curve's."""
    times = np.unique(placements.death_times)
    curves = landmark_rates(placements.death_times, placements.gaps, times)
    shipped = landmark_rates(placements.death_times, gaps_of(shipped_times, placements.death_times)[None, :], times)[0]
    return pl.DataFrame({"time": times, "surv_min": curves.min(axis=0), "surv_max": curves.max(axis=0), "surv_shipped": shipped})


def _time_bounds(p: Placements, gaps: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Earliest and latest time each censored patient can have inside its gap: (N, C) each."""
    return np.maximum(p.gap_lo[gaps], lower), np.minimum(p.gap_hi[gaps], upper)


def at_risk_bounds(p: Placements, gaps: np.ndarray, lower: np.ndarray, upper: np.ndarray, months: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fewest and most patients at risk (time ≥ t) at each landmark for every placement: (N, M) each."""
    earliest, _ = _time_bounds(p, gaps, lower, upper)
    t = np.asarray(months, dtype=float)[None, None, :]
    dying_later = (p.death_times[None, :] >= t[0, :, :].T).sum(axis=1)
    fewest = dying_later[None, :] + (earliest[:, :, None] >= t).sum(axis=1)
    # Reaching t needs the gap's open end beyond it and the patient's own (closed) upper bound at or beyond it.
    can_reach = (p.gap_hi[gaps][:, :, None] > t) & (np.broadcast_to(upper, gaps.shape)[:, :, None] >= t)
    most = dying_later[None, :] + can_reach.sum(axis=1)
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
    earliest, latest = _time_bounds(p, gaps, lower, upper)
    order = np.argsort(gaps, axis=1, kind="stable")
    sorted_gaps = np.take_along_axis(gaps, order, axis=1)
    deaths_after = (p.death_times[None, None, :] >= p.gap_hi[sorted_gaps][:, :, None]).sum(axis=2)
    at_risk = deaths_after + (n_cens - np.arange(n_cens))[None, :]
    curve = np.cumprod(1.0 - 1.0 / at_risk, axis=1)
    reached = curve <= 0.5 + survival.TOLERANCE
    position = np.argmax(reached, axis=1)
    median_gap = sorted_gaps[np.arange(len(gaps)), position]
    rank = position - np.argmax(sorted_gaps == median_gap[:, None], axis=1)
    in_gap = gaps == median_gap[:, None]
    kth = np.arange(len(gaps)), rank
    median_lo = np.sort(np.where(in_gap, earliest, np.inf), axis=1)[kth]
    median_hi = np.sort(np.where(in_gap, latest, np.inf), axis=1)[kth]
    missing = ~reached.any(axis=1)
    median_lo[missing] = np.nan
    median_hi[missing] = np.nan
    first_death, last_death = p.death_times.min(), p.death_times.max()
    return FollowUp(
        median_lo,
        median_hi,
        np.minimum(first_death, earliest.min(axis=1)),
        np.minimum(first_death, latest.min(axis=1)),
        np.maximum(last_death, earliest.max(axis=1)),
        np.maximum(last_death, latest.max(axis=1)),
    )


# --- allocations ---------------------------------------------------------------------------------------------


def _multinomial(counts: Sequence[int]) -> int:
    return math.factorial(sum(counts)) // math.prod(math.factorial(c) for c in counts)


def site_space(levels: Sequence[str], counts: Sequence[int], sex: np.ndarray) -> int:
    """How many allocations of the sites to patients meet the counts and ``SEX_RESTRICTED_SITES``."""
    total, left = 1, len(sex)
    eligible_left = {s: int((sex == s).sum()) for s in set(SEX_RESTRICTED_SITES.values())}
    free = []
    for level, count in zip(levels, counts):
        required = SEX_RESTRICTED_SITES.get(fig.slug(level))
        if required is None:
            free.append(count)
            continue
        total *= math.comb(eligible_left[required], count)
        eligible_left[required] -= count
        left -= count
    return total * _multinomial(free) if sum(free) == left else 0


def sample_sites(levels: Sequence[str], counts: Sequence[int], sex: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform draws of site allocations meeting the counts and ``SEX_RESTRICTED_SITES``: (size, P) level indices.

    Restricted levels are drawn first among their eligible patients, the rest shuffled over the others; every
    completion of a restricted choice has the same number of allocations, so the draw is uniform.
    """
    n_patients = len(sex)
    allocation = np.full((size, n_patients), -1, dtype=np.int64)
    for index, (level, count) in enumerate(zip(levels, counts)):
        required = SEX_RESTRICTED_SITES.get(fig.slug(level))
        if required is None or count == 0:
            continue
        eligible = (sex == required)[None, :] & (allocation < 0)
        chosen = np.argsort(np.where(eligible, rng.random((size, n_patients)), np.inf), axis=1)[:, :count]
        np.put_along_axis(allocation, chosen, index, axis=1)
    rest = np.repeat(
        [i for i, lv in enumerate(levels) if SEX_RESTRICTED_SITES.get(fig.slug(lv)) is None],
        [c for lv, c in zip(levels, counts) if SEX_RESTRICTED_SITES.get(fig.slug(lv)) is None],
    )
    # Fresh keys: the restricted choice took the smallest ones among its eligible patients, which would bias the rest.
    open_slots = np.argsort(np.where(allocation < 0, rng.random((size, n_patients)), np.inf), axis=1)[:, : len(rest)]
    np.put_along_axis(allocation, open_slots, np.broadcast_to(rest, open_slots.shape), axis=1)
    return allocation


def all_binary_allocations(n_patients: int, count: int) -> np.ndarray:
    """Every choice of ``count`` patients for level 1: (C(P, count), P) of 0/1."""
    bound_enumeration(f"starting-dose allocations ({count} of {n_patients} patients)", math.comb(n_patients, count), n_patients)
    chosen = np.array(list(itertools.combinations(range(n_patients), count)), dtype=np.int64).reshape(-1, count)
    allocation = np.zeros((len(chosen), n_patients), dtype=np.int64)
    np.put_along_axis(allocation, chosen, 1, axis=1)
    return allocation


# --- the study ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """What the sensitivity analysis reads of one study at the published cut, ordered by SUBJID."""

    subjid: np.ndarray
    pfs: np.ndarray
    pfs_event: np.ndarray
    os: np.ndarray  # the shipped reconstruction's times for the censored
    died: np.ndarray
    lower: np.ndarray  # bounds of every patient's OS time if censored (ignored for deaths)
    upper: np.ndarray
    factors: dict[str, np.ndarray]  # transcribed two-level factors: 1 level, 0 reference, −1 neither
    sex: np.ndarray
    site: np.ndarray  # shipped allocation, level indices into site_levels
    site_levels: tuple[str, ...]
    site_counts: tuple[int, ...]
    dose: np.ndarray  # shipped allocation: 1 = the lower (reference-level) dose, 0 the other
    dose_levels: tuple[int, int]  # (level, reference) in mg
    dose_count: int
    registry: pl.DataFrame


def os_window(cut: dt.date, study: StudyFile, days_per_month: float = 365.25 / 12) -> tuple[float, float]:
    """Shortest and longest OS time of a patient alive at ``cut`` (followed to the cut): treated from the last to the
    first day of the study's enrolment window (study.toml)."""
    return (cut - study.enrolment_end).days / days_per_month, (cut - study.enrolment_start).days / days_per_month


def read_study(study_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """ADSL, ADTTE, the typed registry and provenance of a study folder, as the assets derive them (for scripts and tests)."""

    def clean(schema: schemas.FileSchema, path: Path | None = None, keep: tuple[str, ...] = ()) -> pl.DataFrame:
        path = path or study_dir / schema.location
        raw = validation.read_raw(path, schema, label=str(path.relative_to(study_dir)))
        return validation.clean(raw, schema, validation.problems(raw, schema), keep=keep)

    studyid = load_study(study_dir).studyid
    provenance = clean(schemas.PROVENANCE)
    adsl = derive_adsl(clean(schemas.PATIENTS), clean(schemas.PATIENT_ALLOCATIONS), studyid=studyid, provenance=provenance)
    cuts = [
        clean(schemas.FOLLOWUP, path).with_columns(data_cut=pl.lit(boundary.cut_date_of(path)), content_hash=pl.lit(boundary.content_hash(path)))
        for path in boundary.followup_files(study_dir)
    ]
    adtte = derive_adtte(pl.concat(cuts), studyid=studyid, provenance=provenance)
    return adsl, adtte, clean(schemas.REGISTRY), provenance


def _printed_counts(registry: pl.DataFrame, prefix: str) -> dict[str, int]:
    """Printed counts ``<prefix>.<level>.n``, one per level; printings that disagree are an error naming them."""
    rows = registry.filter(pl.col("quantity").str.starts_with(prefix + ".") & pl.col("quantity").str.ends_with(".n"))
    counts: dict[str, int] = {}
    for row in rows.iter_rows(named=True):
        level = row["quantity"].removeprefix(prefix + ".").removesuffix(".n")
        value = int(row["value"])
        if counts.get(level, value) != value:
            raise ValueError(f"printed_values.csv: {row['figure_id']} prints {value} for {row['quantity']}, another printing {counts[level]}")
        counts[level] = value
    return counts


def transcribed_subgroups(subgroups: Sequence[survival.Subgroup] = survival.SUBGROUPS) -> list[survival.Subgroup]:
    """The subgroup factors taken from Table 3 as printed; those on allocated columns are varied with the allocations instead."""
    # ADSL's variables from patient_allocations.csv (adsl.VARIABLE_SOURCES) rest on the allocation, not on Table 3.
    return [s for s in subgroups if s.column not in ALLOCATED_VARIABLES]


def study_from_tables(
    adsl: pl.DataFrame,
    adtte_at_cut: pl.DataFrame,
    registry: pl.DataFrame,
    window: tuple[float, float],
    subgroups: Sequence[survival.Subgroup] = survival.SUBGROUPS,
) -> Study:
    """The study's arrays from ADSL, ADTTE at the published cut and the registry; ``window`` bounds a living patient's OS time."""

    def endpoint(code: str) -> pl.DataFrame:
        return adtte_at_cut.filter(pl.col("PARAMCD") == code).select("SUBJID", pl.col("AVAL").cast(pl.Float64), "CNSR").sort("SUBJID")

    pfs, os_ = endpoint("PFS"), endpoint("OS")
    frame = adsl.sort("SUBJID").join(pfs.rename({"AVAL": "PFS", "CNSR": "PFSCNSR"}), on="SUBJID").join(os_, on="SUBJID")
    site_counts = _printed_counts(registry, "site")
    by_slug = {fig.slug(s): s for s in frame["PRIMSITE"].drop_nulls().unique().to_list()}
    unknown = sorted(set(by_slug) - set(site_counts))
    if unknown:
        raise ValueError(f"patient_allocations.csv: primary_site {unknown} has no printed count in printed_values.csv")
    site_levels = tuple(by_slug.get(slug, slug.title()) for slug in site_counts)
    dose_counts = {int(level.removesuffix("mg")): n for level, n in _printed_counts(registry, "dose").items()}
    if len(dose_counts) != 2:
        raise ValueError(f"printed_values.csv: expected two printed starting doses, found {sorted(dose_counts)}")
    low, high = sorted(dose_counts)
    factors = {
        s.factor: frame.select(pl.when(pl.col(s.column) == s.level).then(1).when(pl.col(s.column) == s.reference).then(0).otherwise(-1))
        .to_series()
        .to_numpy()
        for s in transcribed_subgroups(subgroups)
    }
    pfs_times = frame["PFS"].to_numpy()
    return Study(
        subjid=frame["SUBJID"].to_numpy(),
        pfs=pfs_times,
        pfs_event=(frame["PFSCNSR"] == 0).to_numpy().astype(np.int64),
        os=frame["AVAL"].to_numpy(),
        died=(frame["CNSR"] == 0).to_numpy().astype(np.int64),
        lower=np.maximum(pfs_times, window[0]),
        upper=np.full(frame.height, window[1]),
        factors=factors,
        sex=frame["SEX"].to_numpy(),
        site=np.array([site_levels.index(s) for s in frame["PRIMSITE"].to_list()], dtype=np.int64),
        site_levels=site_levels,
        site_counts=tuple(site_counts.values()),
        dose=(frame["DOSE0"] == low).to_numpy().astype(np.int64),
        dose_levels=(low, high),
        dose_count=dose_counts[low],
        registry=registry,
    )


# --- evaluating every reconstruction -------------------------------------------------------------------------


def os_risk_inputs(study: Study, deaths: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """OS ``until`` (N, P) and ``event_index`` (1, P) over the distinct death times, for placements ``gaps``."""
    times = np.unique(deaths)
    censored = study.died == 0
    until = np.broadcast_to(np.searchsorted(times, study.os, side="right"), (len(gaps), len(study.os))).copy()
    until[:, censored] = gaps
    event_index = np.where(study.died == 1, np.searchsorted(times, study.os, side="left"), -1)[None, :]
    return until, event_index, len(times)


def pfs_risk_inputs(study: Study) -> tuple[np.ndarray, np.ndarray, int]:
    """PFS ``until`` and ``event_index`` (1, P) over the distinct progression times: transcribed, the same in every reconstruction."""
    times = np.unique(study.pfs[study.pfs_event == 1])
    until = np.searchsorted(times, study.pfs, side="right")[None, :]
    event_index = np.where(study.pfs_event == 1, np.searchsorted(times, study.pfs, side="left"), -1)[None, :]
    return until, event_index, len(times)


def subgroup_tests(until, event_index, n_times, group, n_groups) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-rank p of every reconstruction, and the Cox HR of level 1 vs 0 when the factor has two levels."""
    at_risk, events = risk_sets(until, event_index, group, n_times, n_groups)
    p = logrank(at_risk, events)
    return p, (cox_binary(at_risk, events)[0] if n_groups == 2 else None)


@dataclass(frozen=True)
class Outcome:
    """One result over a set of reconstructions: each reconstruction's value as an interval [lo, hi] (lo = hi for a point)."""

    lo: np.ndarray
    hi: np.ndarray
    shipped: float | None

    @staticmethod
    def point(values: np.ndarray, shipped: float | None) -> Outcome:
        return Outcome(values, values, shipped)


@dataclass(frozen=True)
class Coverage:
    """How a result's reconstructions were covered."""

    kind: str  # "exact", "seeded sample" or "not needed" (nothing reconstructed)
    reconstructions: int | None
    text: str
    halves: tuple[np.ndarray, np.ndarray] | None = None  # sample rows of the first and second half, for stability


def _fmt(value: float | None, decimals: int) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    if decimals < 0:  # significant figures, for p-values
        return f"{value:.{-decimals}g}"
    return f"{value:.{decimals}f}"


def _pct(share: float) -> str:
    # A handful of 50,000 must not print as 0.0% (or its complement as 100.0%).
    if 0 < share < 0.001:
        return "<0.1%"
    if 0.999 < share < 1:
        return ">99.9%"
    return f"{100 * share:.1f}%"


def summarise(
    result: str,
    label: str,
    rests_on: str,
    coverage: Coverage,
    outcome: Outcome,
    conclusion: str,
    holds_between: tuple[float, float],
    decimals: int,
    figure_id: str | None = None,
    note: str | None = None,
) -> dict:
    """One row: range, shipped value, and the shares of reconstructions where ``conclusion`` (value in ``holds_between``) holds or fails.

    With interval outcomes, a reconstruction *holds* when every time inside its gaps gives a value in the
    bounds, *fails* when none does; the rest depend on the time within the gap. A NaN (not estimable) neither.
    """
    lo, hi = np.asarray(outcome.lo, dtype=float), np.asarray(outcome.hi, dtype=float)
    low, high = holds_between
    estimable = np.isfinite(lo) & np.isfinite(hi)
    holds = estimable & (lo >= low - 1e-12) & (hi <= high + 1e-12)
    fails = estimable & ((hi < low - 1e-12) | (lo > high + 1e-12))
    n = len(lo)
    share_holds, share_fails = holds.mean() if n else np.nan, fails.mean() if n else np.nan
    minimum = float(np.nanmin(lo)) if estimable.any() else None
    maximum = float(np.nanmax(hi)) if estimable.any() else None
    if coverage.kind == "not needed":
        verdict = FIXED
    elif share_holds == 1 or share_fails == 1:
        verdict = ROBUST
    else:
        verdict = DEPENDS
    parts = [f"{_fmt(minimum, decimals)}–{_fmt(maximum, decimals)} (shipped {_fmt(outcome.shipped, decimals)})"]
    if verdict == ROBUST:
        parts.append(f"{conclusion}: {'yes' if share_holds == 1 else 'no'} in every reconstruction")
    elif verdict == DEPENDS:
        split = f"{conclusion}: yes in {_pct(share_holds)}, no in {_pct(share_fails)}"
        mixed = (estimable & ~holds & ~fails).mean()
        if mixed:
            split += f", either way by the time within the gap in {_pct(mixed)}"
        if (~estimable).any():
            split += f", not estimable in {_pct((~estimable).mean())}"
        parts.append(split)
    else:
        parts.append(f"{conclusion}: {'yes' if share_holds == 1 else 'no'}")
    notes = [note] if note else []
    if verdict == ROBUST and coverage.kind == "seeded sample":
        notes.append(f"robust within the sample: no counterexample among {n:,} draws, which does not exclude one elsewhere")
    if (~estimable).any() and verdict != DEPENDS:
        notes.append(f"not estimable in {_pct((~estimable).mean())} of the reconstructions")
    if coverage.halves is not None:
        first, second = coverage.halves
        halves = [
            f"{_fmt(np.nanmin(lo[h]) if estimable[h].any() else None, decimals)}–{_fmt(np.nanmax(hi[h]) if estimable[h].any() else None, decimals)}, "
            f"yes {_pct(holds[h].mean())}"
            for h in (first, second)
        ]
        notes.append(f"sample halves: {halves[0]} | {halves[1]}")
    return {
        "result": result,
        "figure_id": figure_id,
        "label": label,
        "rests_on": rests_on,
        "coverage": coverage.text,
        "reconstructions": coverage.reconstructions,
        "shipped": outcome.shipped,
        "minimum": minimum,
        "maximum": maximum,
        "conclusion": conclusion,
        "holds": float(share_holds),
        "fails": float(share_fails),
        "verdict": verdict,
        "sensitivity_range": "; ".join(parts),
        "note": "; ".join(notes) or None,
    }


# Printed quantities that are constraints of the reconstructions: every consistent reconstruction gives the same value.
IMPOSED = {
    "site.": "Table 1's site counts are the allocation's constraint",
    "dose.": "Table 1's dose counts are the allocation's constraint",
    "dose_reduction.": "the printed count is the allocation's constraint",
    "discontinuation.": "the printed count is the allocation's constraint",
    "ae.": "Table 4's counts per term and grade and the 4 grade 3/4 patients are the episodes' constraints",
    "treatment_related_deaths.": "no grade 5 episode is a constraint of the episodes",
}

OS_PLACEMENT = "last-contact times of the living patients"
SIGNIFICANT = f"p ≥ {survival.SIGNIFICANCE}"


@dataclass(frozen=True)
class Sensitivity:
    """The result table and how the reconstructions were covered."""

    table: pl.DataFrame
    placements: Placements
    site_space: int
    dose_space: int
    sample_size: int
    seed: int
    shipped_consistent: bool


def _printed_rows(
    study: Study,
    quantity: str,
    label: str,
    coverage: Coverage,
    outcome: Outcome,
    decimals: int,
    imposed: dict[str, tuple[float, int]] | None = None,
    note: str | None = None,
) -> list[dict]:
    """One row per printing of ``quantity``: does the result round to that printing, under how many reconstructions."""
    rows = []
    for row in study.registry.filter(pl.col("quantity") == quantity).iter_rows(named=True):
        half = fig.half_unit(row["decimals"])
        is_constraint = imposed is not None and imposed.get(quantity.split(".", 1)[1]) == (row["value"], row["decimals"])
        rows.append(
            summarise(
                quantity,
                f"{label}, {row['source']}",
                OS_PLACEMENT,
                coverage,
                outcome,
                f"rounds to the printed {row['value']:.{row['decimals']}f} ({row['printed']!r})",
                (row["value"] - half, row["value"] + half),
                decimals,
                figure_id=row["figure_id"],
                note="imposed: this printing is a constraint of the placements" if is_constraint else note,
            )
        )
    return rows


def _test_rows(result: str, label: str, rests_on: str, coverage: Coverage, tested: tuple, shipped: tuple) -> list[dict]:
    """The log-rank p row (p ≥ 0.05?) and, for two levels, the Cox HR row (HR > 1?) of one subgroup comparison."""
    (p, hr), (shipped_p, shipped_hr) = tested, shipped
    rows = [
        summarise(
            f"{result}.logrank_p",
            f"{label}: log-rank p",
            rests_on,
            coverage,
            Outcome.point(p, float(shipped_p[0])),
            SIGNIFICANT,
            (survival.SIGNIFICANCE, np.inf),
            -3,
        )
    ]
    if hr is not None:
        rows.append(
            summarise(f"{result}.hr", f"{label}: Cox HR", rests_on, coverage, Outcome.point(hr, float(shipped_hr[0])), "HR > 1", (1.0, np.inf), 2)
        )
    return rows


def _os_rows(study: Study, p: Placements, shipped_gaps: np.ndarray, exact: Coverage) -> list[dict]:
    """OS median and CI, landmark rates and numbers at risk, reverse-KM follow-up and its range: the placements alone."""
    censored = study.died == 0
    lower, upper, shipped_times = study.lower[censored], study.upper[censored], study.os[censored]
    shipped_index = np.flatnonzero((p.gaps == shipped_gaps).all(axis=1))
    rows = []
    for name, values in (("median", p.median), ("ci_lower", p.ci_lower), ("ci_upper", p.ci_upper)):
        shipped = float(values[shipped_index[0]]) if len(shipped_index) else None
        rows += _printed_rows(
            study, f"os.{name}", f"OS {name.replace('ci_', 'CI ')} (SPSS)", exact, Outcome.point(values, shipped), 3, imposed=p.printed
        )
    rates = landmark_rates(p.death_times, p.gaps, LANDMARK_MONTHS)
    shipped_rates = landmark_rates(p.death_times, shipped_gaps, LANDMARK_MONTHS)[0]
    fewest, most = at_risk_bounds(p, p.gaps, lower, upper, LANDMARK_MONTHS)
    shipped_at_risk, _ = at_risk_bounds(p, shipped_gaps, shipped_times, shipped_times, LANDMARK_MONTHS)
    for j, month in enumerate(LANDMARK_MONTHS):
        rounded = round(float(shipped_rates[j]), RATE_DECIMALS)
        rows.append(
            summarise(
                f"os.landmark.{month:g}m.rate",
                f"OS rate at {month:g} months (Kaplan–Meier S(t))",
                OS_PLACEMENT,
                exact,
                Outcome.point(rates[:, j], float(shipped_rates[j])),
                f"rounds to the shipped {rounded:.{RATE_DECIMALS}f}",
                (rounded - fig.half_unit(RATE_DECIMALS), rounded + fig.half_unit(RATE_DECIMALS)),
                3,
                note="S(t) depends only on the gaps, not on the time inside them",
            )
        )
        at_risk = float(shipped_at_risk[0, j])
        rows.append(
            summarise(
                f"os.landmark.{month:g}m.at_risk",
                f"OS patients at risk at {month:g} months",
                OS_PLACEMENT,
                exact,
                Outcome(fewest[:, j].astype(float), most[:, j].astype(float), at_risk),
                f"equals the shipped {at_risk:g}",
                (at_risk, at_risk),
                0,
                note="depends on the time inside a gap that contains the landmark",
            )
        )
    bounds = followup_bounds(p, p.gaps, lower, upper)
    shipped_bounds = followup_bounds(p, shipped_gaps, shipped_times, shipped_times)
    for name, label in (("median", "Median follow-up (reverse Kaplan–Meier)"), ("min", "Shortest follow-up"), ("max", "Longest follow-up")):
        shipped_value = float(getattr(shipped_bounds, f"{name}_lo")[0])
        outcome = Outcome(getattr(bounds, f"{name}_lo"), getattr(bounds, f"{name}_hi"), shipped_value)
        note = "each placement's value spans the bounds of its gap (and the patients' own bounds)"
        printed = _printed_rows(study, f"followup.{name}", label, exact, outcome, 2, note=note)
        rounded = round(shipped_value, 1)
        rows += printed or [
            summarise(
                f"followup.{name}",
                label,
                OS_PLACEMENT,
                exact,
                outcome,
                f"rounds to the shipped {rounded:.1f}",
                (rounded - fig.half_unit(1), rounded + fig.half_unit(1)),
                2,
                note=note,
            )
        ]
    return rows


def sensitivity_ranges(study: Study, provenance: pl.DataFrame, sample_size: int = DEFAULT_SAMPLE, seed: int = DEFAULT_SEED) -> Sensitivity:
    """Min, max and shipped value of every result resting on reconstructed inputs, with its verdict, over every consistent reconstruction.

    Exact over the OS placements (results that rest only on the censoring times) and over the dose
    allocations (PFS by dose); a seeded uniform sample of full reconstructions (placement, site allocation,
    dose allocation) where the space is too large (anything by site, OS by dose, the all-subgroups claim).
    """
    rng = np.random.default_rng(seed)
    censored = study.died == 0
    deaths = np.sort(study.os[~censored])
    p = os_placements(deaths, study.lower[censored], study.upper[censored], study.registry)
    shipped_gaps = gaps_of(study.os[censored], deaths)[None, :]
    shipped_consistent = bool((p.gaps == shipped_gaps).all(axis=1).any())
    n_place = len(p.gaps)
    printed = ", ".join(f"{name.replace('ci_', 'CI ')} {value:g}" for name, (value, _) in p.printed.items())
    exact_os = Coverage(
        "exact",
        n_place,
        f"exact: all {n_place:,} labelled placements ({p.multisets_consistent} gap multisets reproduce the printed "
        f"{printed}; {p.multisets_feasible:,} feasible of {p.multisets_examined:,} examined)",
    )
    rows = _os_rows(study, p, shipped_gaps, exact_os)

    # Subgroups on transcribed factors: PFS fixed by the paper, OS exact over the placements.
    os_until, os_event, os_times = os_risk_inputs(study, deaths, p.gaps)
    shipped_until, _, _ = os_risk_inputs(study, deaths, shipped_gaps)
    pfs = pfs_risk_inputs(study)
    fixed = Coverage("not needed", None, "not needed: no reconstructed input")
    claimed = {s.factor for s in survival.SUBGROUP_CLAIM.comparisons}
    smallest_exact = {}  # per transcribed factor of the claim: PFS p (one value) and OS p per placement
    shipped_smallest = []  # the same under the shipped reconstruction
    for subgroup in transcribed_subgroups():
        group = study.factors[subgroup.factor][None, :]
        label = f"{subgroup.factor} ({subgroup.level_label} vs {subgroup.reference_label})"
        pfs_tested = subgroup_tests(*pfs, group, 2)
        os_tested = subgroup_tests(os_until, os_event, os_times, group, 2)
        os_tested_shipped = subgroup_tests(shipped_until, os_event, os_times, group, 2)
        if subgroup.factor in claimed:
            smallest_exact[subgroup.factor] = (float(pfs_tested[0][0]), os_tested[0])
            shipped_smallest += [float(pfs_tested[0][0]), float(os_tested_shipped[0][0])]
        rows += _test_rows(f"subgroup.PFS.{subgroup.factor}", f"PFS, {label}", "nothing reconstructed", fixed, pfs_tested, pfs_tested)
        rows += _test_rows(f"subgroup.OS.{subgroup.factor}", f"OS, {label}", OS_PLACEMENT, exact_os, os_tested, os_tested_shipped)

    # Allocations. PFS by dose: every allocation. Anything by site, and OS by dose: a seeded sample of full reconstructions.
    dose_all = all_binary_allocations(len(study.subjid), study.dose_count)
    site_total = site_space(study.site_levels, study.site_counts, study.sex)
    dose_label = "starting dose ({} mg vs {} mg)".format(*study.dose_levels)
    exact_dose = Coverage("exact", len(dose_all), f"exact: all {len(dose_all):,} dose allocations")
    dose_pfs = subgroup_tests(*pfs, dose_all, 2)
    dose_pfs_shipped = subgroup_tests(*pfs, study.dose[None, :], 2)
    rows += _test_rows("subgroup.PFS.Starting dose", f"PFS, {dose_label}", "starting-dose allocation", exact_dose, dose_pfs, dose_pfs_shipped)

    placement_draw = rng.integers(0, n_place, sample_size)
    site_draw = sample_sites(study.site_levels, study.site_counts, study.sex, sample_size, rng)
    dose_index = rng.integers(0, len(dose_all), sample_size)
    halves = (np.arange(sample_size) < sample_size // 2, np.arange(sample_size) >= sample_size // 2)
    sampled = Coverage(
        "seeded sample",
        sample_size,
        f"seeded sample (seed {seed}): {sample_size:,} uniform draws of (placement, site allocation, dose allocation) "
        f"from {n_place:,} × {site_total:,} × {len(dose_all):,}; the ranges are the sample's, inner bounds of the true ones",
        halves,
    )
    largest = int(np.argmax(study.site_counts))
    n_sites = len(study.site_levels)
    os_sampled = (os_until[placement_draw], os_event, os_times)
    os_shipped = (shipped_until, os_event, os_times)
    site_rests, dose_rests = "primary-site allocation", "starting-dose allocation"
    # The claim's comparisons on allocated columns, two levels each, as survival_subgroups shows them.
    claim_sites = [s for s in survival.SUBGROUP_CLAIM.comparisons if s.column in ALLOCATED_VARIABLES]
    unsupported = sorted({s.column for s in claim_sites} - {"PRIMSITE"})
    if unsupported:
        raise ValueError(f"survival.SUBGROUP_CLAIM compares {unsupported}: only the primary-site allocation is varied here")

    def two_levels(sites: np.ndarray, s: survival.Subgroup) -> np.ndarray:
        level, reference = study.site_levels.index(s.level), study.site_levels.index(s.reference)
        return np.where(sites == level, 1, np.where(sites == reference, 0, -1))

    # (result, label, rests on, sampled inputs, sampled groups, shipped inputs, shipped groups, levels)
    claim_comparisons = tuple(
        (
            f"subgroup.{endpoint}.{s.factor} ({s.level_label} vs {s.reference_label})",
            f"{endpoint}, {s.factor.lower()} ({s.level_label} vs {s.reference_label}), as survival_subgroups and the claim compare it",
            site_rests if endpoint == "PFS" else f"{site_rests} and {OS_PLACEMENT}",
            pfs if endpoint == "PFS" else os_sampled,
            two_levels(site_draw, s),
            pfs if endpoint == "PFS" else os_shipped,
            two_levels(study.site, s),
            2,
        )
        for s in claim_sites
        for endpoint in survival.SUBGROUP_CLAIM.endpoints
    )
    comparisons = (
        *claim_comparisons,
        (
            "subgroup.PFS.Primary site",
            f"PFS, primary site (all {n_sites} sites; not the claim's comparison)",
            site_rests,
            pfs,
            site_draw,
            pfs,
            study.site,
            n_sites,
        ),
        (
            "subgroup.OS.Primary site",
            f"OS, primary site (all {n_sites} sites; not the claim's comparison)",
            f"{site_rests} and {OS_PLACEMENT}",
            os_sampled,
            site_draw,
            os_shipped,
            study.site,
            n_sites,
        ),
        (
            "subgroup.PFS.Primary site (largest vs rest)",
            f"PFS, {study.site_levels[largest]} vs other sites",
            site_rests,
            pfs,
            (site_draw == largest).astype(np.int64),
            pfs,
            (study.site == largest).astype(np.int64),
            2,
        ),
        (
            "subgroup.OS.Primary site (largest vs rest)",
            f"OS, {study.site_levels[largest]} vs other sites",
            f"{site_rests} and {OS_PLACEMENT}",
            os_sampled,
            (site_draw == largest).astype(np.int64),
            os_shipped,
            (study.site == largest).astype(np.int64),
            2,
        ),
        (
            "subgroup.OS.Starting dose",
            f"OS, {dose_label}",
            f"{dose_rests} and {OS_PLACEMENT}",
            os_sampled,
            dose_all[dose_index],
            os_shipped,
            study.dose,
            2,
        ),
    )
    sampled_p, shipped_p = {}, {}
    for result, label, rests, inputs, groups, shipped_inputs, shipped_groups, levels in comparisons:
        tested = subgroup_tests(*inputs, groups, levels)
        shipped = subgroup_tests(*shipped_inputs, shipped_groups[None, :], levels)
        sampled_p[result], shipped_p[result] = tested[0], float(shipped[0][0])
        rows += _test_rows(result, label, rests, sampled, tested, shipped)

    # The Discussion's claim, as survival.SUBGROUP_CLAIM defines it: no comparison of it differs significantly in PFS or OS.
    allocated = [c[0] for c in claim_comparisons]
    smallest = np.minimum.reduce(
        [*(np.minimum(pfs_p, os_p[placement_draw]) for pfs_p, os_p in smallest_exact.values()), *(sampled_p[c] for c in allocated)]
    )
    shipped_claim = min(*shipped_smallest, *(shipped_p[c] for c in allocated))
    rows.append(
        summarise(
            "subgroups.none_significant",
            "Smallest subgroup log-rank p (PFS and OS: every comparison of the claim, survival.SUBGROUP_CLAIM, as survival_subgroups shows them)",
            f"{site_rests} and {OS_PLACEMENT}",
            sampled,
            Outcome.point(smallest, shipped_claim),
            f"no significant subgroup difference (every {SIGNIFICANT})",
            (survival.SIGNIFICANCE, np.inf),
            -3,
            note="the Discussion's claim; no multiplicity correction, as a reader would judge it",
        )
    )

    rows += _registry_rows(study.registry, provenance, {r["figure_id"] for r in rows if r["figure_id"]})
    table = pl.DataFrame(rows, schema=SENSITIVITY_SCHEMA, orient="row") if rows else pl.DataFrame(schema=SENSITIVITY_SCHEMA)
    return Sensitivity(table, p, site_total, len(dose_all), sample_size, seed, shipped_consistent)


def _registry_rows(registry: pl.DataFrame, provenance: pl.DataFrame, covered: set[str]) -> list[dict]:
    """A verdict for every other printed figure: imposed by the constraints, fixed by the paper, or not assessed."""
    rows = []
    for row in registry.filter(~pl.col("figure_id").is_in(sorted(covered))).iter_rows(named=True):
        quantity = row["quantity"]
        basis = basis_of(quantity, provenance)
        reason = next((why for prefix, why in IMPOSED.items() if quantity.startswith(prefix)), None)
        if basis == "published_patient_data":
            verdict, coverage, text = FIXED, "not needed: no reconstructed input", "the same under every reconstruction: it rests on Table 3's rows"
        elif reason:
            verdict, coverage, text = ROBUST, "imposed", f"the same in every consistent reconstruction: {reason}"
        else:
            verdict, coverage, text = None, "not assessed", "rests on reconstructed inputs this analysis does not vary"
        rows.append(
            {
                "result": quantity,
                "figure_id": row["figure_id"],
                "label": f"{quantity}, {row['source']}",
                "rests_on": "nothing reconstructed (Table 3's rows)"
                if basis == "published_patient_data"
                else "reconstructed inputs (provenance.csv)",
                "coverage": coverage,
                "reconstructions": None,
                "shipped": None,
                "minimum": None,
                "maximum": None,
                "conclusion": None,
                "holds": None,
                "fails": None,
                "verdict": verdict,
                "sensitivity_range": text,
                "note": None,
            }
        )
    return rows


# Printed claims judged by one result that has no figure of its own: the Discussion's "no significant
# differences in PFS and OS" is printed as one count per endpoint, and both rest on the same set of tests.
CLAIM_RESULTS = {"subgroups.pfs.significant.n": "subgroups.none_significant", "subgroups.os.significant.n": "subgroups.none_significant"}


def verdicts_by_figure(sensitivity: pl.DataFrame, registry: pl.DataFrame) -> pl.DataFrame:
    """Each registry figure's sensitivity verdict and range (figure_id, sensitivity_verdict, sensitivity_range), for printed_audit."""
    columns: list[pl.Expr | str] = [pl.col("verdict").alias("sensitivity_verdict"), "sensitivity_range"]
    by_figure = sensitivity.filter(pl.col("figure_id").is_not_null()).select("figure_id", *columns)
    by_claim = sensitivity.select(pl.col("result").alias("claim_result"), *columns).unique("claim_result", keep="first")
    claims = (
        registry.select("figure_id", pl.col("quantity").replace_strict(CLAIM_RESULTS, default=None).alias("claim_result"))
        .join(by_claim, on="claim_result", how="inner")
        .drop("claim_result")
    )
    verdicts = pl.concat([by_figure.join(claims.select("figure_id"), on="figure_id", how="anti"), claims])
    return registry.select("figure_id").join(verdicts, on="figure_id", how="left")


# --- what the result must obey (the blocking checks of sensitivity_ranges) ------------------------------------

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
    earliest, latest = _time_bounds(p, gaps, p.lower, p.upper)
    times = study.os.astype(float)
    times[study.died == 0] = earliest + (latest - earliest) * np.clip(where, INSIDE_GAP, 1 - INSIDE_GAP)
    return times


def extremes_problems(study: Study, p: Placements, table: pl.DataFrame) -> list[str]:
    """Where a follow-up or at-risk range's end is not what a concrete reconstruction at that end gives.

    For each end, the placement the batched formulas put it at is made concrete (every censored time at the start
    or the end of what its gap and bounds allow) and its statistic recomputed directly: the reverse Kaplan–Meier
    median by ``survival.km_table``, the range and the numbers at risk by counting. A formula that misplaces an end
    shows as a difference; the ranges' own test (test_sensitivity) checks the formulas against brute force.
    """
    bounds = followup_bounds(p, p.gaps, p.lower, p.upper)
    fewest, most = at_risk_bounds(p, p.gaps, p.lower, p.upper, LANDMARK_MONTHS)

    def reverse_median(times: np.ndarray) -> float:
        median = survival.first_time_at_or_below(survival.km_table(times.tolist(), (1 - study.died).tolist()), "surv", 0.5)
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
