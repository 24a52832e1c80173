"""Which common rounding rule and precision turn a recomputed value into the printed one."""

import decimal
import math

# The rules a table, a spreadsheet or a statistics package applies: half away from zero (SPSS, Excel, most readers),
# half to even (IEEE, R's and Python's round) and truncation (a value cut, not rounded).
ROUNDING_RULES = {"half-up": decimal.ROUND_HALF_UP, "half-even": decimal.ROUND_HALF_EVEN, "truncation": decimal.ROUND_DOWN}
ROUNDING_PRECISIONS = range(4)
# What the paper prints as an estimate a reader re-derives by rounding: means, medians, percentages and CI bounds.
ROUNDED_SUFFIXES = (".mean", ".median", ".pct", ".ci_lower", ".ci_upper")


def rounded(value: float, decimals: int, rule: str) -> decimal.Decimal:
    """``value`` rounded to ``decimals`` places by ``rule``, on its shortest decimal form (as the table shows it)."""
    return decimal.Decimal(repr(value)).quantize(decimal.Decimal(1).scaleb(-decimals), rounding=ROUNDING_RULES[rule])


def rounding_audit(row: dict, recomputed: float | None) -> dict[str, str | None]:
    """Which rule and precision reproduce a printed mean, median, percentage or CI bound from the recomputed value.

    ``rounding`` lists every (rule, decimals) that gives the printed value, "none" when none does, null where the
    printed value is no such estimate or nothing is recomputed. ``rounding_flag`` says when only an unusual rule does:
    not half-up at the printed precision, which is what a reader (and SPSS) applies.
    """
    if recomputed is None or not math.isfinite(recomputed) or not row["quantity"].endswith(ROUNDED_SUFFIXES):
        return {"rounding": None, "rounding_flag": None}
    printed = decimal.Decimal(repr(row["value"])).quantize(decimal.Decimal(1).scaleb(-row["decimals"]))
    # A precision finer than the printed one would have printed more digits; a coarser one only trailing zeros.
    matches = {d: [rule for rule in ROUNDING_RULES if rounded(recomputed, d, rule) == printed] for d in ROUNDING_PRECISIONS if d <= row["decimals"]}
    found = ", ".join(f"{' / '.join(rules)} at {d} dp" for d, rules in matches.items() if rules)
    if not found:
        return {"rounding": "none", "rounding_flag": None}
    usual = "half-up" in matches.get(row["decimals"], [])
    return {"rounding": found, "rounding_flag": None if usual else f"unusual: only {found} reproduces the printed {printed}"}
