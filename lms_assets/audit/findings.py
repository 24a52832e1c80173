"""The ways the paper contradicts itself about a printed value, each a ``finding`` with its explanation.

Granularity (GRIM), a printed "k (x%)" against itself, the same quantity printed differently in two places, and
printed OS values no placement of the unpublished last-contact times reaches. Pure functions on the typed registry
(``schemas.REGISTRY``); each returns a frame of ``FINDINGS_SCHEMA``.
"""

import math
from collections.abc import Iterable

import polars as pl

from lms_assets.audit.feasibility import Feasibility, reachable
from lms_assets.checks.printed_values import agrees, half_unit

FINDINGS_SCHEMA = {"value_id": pl.String, "finding": pl.String, "explanation": pl.String}

# Quantities whose printed denominator is a subgroup (e.g. 2/7 on combination therapy), not the cohort.
SUBGROUP_PREFIXES = ("pr_rate.",)


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


def _findings(rows: Iterable[tuple[str, str, str]]) -> pl.DataFrame:
    rows = list(rows)
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA, orient="row") if rows else empty_findings()


def grim_fractions(pct: float, decimals: int, n: int) -> list[int]:
    """GRIM (Brown & Heathers): the whole k for which 100·k/n rounds to the printed percentage."""
    return [k for k in range(n + 1) if agrees(pct, decimals, 100.0 * k / n)]


def _nearest(pct: float, n: int) -> str:
    below = math.floor(pct * n / 100)
    options = [k for k in (below, below + 1) if 0 <= k <= n]
    return " and ".join(f"{k}/{n} = {100 * k / n:.1f}%" for k in options)


def granularity_findings(registry: pl.DataFrame, cohort_n: int) -> pl.DataFrame:
    """GRIM: every printed percentage of patients must be k/n for a whole k, and a printed k/n must agree with itself and the cohort.

    Only proportions of patients (quantities ending ``.pct``) are granular; a mean of percentages is not.
    """
    found = []
    proportions = registry.filter((pl.col("unit") == "percent") & pl.col("quantity").str.ends_with(".pct"))
    for row in proportions.iter_rows(named=True):
        pct, decimals = row["value"], row["decimals"]
        subgroup = row["quantity"].startswith(SUBGROUP_PREFIXES)
        num, den = row["numerator"], row["denominator"]
        if den is not None:
            if num is not None and not agrees(pct, decimals, 100.0 * num / den):
                found.append(
                    (
                        row["value_id"],
                        "self_inconsistent",
                        f"{row['source']} prints {pct:g}% as {num}/{den}, but {num}/{den} = {100 * num / den:.1f}%",
                    )
                )
            if (den != cohort_n and not subgroup) or den > cohort_n:
                found.append(
                    (row["value_id"], "wrong_denominator", f"{row['source']} prints the denominator {den}, but the cohort has {cohort_n} patients")
                )
        n = den if (subgroup and den is not None) else cohort_n
        if not grim_fractions(pct, decimals, n):
            found.append(
                (
                    row["value_id"],
                    "grim_impossible",
                    f"{row['source']} prints {pct:g}%, which is not k/{n} for any whole k (nearest: {_nearest(pct, n)})",
                )
            )
    return _findings(found)


def paired_count_findings(registry: pl.DataFrame, cohort_n: int) -> pl.DataFrame:
    """A printed "k (x%)" must agree with itself: x% = k/n for the cohort size n."""
    counts = registry.filter(pl.col("quantity").str.ends_with(".n")).with_columns(pl.col("quantity").str.strip_suffix(".n").alias("stem"))
    pcts = registry.filter(pl.col("quantity").str.ends_with(".pct")).with_columns(pl.col("quantity").str.strip_suffix(".pct").alias("stem"))
    pairs = pcts.join(counts.select("source", "stem", pl.col("value").alias("count")), on=["source", "stem"])
    found = []
    subgroup = pl.any_horizontal(pl.col("quantity").str.starts_with(p) for p in SUBGROUP_PREFIXES)
    for row in pairs.filter(~subgroup).iter_rows(named=True):
        implied = 100.0 * row["count"] / cohort_n
        if not agrees(row["value"], row["decimals"], implied):
            found.append(
                (
                    row["value_id"],
                    "self_inconsistent",
                    f"{row['source']} prints {row['count']:g} patients as {row['value']:g}%, but {row['count']:g}/{cohort_n} = {implied:.1f}%",
                )
            )
    return _findings(found)


def compatible(a: dict, b: dict) -> bool:
    """Two printings can be the same number if their rounding intervals overlap."""
    return abs(a["value"] - b["value"]) <= half_unit(a["decimals"]) + half_unit(b["decimals"]) + 1e-9


def cross_source_findings(registry: pl.DataFrame) -> pl.DataFrame:
    """Cross-source: printings of the same quantity in different places must agree at their precisions."""
    found = []
    for (quantity,), group in registry.group_by("quantity", maintain_order=True):
        rows = list(group.iter_rows(named=True))
        for row in rows:
            others = [o for o in rows if o["value_id"] != row["value_id"] and not compatible(row, o)]
            if others:
                listed = "; ".join(f"{o['source']} prints {o['printed']!r}" for o in others)
                found.append((row["value_id"], "cross_source_conflict", f"{row['source']} prints {row['printed']!r} for {quantity}, but {listed}"))
    return _findings(found)


# Values whose printed values rest on the unpublished last-contact times, by registry quantity.
_FEASIBILITY_QUANTITIES = {
    "os.median": "median",
    "os.ci_lower": "ci_lower",
    "os.ci_upper": "ci_upper",
    "followup.median": "followup_median",
    "followup.min": "followup_min",
    "followup.max": "followup_max",
}


def feasibility_findings(registry: pl.DataFrame, feasibility: Feasibility) -> pl.DataFrame:
    """Each place's printed OS values, taken together, must be reachable by some placement of the unpublished times."""
    rows = registry.filter(pl.col("quantity").is_in(list(_FEASIBILITY_QUANTITIES)))
    found = []
    for (source,), group in rows.group_by("source", maintain_order=True):
        by_kind: dict[str, list[dict]] = {"os": [], "followup": []}
        for row in group.iter_rows(named=True):
            by_kind[row["quantity"].split(".")[0]].append(row)
        for printed_rows in by_kind.values():
            if not printed_rows:
                continue
            printed = {_FEASIBILITY_QUANTITIES[r["quantity"]]: (r["value"], r["decimals"]) for r in printed_rows}
            if reachable(feasibility.estimates, printed):
                continue
            what = ", ".join(f"{r['quantity']} = {r['value']:g}" for r in printed_rows)
            # Say which single values are reachable, so the sentence points at the impossible one.
            alone = [
                r["quantity"]
                for r in printed_rows
                if not reachable(feasibility.estimates, {_FEASIBILITY_QUANTITIES[r["quantity"]]: (r["value"], r["decimals"])})
            ]
            detail = f"; {', '.join(alone)} cannot be reached even alone" if alone else ""
            for r in printed_rows:
                found.append(
                    (
                        r["value_id"],
                        "unreachable",
                        f"{source} prints {what}: no placement of the unpublished last-contact times "
                        f"({feasibility.patterns_feasible} feasible of {feasibility.patterns_examined} examined) "
                        f"gives these together under the paper's method{detail}",
                    )
                )
    return _findings(found)
