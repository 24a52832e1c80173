"""The printed values the survival tables show: the medians, intervals and events of ``survival_summary``, the
follow-up of ``survival_followup`` and the subgroup claim of ``survival_subgroups``, each read at the published cut.

Pure functions on Polars frames; no Dagster imports.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from lms_assets.tables.printed import PrintedQuantities, values_frame
from lms_assets.tables.subgroups import SUBGROUP_CLAIM
from lms_assets.tables.survival import SIGNIFICANCE


def _cut(table: pl.DataFrame, published_cut: dt.date | None) -> pl.DataFrame:
    """The rows of the published cut, or of the latest cut when no cut is named."""
    cut = published_cut if published_cut is not None else table["data_cut"].max()
    return table.clear() if cut is None else table.filter(pl.col("data_cut") == cut)


def recomputed_values(table: pl.DataFrame, published_cut: dt.date | None) -> pl.DataFrame:
    """Recomputed survival values of the printed quantities: median, 95% CI and events of PFS and OS from the ``method = 'spss'`` rows at the published cut.

    ``survival_summary`` holds no SUBJIDs (its columns are fixed), so the patients lists are empty.
    """
    rows: list[tuple[str, float | None, list[int]]] = []
    for row in _cut(table, published_cut).filter(pl.col("method") == "spss").iter_rows(named=True):
        prefix = row["endpoint"].lower()
        rows.extend((f"{prefix}.{quantity}", row[quantity], []) for quantity in ("median", "ci_lower", "ci_upper", "events"))
    return values_frame(rows)


def followup_recomputed_values(table: pl.DataFrame, published_cut: dt.date | None) -> pl.DataFrame:
    """Printed follow-up: reverse-KM median, shortest and longest observed OS time at the published cut."""
    rows: list[tuple[str, float | None, list[int]]] = []
    for row in _cut(table, published_cut).filter(pl.col("endpoint") == "OS").iter_rows(named=True):
        rows.extend((f"followup.{quantity}", row[quantity], row["patients"]) for quantity in ("median", "min", "max"))
    return values_frame(rows)


def subgroup_recomputed_values(table: pl.DataFrame, published_cut: dt.date | None) -> pl.DataFrame:
    """The printed claim of no significant subgroup difference (``SUBGROUP_CLAIM``): per endpoint, the comparisons the
    table shows (every one the study declares) whose log-rank p is below 0.05.

    A comparison without a log-rank p (a level empty, no event) counts as not significant; its note says why.
    """
    rows: list[tuple[str, float | None, list[int]]] = []
    at_cut = _cut(table, published_cut)
    for (endpoint,), group in at_cut.group_by("endpoint", maintain_order=True):
        significant = group.filter(pl.col("logrank_p") < SIGNIFICANCE).height
        rows.append((SUBGROUP_CLAIM.quantity_of(endpoint), significant, []))
    return values_frame(rows)


SUMMARY = PrintedQuantities("survival_summary", ("pfs.", "os."), recomputed_values)
FOLLOWUP = PrintedQuantities("survival_followup", ("followup.",), followup_recomputed_values)
SUBGROUP_COUNTS = PrintedQuantities("survival_subgroups", ("subgroups.",), subgroup_recomputed_values)
