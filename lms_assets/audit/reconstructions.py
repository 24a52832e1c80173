"""Every reconstruction consistent with the paper: the OS placements and the site and dose allocations.

Pure NumPy/Polars; no Dagster. A *reconstruction* is one choice of everything the paper does not print:

* **OS placement**: which gap between the death times each living patient's last contact falls in, for
  every labelled assignment that respects each patient's bounds (at least the PFS, inside the enrolment
  window, at most the follow-up cut) and reproduces the printed median and a reachable printed 95% CI under
  the paper's (SPSS) method. Kaplan–Meier, log-rank and Cox depend on the times only through these gaps.
* **Allocation**: which patients have each primary site (Table 1's counts; a site study.toml restricts to one sex, to it)
  and each starting dose (Table 1's counts).

Every enumeration checks its size with ``feasibility.bound_enumeration`` before it allocates, the one gate on
what is held; the expansion of the placements runs in chunks of ``batched.MEMORY_BUDGET``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from lms_assets.audit.feasibility import bound_enumeration, os_feasibility
from lms_assets.tables import batched
from lms_assets.tables.printed import slug

# Bytes per cell of a chunk of labelled placements at its peak, counted from ``_labelled``: the gaps (8), the
# earliest times and both gap ends (24), the multiset each row came from (8) and the masks.
_BYTES_PER_CELL = 44


@dataclass(frozen=True)
class Placements:
    """Every labelled placement of the censored patients among the death times consistent with the printed OS values."""

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
    printed: dict[str, tuple[float, int]]  # the printed OS values the placements reproduce (name → value, decimals)


class NoConsistentReconstruction(ValueError):
    """The study leaves nothing to vary, or nothing it could be varied to reproduces the printed OS values."""


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
    orders = math.factorial(len(lower))
    bound_enumeration(
        f"labelled OS placements ({len(multisets):,} gap multisets reproducing the printed {', '.join(chosen)} × {orders:,} orders of the censored)",
        len(multisets) * orders,
        len(lower),
    )
    labelled, origin = _labelled(multisets, gap_lo, gap_hi, lower, upper)
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


def _labelled(multisets: np.ndarray, gap_lo: np.ndarray, gap_hi: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct assignment of each multiset's gaps to the patients their bounds allow, in lexicographic order, and
    the multiset each came from; expanded a chunk of multisets at a time.

    Permuting equal gaps repeats a row, and only within one multiset, so each chunk is deduplicated on its own.
    """
    n_cens = multisets.shape[1]
    permutations = np.array(list(itertools.permutations(range(n_cens))), dtype=np.int64).reshape(-1, n_cens)
    # One integer per row (its digits in base G) dedupes and sorts far faster than rows do, where it fits.
    digits = len(gap_lo) ** np.arange(n_cens - 1, -1, -1, dtype=np.int64) if len(gap_lo) ** n_cens < 2**62 else None
    parts = []
    for rows in batched.row_chunks(len(multisets), len(permutations) * n_cens * _BYTES_PER_CELL):
        labelled = multisets[rows][:, permutations].reshape(-1, n_cens)
        origin = rows.start + np.repeat(np.arange(len(labelled) // len(permutations)), len(permutations))
        earliest = np.maximum(gap_lo[labelled], lower)
        allowed = np.all((earliest < gap_hi[labelled]) & (earliest <= upper), axis=1)
        labelled, origin = labelled[allowed], origin[allowed]
        if digits is None:
            _, first = np.unique(labelled, axis=0, return_index=True)
        else:
            _, first = np.unique(labelled @ digits, return_index=True)
        parts.append((labelled[first], origin[first]))
    labelled, origin = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    order = np.argsort(labelled @ digits) if digits is not None else np.lexsort(labelled.T[::-1])
    return labelled[order], origin[order]


def gaps_of(times: npt.ArrayLike, death_times: npt.ArrayLike) -> np.ndarray:
    """The gap (0 = before the first death) each censoring time falls in; a time tied with a death is after it."""
    return np.searchsorted(np.unique(np.asarray(death_times, dtype=float)), np.asarray(times, dtype=float), side="right")


def _multinomial(counts: Sequence[int]) -> int:
    return math.factorial(sum(counts)) // math.prod(math.factorial(c) for c in counts)


def site_space(levels: Sequence[str], counts: Sequence[int], sex: np.ndarray, restricted: Mapping[str, str]) -> int:
    """How many allocations of the sites to patients meet the counts and ``restricted`` (a site's registry slug -> the
    one sex, as an ADSL code, that can have it: study.toml's ``sex_restricted_sites``)."""
    total, left = 1, len(sex)
    eligible_left = {s: int((sex == s).sum()) for s in set(restricted.values())}
    free = []
    for level, count in zip(levels, counts):
        required = restricted.get(slug(level))
        if required is None:
            free.append(count)
            continue
        total *= math.comb(eligible_left[required], count)
        eligible_left[required] -= count
        left -= count
    return total * _multinomial(free) if sum(free) == left else 0


def sample_sites(
    levels: Sequence[str], counts: Sequence[int], sex: np.ndarray, size: int, rng: np.random.Generator, restricted: Mapping[str, str]
) -> np.ndarray:
    """Uniform draws of site allocations meeting the counts and ``restricted`` (as ``site_space`` takes it): (size, P) level indices.

    Restricted levels are drawn first among their eligible patients, the rest shuffled over the others; every
    completion of a restricted choice has the same number of allocations, so the draw is uniform.
    """
    n_patients = len(sex)
    allocation = np.full((size, n_patients), -1, dtype=np.int64)
    for index, (level, count) in enumerate(zip(levels, counts)):
        required = restricted.get(slug(level))
        if required is None or count == 0:
            continue
        eligible = (sex == required)[None, :] & (allocation < 0)
        chosen = np.argsort(np.where(eligible, rng.random((size, n_patients)), np.inf), axis=1)[:, :count]
        np.put_along_axis(allocation, chosen, index, axis=1)
    rest = np.repeat(
        [i for i, lv in enumerate(levels) if restricted.get(slug(lv)) is None],
        [c for lv, c in zip(levels, counts) if restricted.get(slug(lv)) is None],
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
