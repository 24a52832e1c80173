"""The sensitivity table: one row per result with its range over the reconstructions, the share where its
conclusion holds or fails, and its verdict; and every printed value's verdict, for printed_audit.

Pure NumPy/Polars; no Dagster. The verdict is ``robust`` (one outcome everywhere), ``depends on the
reconstruction`` or ``fixed by the paper`` (no reconstructed input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from lms_assets.audit.basis import basis_of

ROBUST = "robust"
DEPENDS = "depends on the reconstruction"
FIXED = "fixed by the paper"

SENSITIVITY_SCHEMA = {
    "result": pl.String,
    "value_id": pl.String,
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
    if decimals < 0:  # significant values, for p-values
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
    value_id: str | None = None,
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
        "value_id": value_id,
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


def registry_rows(registry: pl.DataFrame, provenance: pl.DataFrame, covered: set[str]) -> list[dict]:
    """A verdict for every other printed value: imposed by the constraints, fixed by the paper, or not assessed."""
    rows = []
    for row in registry.filter(~pl.col("value_id").is_in(sorted(covered))).iter_rows(named=True):
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
                "value_id": row["value_id"],
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


# Printed claims judged by one result that has no value of its own: the Discussion's "no significant
# differences in PFS and OS" is printed as one count per endpoint, and both rest on the same set of tests.
CLAIM_RESULTS = {"subgroups.pfs.significant.n": "subgroups.none_significant", "subgroups.os.significant.n": "subgroups.none_significant"}


def verdicts_by_value(sensitivity: pl.DataFrame, registry: pl.DataFrame) -> pl.DataFrame:
    """Each registry value's sensitivity verdict and range (value_id, sensitivity_verdict, sensitivity_range), for printed_audit."""
    columns: list[pl.Expr | str] = [pl.col("verdict").alias("sensitivity_verdict"), "sensitivity_range"]
    by_value = sensitivity.filter(pl.col("value_id").is_not_null()).select("value_id", *columns)
    by_claim = sensitivity.select(pl.col("result").alias("claim_result"), *columns).unique("claim_result", keep="first")
    claims = (
        registry.select("value_id", pl.col("quantity").replace_strict(CLAIM_RESULTS, default=None).alias("claim_result"))
        .join(by_claim, on="claim_result", how="inner")
        .drop("claim_result")
    )
    verdicts = pl.concat([by_value.join(claims.select("value_id"), on="value_id", how="anti"), claims])
    return registry.select("value_id").join(verdicts, on="value_id", how="left")
