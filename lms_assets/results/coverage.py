"""Whether the analysis results dataset holds every printed value as its printed-value check compared it.

Pure functions on Polars frames; ``analysis_results``' blocking check reads ``printed_value_problems``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from lms_assets.results.ard import KEY, at_published_cut
from lms_assets.tables.printed import VALUES_SCHEMA

# What a printed value that no table computes was compared with.
_NOTHING = pl.DataFrame(schema=VALUES_SCHEMA)


@dataclass(frozen=True)
class Coverage:
    """How the ARD holds the registry's printed values: why not as the checks compared them (``problems``), how many
    are one row each (``held``), and how many no table computes (``not_computed``)."""

    problems: list[str]
    held: int
    not_computed: int


def printed_value_problems(ard: pl.DataFrame, printed_values: pl.DataFrame, compared: Mapping[str, pl.DataFrame]) -> Coverage:
    """Whether the ARD holds the printed values as the checks compared them.

    ``compared``: each owner's ``recomputed_values`` at the published cut, what its printed-value checks judged.
    Every printed value a table computes must be exactly one ARD row at the published cut (the latest without
    one) with that value as ``stat``; one no table computes must have none. No two rows may share a ``KEY``.
    """
    problems = [
        f"{', '.join(f'{k}={v}' for k, v in row.items() if k != 'len')}: {row['len']} rows"
        for row in ard.group_by(list(KEY)).len().filter(pl.col("len") > 1).head(5).iter_rows(named=True)
    ]
    cut, at_cut = at_published_cut(ard, printed_values)
    held = not_computed = 0
    for row in printed_values.iter_rows(named=True):
        owner, quantity = row["owner"], row["quantity"]
        expected = compared.get(owner, _NOTHING).filter(pl.col("quantity") == quantity)
        found = at_cut.filter(pl.col("quantity") == quantity)
        where = f"{row['value_id']} ({quantity}, cut {cut})"
        if expected.is_empty():
            not_computed += 1
            if found.height:
                problems.append(f"{where}: no table computes it, yet {found.height} ARD row(s) give it")
            continue
        if found.height != 1:
            problems.append(f"{where}: {found.height} ARD rows, not one")
            continue
        held += 1
        want, got = expected["value"][0], found["stat"][0]
        if (want is None) != (got is None) or (want is not None and got is not None and abs(want - got) > 1e-12 * max(1.0, abs(want))):
            problems.append(f"{where}: ARD stat {got} but {owner}'s check compared {want}")
    return Coverage(problems, held, not_computed)
