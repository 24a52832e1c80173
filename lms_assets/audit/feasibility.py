"""Which placements of the unpublished last-contact times the printed OS values allow, and the bound on enumerating them.

``os_feasibility`` examines every placement of the censored patients among the death times exactly; ``reachable``
says whether one of them reproduces a set of printed values together. ``bound_enumeration`` is the one limit on how
many reconstructions any enumeration (this one and ``audit.sensitivity``'s) may hold at once.
"""

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from lms_assets.checks.printed_values import half_unit
from lms_assets.tables import survival

# Cells (rows × columns) an enumeration of reconstructions may hold at once. The shipped study's largest is about
# 2.1 million (24,570 labelled placements of 7 patients before deduplication: 302,400 × 7); each cell costs some
# 20 bytes with its temporaries, so this keeps a step under half a gigabyte. An inconsistent input (a wrong SPSS SE
# leaves only the median to match) asks for thousands of times more.
MAX_ENUMERATED_CELLS = 20_000_000


class EnumerationTooLarge(ValueError):
    """An enumeration of reconstructions would exceed ``MAX_ENUMERATED_CELLS``: raised before anything is allocated.

    The message names the quantity enumerated and its count, so the failure says what grew, not that memory ran out.
    """

    def __init__(self, quantity: str, rows: int, columns: int):
        self.quantity, self.rows, self.columns = quantity, rows, columns
        super().__init__(
            f"{quantity}: {rows:,} rows of {columns} to enumerate ({rows * columns:,} cells) exceed the limit of "
            f"{MAX_ENUMERATED_CELLS:,}; the records or the printed values are inconsistent, or a computation upstream is wrong"
        )


def bound_enumeration(quantity: str, rows: int, columns: int) -> None:
    """Raise ``EnumerationTooLarge`` when ``rows`` × ``columns`` cells exceed ``MAX_ENUMERATED_CELLS``; call it before allocating."""
    if rows * max(columns, 1) > MAX_ENUMERATED_CELLS:
        raise EnumerationTooLarge(quantity, rows, columns)


@dataclass(frozen=True)
class Feasibility:
    """What every assignment of the unpublished censoring times allows for the printed OS values."""

    patterns_examined: int
    patterns_feasible: int
    estimates: pl.DataFrame  # one row per feasible pattern: median, CI, and the follow-up values it allows


def os_feasibility(death_times: Iterable[float], censor_bounds: Sequence[tuple[float, float]]) -> Feasibility:
    """Every placement of the censored patients among the death times, within each one's (lower, upper) bounds.

    The Kaplan–Meier median and SPSS's interval depend only on where each censoring falls among the death
    times (a censoring tied with a death counts as at risk at it), so the search is exact and exhaustive
    over multisets of gaps between death times; a multiset is feasible when the patients' bounds can fill it
    (Hall's condition on sorted bounds). All feasible patterns are estimated together, grouped by pattern.
    """
    deaths = sorted(death_times)
    distinct = sorted(set(deaths))
    # Gap j holds censorings in [distinct[j-1], distinct[j]); the last gap is beyond the last death.
    gap_lo = [0.0, *distinct]
    gap_hi = [*distinct, math.inf]
    # Any time strictly inside a gap orders the same way as every other time in it.
    gap_time = [(lo + hi) / 2 if hi != math.inf else lo + 1.0 for lo, hi in zip(gap_lo, gap_hi)]
    lowers = sorted(lo for lo, _ in censor_bounds)
    upper = min(hi for _, hi in censor_bounds)
    # Each pattern becomes a Kaplan–Meier curve of every patient: the frame below has (deaths + censored) rows per pattern.
    bound_enumeration(
        "OS gap multisets (placements of the censored among the death times)",
        math.comb(len(gap_lo) + len(censor_bounds) - 1, len(censor_bounds)),
        len(deaths) + len(censor_bounds),
    )
    patterns = np.array(list(itertools.combinations_with_replacement(range(len(gap_lo)), len(censor_bounds))), dtype=np.int64).reshape(
        -1, len(censor_bounds)
    )
    gaps = patterns[np.all((np.asarray(gap_hi)[patterns] > lowers) & (np.asarray(gap_lo)[patterns] <= upper), axis=1)]
    if not len(gaps):
        return Feasibility(len(patterns), 0, pl.DataFrame(schema=_FEASIBILITY_SCHEMA))
    n_pat, n_cens = gaps.shape
    frame = pl.DataFrame(
        {
            "pattern": np.repeat(np.arange(n_pat), len(deaths) + n_cens),
            "time": np.hstack([np.tile(deaths, (n_pat, 1)), np.asarray(gap_time)[gaps]]).ravel(),
            "event": np.tile(np.r_[np.ones(len(deaths), dtype=np.int64), np.zeros(n_cens, dtype=np.int64)], n_pat),
        }
    )
    medians = survival.spss_medians(survival.km_steps(frame, by=["pattern"]), by=["pattern"])
    # Reverse Kaplan–Meier (censorings are the events): its median falls in one gap; any time there is possible.
    reverse = survival.km_steps(frame.with_columns((1 - pl.col("event")).alias("event")), by=["pattern"])
    followup_gap = (
        reverse.filter((pl.col("events") > 0) & (pl.col("surv") <= 0.5 + survival.TOLERANCE))
        .group_by("pattern")
        .agg(pl.col("time").first())
        .with_columns(pl.col("time").replace_strict(gap_time, list(range(len(gap_time)))).alias("followup_gap"))
    )
    patterns_frame = pl.DataFrame(
        {
            "pattern": np.arange(n_pat),
            # From the 2-D array directly: a list column built from Python lists is slow.
            "gaps": pl.Series(gaps).cast(pl.List(pl.Int64)),
            "first_gap": gaps[:, 0],
            "last_gap": gaps[:, -1],
        }
    )
    estimates = (
        patterns_frame.join(medians, on="pattern")
        .join(followup_gap.select("pattern", "followup_gap"), on="pattern", how="left")
        .with_columns(
            followup_median_lo=pl.max_horizontal(
                pl.col("followup_gap").map_elements(lambda g: gap_lo[g], return_dtype=pl.Float64), pl.lit(lowers[0])
            ),
            followup_median_hi=pl.col("followup_gap").map_elements(lambda g: min(gap_hi[g], upper), return_dtype=pl.Float64),
            # Shortest follow-up: a censoring before the first death may sit anywhere from its bound up to it.
            followup_min_lo=pl.when(pl.col("first_gap") == 0).then(pl.lit(lowers[0])).otherwise(pl.lit(distinct[0])),
            followup_min_hi=pl.lit(distinct[0]),
            # Longest follow-up: at least the last death, the last censoring's gap and the largest bound.
            followup_max_lo=pl.max_horizontal(
                pl.lit(deaths[-1]), pl.col("last_gap").map_elements(lambda g: gap_lo[g], return_dtype=pl.Float64), pl.lit(lowers[-1])
            ),
            followup_max_hi=pl.max_horizontal(
                pl.lit(deaths[-1]), pl.col("last_gap").map_elements(lambda g: min(gap_hi[g], upper), return_dtype=pl.Float64)
            ),
        )
        .select(list(_FEASIBILITY_SCHEMA))
        .cast(_FEASIBILITY_SCHEMA)
    )
    return Feasibility(len(patterns), n_pat, estimates)


_FEASIBILITY_SCHEMA = pl.Schema(
    {
        "gaps": pl.List(pl.Int64),
        "median": pl.Float64(),
        "ci_lower": pl.Float64(),
        "ci_upper": pl.Float64(),
        "followup_median_lo": pl.Float64(),
        "followup_median_hi": pl.Float64(),
        "followup_min_lo": pl.Float64(),
        "followup_min_hi": pl.Float64(),
        "followup_max_lo": pl.Float64(),
        "followup_max_hi": pl.Float64(),
    }
)


def reachable(estimates: pl.DataFrame, printed: dict[str, tuple[float, int]]) -> bool:
    """Whether one feasible pattern reproduces every printed value in ``printed`` (name → (value, decimals)) at once."""
    mask = pl.lit(True)
    for name, (value, decimals) in printed.items():
        if name.startswith("followup_"):
            mask &= (pl.col(f"{name}_lo") <= value + half_unit(decimals)) & (pl.col(f"{name}_hi") >= value - half_unit(decimals))
        else:
            mask &= (pl.col(name) - value).abs() <= half_unit(decimals) + 1e-9
    return estimates.filter(mask).height > 0
