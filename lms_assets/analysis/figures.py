"""Comparing recomputed figures with the figures the paper printed, at the printed precision.

A *figures* frame is what every summary derivation exposes for checking: one row per quantity
(``quantity``: str, ``value``: f64, nullable, ``patients``: list[i64] of the SUBJIDs it rests on).
Quantity names are shared with ``published_figures.csv`` (column ``quantity``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

FIGURES_SCHEMA = {"quantity": pl.String, "value": pl.Float64, "patients": pl.List(pl.Int64)}

# Comparisons at a rounding boundary (31.75 printed as 31.7) must not depend on binary noise.
_EPSILON = 1e-9


def figures_frame(rows: Iterable[tuple[str, float | None, Iterable[int]]]) -> pl.DataFrame:
    """Build a figures frame from (quantity, value, patient ids) triples."""
    quantities, values, patients = [], [], []
    for quantity, value, ids in rows:
        quantities.append(quantity)
        values.append(None if value is None else float(value))
        patients.append(sorted(int(i) for i in ids))
    return pl.DataFrame({"quantity": quantities, "value": values, "patients": patients}, schema=FIGURES_SCHEMA)


def slug(text: str) -> str:
    """Registry key of a printed label: lower-cased, each run of non-alphanumerics one '_' (Nausea/vomiting → nausea_vomiting)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def count_figures(rows: pl.DataFrame) -> pl.DataFrame:
    """The n and % figures of counted rows: ``<key>.n`` and ``<key>.pct`` (percent of ``denominator``; none when it is 0).

    ``rows`` has ``key``, ``patients`` (distinct SUBJIDs) and ``denominator``. Vectorised: a million patients stay in Polars.
    """
    n = pl.col("patients").list.len().cast(pl.Float64)
    pct = pl.when(pl.col("denominator") > 0).then(100.0 * n / pl.col("denominator"))
    patients = pl.col("patients").list.sort()
    return pl.concat(
        [
            rows.select((pl.col("key") + ".n").alias("quantity"), n.alias("value"), patients.alias("patients")),
            rows.select((pl.col("key") + ".pct").alias("quantity"), pct.alias("value"), patients.alias("patients")),
        ]
    ).cast(FIGURES_SCHEMA)


def agrees(printed: float, decimals: int, recomputed: float | None) -> bool:
    """Printed precision: the recomputed value rounds to the printed one (a tie may round either way)."""
    if recomputed is None:
        return False
    return abs(recomputed - printed) <= 0.5 * 10 ** (-decimals) + _EPSILON


def format_value(value: float | None, decimals: int) -> str:
    """A recomputed value at the printed precision plus one digit, so a reader sees how close it was."""
    if value is None:
        return "not computable"
    return f"{value:.{decimals + 1}f}"
