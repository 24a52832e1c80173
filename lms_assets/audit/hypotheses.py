"""The usual ways a printed number goes wrong, tested against each discrepancy and worded as hypotheses."""

from typing import Literal, cast

import polars as pl

from lms_assets.audit.findings import SUBGROUP_PREFIXES, compatible, grim_fractions
from lms_assets.checks.printed_values import DISCREPANCY, agrees
from lms_assets.tables import printed, survival


# Denominators tried for a percentage that is not k/n of the cohort: a subgroup or a miscount, half to twice the cohort.
def _candidate_denominators(cohort_n: int) -> range:
    return range(max(2, cohort_n // 2), 2 * cohort_n + 1)


def sample_means(adsl: pl.DataFrame, adtte: pl.DataFrame, cut) -> dict[str, float]:
    """The mean of the values behind each printed median: age, and the observed PFS, OS and follow-up times at the cut."""
    means: dict[str, float | None] = {"age.median": cast(float | None, adsl["AGE"].drop_nulls().mean())} if "AGE" in adsl.columns else {}
    at_cut = adtte.filter(pl.col("DCUTDT") == pl.lit(cut, dtype=pl.Date))
    for quantity, endpoint in (("pfs.median", "PFS"), ("os.median", "OS"), ("followup.median", "OS")):
        times = at_cut.filter(pl.col("PARAMCD") == endpoint)["AVAL"]
        if times.len():
            means[quantity] = cast(float | None, times.mean())
    return {q: float(m) for q, m in means.items() if m is not None}


def _bc_bounds(steps: pl.DataFrame, lower: pl.Expr, upper: pl.Expr) -> tuple[float | None, float | None]:
    band = steps.with_columns(lower.alias("_lo"), upper.alias("_hi"))
    return survival.first_time_at_or_below(band, "_lo", 0.5), survival.first_time_at_or_below(band, "_hi", 0.5)


def ci_alternatives(curves: pl.DataFrame, summary: pl.DataFrame, cut) -> dict[str, list[tuple[str, float | None, float | None]]]:
    """Per endpoint, the median's CI by other standard methods: SPSS at 90% and 99%, Brookmeyer–Crowley on plain, log and log-log bands."""
    found: dict[str, list[tuple[str, float | None, float | None]]] = {}
    z90, z99 = 1.6448536269514722, 2.5758293035489004
    for row in summary.filter((pl.col("data_cut") == pl.lit(cut, dtype=pl.Date)) & (pl.col("method") == "spss")).iter_rows(named=True):
        endpoint, median, se = row["endpoint"].lower(), row["median"], row["se"]
        options = []
        if median is not None and se is not None:
            options += [(f"SPSS median ± z·SE at {level}", median - z * se, median + z * se) for level, z in (("90%", z90), ("99%", z99))]
        steps = curves.filter((pl.col("data_cut") == cut) & (pl.col("endpoint") == row["endpoint"]))
        if steps.height:
            s, se_s, z = pl.col("surv"), pl.col("std_err").fill_null(0.0), survival.Z_95
            safe = pl.when(s > 0).then(s).otherwise(None)
            bands = (
                ("Brookmeyer–Crowley, plain band, 95%", s - z * se_s, s + z * se_s),
                ("Brookmeyer–Crowley, log band, 95%", s * (-z * se_s / safe).exp(), s * (z * se_s / safe).exp()),
                ("Brookmeyer–Crowley, log-log band, 95%", pl.col("ci_lower"), pl.col("ci_upper")),
            )
            options += [(name, *_bc_bounds(steps, lower, upper)) for name, lower, upper in bands]
        found[endpoint] = options
    return found


def _at(value: float, decimals: int) -> str:
    return printed.format_value(value, decimals)


def _interval(method: tuple[str, float | None, float | None], decimals: int) -> str:
    return "–".join(_at(v, decimals) if v is not None else "not reached" for v in method[1:])


def hypotheses(
    audit_rows: list[dict],
    registry: pl.DataFrame,
    cohort_n: int,
    means: dict[str, float],
    intervals: dict[str, list[tuple[str, float | None, float | None]]],
) -> dict[str, str]:
    """Per discrepancy, the explanations the numbers fit, worded as hypotheses (none is proven by fitting).

    Tried: a printed median that is the rounded mean; a percentage exact for another denominator (the same candidate
    denominators across every anomalous percentage, the one fitting most reported first); a CI that another standard
    method or confidence level gives; a range bound equal to another printed quantity.
    """
    by_id = {r["value_id"]: r for r in registry.iter_rows(named=True)}
    discrepant = [r for r in audit_rows if r["status"] == DISCREPANCY]
    found: dict[str, list[str]] = {}

    def add(value_id: str, text: str) -> None:
        found.setdefault(value_id, []).append(f"Hypothesis: {text}")

    for audited in discrepant:
        row = by_id[audited["value_id"]]
        value, decimals, quantity = row["value"], row["decimals"], row["quantity"]
        differs = not agrees(value, decimals, audited["recomputed"])
        if quantity.endswith(".median") and differs and quantity in means and agrees(value, decimals, means[quantity]):
            add(
                row["value_id"],
                f"the printed median {value:g} is the mean rounded (mean = {_at(means[quantity], decimals)}, median = {audited['shown']})",
            )
        if quantity.endswith((".ci_lower", ".ci_upper")) and differs:
            bound: Literal[1, 2] = 1 if quantity.endswith(".ci_lower") else 2
            methods = intervals.get(quantity.split(".")[0], [])
            fitting = [m for m in methods if m[bound] is not None and agrees(value, decimals, m[bound])]
            for method in fitting:
                add(row["value_id"], f"{value:g} is the {'lower' if bound == 1 else 'upper'} bound of {method[0]} ({_interval(method, decimals)})")
            if methods and not fitting:
                tried = "; ".join(f"{m[0]}: {_interval(m, decimals)}" for m in methods)
                found.setdefault(row["value_id"], []).append(f"No other standard CI method or level gives {value:g} (tried {tried}).")
        if quantity.endswith((".min", ".max")) and differs:
            family = quantity.rsplit(".", 1)[0] + "."
            same = [
                o for o in registry.iter_rows(named=True) if not o["quantity"].startswith(family) and o["unit"] == row["unit"] and compatible(row, o)
            ]
            if same:
                quantities = sorted({o["quantity"] for o in same})
                add(
                    row["value_id"],
                    f"the printed {'shortest' if quantity.endswith('.min') else 'longest'} value {value:g} equals the "
                    f"printed {', '.join(quantities)} ({same[0]['source']}: {same[0]['printed']!r}), as if copied from it",
                )

    # A printed k/n whose percentage is k over the cohort: the printed denominator is the slip, not the percentage.
    for audited in discrepant:
        row = by_id[audited["value_id"]]
        num, den = row.get("numerator"), row.get("denominator")
        if (
            num is not None
            and den is not None
            and den != cohort_n
            and "self_inconsistent" in audited["findings"]
            and agrees(row["value"], row["decimals"], 100.0 * num / cohort_n)
        ):
            add(
                row["value_id"],
                f"the printed denominator {den} is a slip for the cohort's {cohort_n}: "
                f"{num}/{cohort_n} = {100.0 * num / cohort_n:.{row['decimals'] + 1}f}%, as printed",
            )

    # Percentages impossible for the cohort, or printed as an inconsistent k/n: which other denominators make them exact.
    anomalies = [
        by_id[r["value_id"]]
        for r in discrepant
        if r["quantity"].endswith(".pct")
        and not r["quantity"].startswith(SUBGROUP_PREFIXES)
        and {"grim_impossible", "self_inconsistent"} & set(r["findings"])
    ]
    fits = {d: [(a, grim_fractions(a["value"], a["decimals"], d)) for a in anomalies] for d in _candidate_denominators(cohort_n) if d != cohort_n}
    fits = {d: [(a, ks) for a, ks in pairs if ks] for d, pairs in fits.items()}
    ranked = sorted((d for d in fits if fits[d]), key=lambda d: (-len(fits[d]), d))
    if ranked:
        best = ranked[0]
        shared = ", ".join(f"{a['value']:g}% = {ks[0]}/{best}" for a, ks in fits[best])
        for anomaly, _ in fits[best]:
            add(
                anomaly["value_id"],
                f"a denominator of {best} instead of the cohort's {cohort_n} fits "
                f"{len(fits[best])} of the {len(anomalies)} anomalous percentages exactly ({shared})",
            )
        for anomaly in anomalies:
            if anomaly["value_id"] not in found or not any("denominator" in h for h in found[anomaly["value_id"]]):
                own = next((d for d in sorted(fits) if any(a is anomaly for a, _ in fits[d])), None)
                if own is not None:
                    ks = next(ks for a, ks in fits[own] if a is anomaly)
                    add(anomaly["value_id"], f"{anomaly['value']:g}% is exactly {ks[0]}/{own}; no other anomalous percentage fits {own}")
    return {value_id: " ".join(texts) for value_id, texts in found.items()}
