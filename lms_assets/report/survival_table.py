"""The survival section's rows: each median, CI and SE as the page shows it, at the places the paper prints them."""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from lms_assets.graphs import km
from lms_assets.report.marks import RECONSTRUCTED_MARK
from lms_assets.tables import printed

SURVIVAL_METHODS = {
    "spss": "SPSS 24: median ± 1.96·SE, SE = Greenwood SE of S(median) / density (Collett); the paper's method",
    "brookmeyer_crowley_loglog": "Brookmeyer–Crowley: the pointwise log(−log) band crossing S = 0.5 (R survival, lifelines)",
}
# Places of a survival estimate no printing fixes (the SE; a study without a registry).
SURVIVAL_DECIMALS = 2


def _survival_decimals(registry: pl.DataFrame) -> dict[str, int]:
    """Places of each survival estimate: the paper's finest printing of it plus one digit, as the tables above show it."""
    finest = registry.group_by("quantity").agg(pl.col("decimals").max())
    return {quantity: decimals + 1 for quantity, decimals in finest.iter_rows() if decimals is not None}


def survival_rows(summary: pl.DataFrame, registry: pl.DataFrame, reconstructed: Collection[tuple[str, str]] = ()) -> pl.DataFrame:
    """Median survival per endpoint and data cut, once per confidence-interval method, as text; the estimates of a
    (data cut, endpoint) in ``reconstructed`` marked ``*``: they rest on reconstructed follow-up."""
    places = _survival_decimals(registry)

    def shown(value: float | None, endpoint: str, statistic: str, missing: str = "") -> str:
        return missing if value is None else printed.fixed(value, places.get(f"{endpoint.lower()}.{statistic}", SURVIVAL_DECIMALS))

    def marked(text: str, row: dict) -> str:
        return f"{text} {RECONSTRUCTED_MARK}" if text and (str(row["data_cut"]), row["endpoint"]) in reconstructed else text

    rows = [
        {
            "data cut": str(r["data_cut"]),
            "endpoint": r["endpoint"],
            "95% CI method": SURVIVAL_METHODS.get(r["method"], r["method"]),
            "patients": r["n"],
            "events": r["events"],
            "median (months; first S ≤ 0.5, SPSS)": marked(shown(r["median"], r["endpoint"], "median", "not reached"), r),
            "median (R/SAS plateau midpoint)": marked(shown(r["median_midpoint"], r["endpoint"], "median", "not reached"), r),
            # As the charts state it (km.interval_text), so the report and Figure 1 read the same numbers.
            "95% CI (months)": marked(km.interval_text(r["ci_lower"], r["ci_upper"], km.CI_DECIMALS), r),
            "SE": marked(shown(r["se"], r["endpoint"], "se"), r),
            "note": r["note"],
        }
        for r in summary.sort("data_cut", "endpoint", "method").iter_rows(named=True)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "data cut": pl.String,
            "endpoint": pl.String,
            "95% CI method": pl.String,
            "patients": pl.Int64,
            "events": pl.Int64,
            "median (months; first S ≤ 0.5, SPSS)": pl.String,
            "median (R/SAS plateau midpoint)": pl.String,
            "95% CI (months)": pl.String,
            "SE": pl.String,
            "note": pl.String,
        },
    )
