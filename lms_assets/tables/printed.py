"""The values a summary table shows for the printed quantities it owns, and how every value is shown.

A *values* frame is what every summary derivation exposes for checking: one row per quantity
(``quantity``: str, ``value``: f64, nullable, ``patients``: list[i64] of the SUBJIDs it rests on).
Quantity names are shared with ``printed_values.csv`` (column ``quantity``). Each table module declares the
quantities it owns next to the function that reads them (``PrintedQuantities``); ``checks.printed_values`` judges them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import cast

import polars as pl

VALUES_SCHEMA = pl.Schema({"quantity": pl.String(), "value": pl.Float64(), "patients": pl.List(pl.Int64)})

# recomputed_values(table, published_cut) -> values frame: the cells a table shows, as its printed quantities' values.
RecomputedValues = Callable[[pl.DataFrame, dt.date | None], pl.DataFrame]


@dataclass(frozen=True)
class PrintedQuantities:
    """The printed quantities one summary table owns: the registry quantities starting with one of ``prefixes``,
    read from the cells of ``table`` (the asset's name) by ``recomputed_values``."""

    table: str
    prefixes: tuple[str, ...]
    recomputed_values: RecomputedValues


def values_frame(rows: Iterable[tuple[str, float | None, Iterable[int]]]) -> pl.DataFrame:
    """Build a values frame from (quantity, value, patient ids) triples."""
    quantities, values, patients = [], [], []
    for quantity, value, ids in rows:
        quantities.append(quantity)
        values.append(None if value is None else float(value))
        patients.append(sorted(int(i) for i in ids))
    return pl.DataFrame({"quantity": quantities, "value": values, "patients": patients}, schema=VALUES_SCHEMA)


def published_cut(registry: pl.DataFrame) -> dt.date | None:
    """The data cut the paper's printed values refer to: the latest ``data_cut`` the registry names, None when it names none.

    The one derivation of the published cut. ``registry`` is the typed registry or the ``printed_values`` asset (which
    keeps the registry's columns): ``printed_values`` stores the result in its ``published_cut`` column, and every asset
    that needs the cut (the checks, the audit, the sensitivity analysis, the charts, the report) calls this on it.
    """
    cuts = registry["data_cut"].drop_nulls()
    return cast(dt.date | None, cuts.max()) if cuts.len() else None


def slug(text: str) -> str:
    """Registry key of a printed label: lower-cased, each run of non-alphanumerics one '_' (Nausea/vomiting → nausea_vomiting)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def count_values(rows: pl.DataFrame) -> pl.DataFrame:
    """The ``<key>.n`` and ``<key>.pct`` values of counted rows, read from the ``n`` and ``pct`` cells the table shows.

    ``rows`` has ``key``, ``n``, ``pct`` and ``patients`` (the SUBJIDs counted). Nothing is re-derived from the
    patient lists: a wrong cell in the summary table is what the reader sees, so it is what is compared.
    """
    patients = pl.col("patients").list.sort()
    return pl.concat(
        [
            rows.select((pl.col("key") + ".n").alias("quantity"), pl.col("n").cast(pl.Float64).alias("value"), patients.alias("patients")),
            rows.select((pl.col("key") + ".pct").alias("quantity"), pl.col("pct").cast(pl.Float64).alias("value"), patients.alias("patients")),
        ]
    ).cast(VALUES_SCHEMA)


def pooled_cells(rows: pl.DataFrame, key: str) -> pl.DataFrame:
    """One counted row for a grouping of shown rows (ECOG 0–1 = ECOG 0 + ECOG 1): the sums of their n and pct cells.

    The rows' patients are disjoint (each patient is in one level), so the sums are the grouping's n and %.
    """
    patients = rows["patients"].explode().drop_nulls().unique().sort().cast(pl.Int64)
    return pl.DataFrame(
        {"key": [key], "n": [rows["n"].sum()], "pct": [rows["pct"].sum() if rows.height else None], "patients": [patients]},
        schema={"key": pl.String, "n": pl.Int64, "pct": pl.Float64, "patients": pl.List(pl.Int64)},
    )


NOT_COMPUTABLE = "not computable"
# Runs of patient numbers shown before the rest is summarised: metadata must stay bounded on a large study.
MAX_RUNS = 30


def fixed(value: float, decimals: int) -> str:
    """``value`` at ``decimals`` places, halves rounded up on the decimal as printed (``repr``): 5.2375 is 5.238 at
    three places, never 5.237 because its binary double lies just below the half. The one rounding rule of every
    value the platform shows (report, checks, ``printed_audit``); ``graphs.render.significant`` applies it to
    significant digits."""
    if not math.isfinite(value):
        return f"{value:.{decimals}f}"
    return format(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP), "f")


def format_value(value: float | None, decimals: int) -> str:
    """A recomputed value at the printed precision plus one digit, so a reader sees how close it was."""
    if value is None or math.isnan(value):
        return NOT_COMPUTABLE
    return fixed(value, decimals + 1)


def id_ranges(ids: Iterable[int]) -> str:
    """Patient numbers as runs (1–19, or 1–3, 5, 7–9): short enough to read in the UI whatever the cohort size."""
    ordered = sorted(set(ids))
    runs: list[tuple[int, int]] = []
    for i in ordered:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs[:MAX_RUNS])
    if len(runs) > MAX_RUNS:
        text += f", … ({len(ordered)} patients in all)"
    return text or "none"
