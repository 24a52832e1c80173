"""Log-rank and Cox of one grouping over many samples at once: the same patients' risk sets under every
reconstruction, as NumPy arrays, where ``survival`` fits one sample with lifelines.

Pure NumPy/SciPy. The samples are evaluated in chunks whose size follows from a memory budget and the arrays
each sample needs, so the working memory stays bounded whatever the number of samples; samples with the same
risk sets are evaluated once.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# Cox Newton–Raphson: a binary covariate's β beyond this is a monotone likelihood (HR → 0 or ∞), not an estimate.
COX_MAX_ABS_BETA = 15.0
COX_ITERATIONS = 60
COX_TOLERANCE = 1e-10
# Working memory of one chunk of samples. The arrays a sample needs are counted by ``bytes_per_sample``.
MEMORY_BUDGET = 256 * 2**20
# 8-byte arrays the steps hold at their peak, counted from the code below: per patient, six in risk_sets (the
# broadcast inputs' kept entries and their flat indices) and six in _distinct_samples (the codes, sorted, padded,
# shifted, and the chunk's own rows); four per group and time in risk_sets (the counts and their running sums);
# logrank holds eight per time and group pair, cox_binary eight per time and tied death.
_PER_PATIENT, _PER_GROUP_TIME, _PER_GROUP_PAIR_TIME, _PER_TIE_TIME = 12, 4, 8, 8


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
    # The running rows' arrays, narrowed only when rows leave (most rows run to the last few iterations).
    level, reference, tied, observed = level_part, reference_part, active, level_events
    for _ in range(COX_ITERATIONS):
        if not len(running):
            break
        phi = np.exp(beta[running])[:, None, None]
        derivative = phi * level
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(tied, derivative / (derivative + reference), 0.0)
        score = observed - ratio.sum(axis=(1, 2))
        information = (ratio - ratio**2).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.clip(np.where(information > 0, score / information, 0.0), -2.0, 2.0)
        beta[running] += step
        done = np.abs(step) < COX_TOLERANCE
        converged[running[done]] = True
        # Rows running off to ±∞ are left: their likelihood has no maximum.
        keep = ~done & (np.abs(beta[running]) < COX_MAX_ABS_BETA)
        if not keep.all():
            running, level, reference, tied, observed = running[keep], level[keep], reference[keep], tied[keep], observed[keep]
    estimable = converged & (np.abs(beta) < COX_MAX_ABS_BETA) & (d0.sum(axis=1) > 0) & (level_events > 0)
    return np.where(estimable, np.exp(beta), np.nan), estimable


def bytes_per_sample(n_patients: int, n_times: int, n_groups: int, ties: int) -> int:
    """The working memory one sample takes in ``subgroup_tests``, at most ``ties`` deaths tied at one time."""
    per_time = _PER_GROUP_TIME * n_groups + _PER_GROUP_PAIR_TIME * n_groups**2 + _PER_TIE_TIME * max(ties, 1)
    return 8 * (_PER_PATIENT * n_patients + per_time * (n_times + 1))


def row_chunks(n_rows: int, bytes_per_row: int) -> list[slice]:
    """Consecutive slices covering ``n_rows`` rows (one empty slice for none), each holding at most ``MEMORY_BUDGET``
    bytes at ``bytes_per_row`` (at least one row)."""
    step = max(1, MEMORY_BUDGET // max(bytes_per_row, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, max(n_rows, 1), step)]


def subgroup_tests(
    until: np.ndarray, event_index: np.ndarray, n_times: int, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-rank p of every sample (rows of ``until`` and ``group``, broadcast), and the Cox HR of level 1 vs 0 when
    there are two groups; in chunks of at most ``MEMORY_BUDGET`` bytes (``row_chunks``).

    The statistics depend on a sample only through its risk sets, and reconstructions differing where no test
    can see (two censored patients of one group swapping gaps) share them: each distinct one is fitted once.
    """
    n_samples = max(until.shape[0], event_index.shape[0], group.shape[0])
    # Samples drawn in more than one input (OS times and sites at once) hardly ever repeat: sorting them costs more than it saves.
    dedupe = sum(a.shape[0] > 1 for a in (until, event_index, group)) == 1
    p = np.empty(n_samples)
    hr = np.empty(n_samples) if n_groups == 2 else None
    for rows in row_chunks(n_samples, bytes_per_sample(until.shape[1], n_times, n_groups, _most_tied(event_index))):
        chunk = [a if a.shape[0] == 1 else a[rows] for a in (until, event_index, group)]
        inverse: slice | np.ndarray = slice(None)
        if dedupe:
            first, inverse = _distinct_samples(chunk[0], chunk[1], chunk[2], n_times)
            chunk = [a if a.shape[0] == 1 else a[first] for a in chunk]
        at_risk, events = risk_sets(chunk[0], chunk[1], chunk[2], n_times, n_groups)
        p[rows] = logrank(at_risk, events)[inverse]
        if hr is not None:
            hr[rows] = cox_binary(at_risk, events)[0][inverse]
    return p, hr


def _most_tied(event_index: np.ndarray) -> int:
    """The most events at one time in any sample: Efron's correction needs a slot for each."""
    happened = event_index >= 0
    if not happened.any():
        return 0
    rows = np.broadcast_to(np.arange(event_index.shape[0])[:, None], event_index.shape)
    return int(np.bincount(rows[happened] * (event_index.max() + 1) + event_index[happened]).max())


def _distinct_samples(until: np.ndarray, event_index: np.ndarray, group: np.ndarray, n_times: int) -> tuple[np.ndarray, np.ndarray]:
    """The first sample of each set of samples with the same risk sets, and every sample's index into those firsts.

    A group's risk sets are counts over its patients' (until, event) pairs, so samples whose groups hold the same
    pairs share them: each sample's key is its patients' (group, until, event) codes sorted, a patient left out coded −1.
    """
    until, event_index, group = np.broadcast_arrays(until, event_index, group)
    code = np.where(group >= 0, (group * (n_times + 1) + until) * (n_times + 2) + event_index + 1, -1)
    keys = np.sort(code, axis=1) + 1
    n_samples = len(keys)
    # The codes are small: packed several to a 63-bit word, the samples sort on a few words instead of every patient.
    bits = max(int(keys.max(initial=0)).bit_length(), 1)
    per_word = 63 // bits
    padded = np.pad(keys, ((0, 0), (0, -keys.shape[1] % per_word)))
    words = (padded.reshape(n_samples, -1, per_word) << (bits * np.arange(per_word, dtype=np.int64))).sum(axis=2)
    order = np.lexsort(words.T[::-1])
    starts = np.r_[True, (words[order][1:] != words[order][:-1]).any(axis=1)]
    inverse = np.empty(n_samples, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse
