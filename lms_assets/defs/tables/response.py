"""Group ``response``: Table 2's response rows, RECIST 1.1 consistency of each response, and the text's shrinkage values."""

from typing import Any

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetIn, MetadataValue, Output

from lms_assets.defs.constants import RESPONSE
from lms_assets.defs.metadata import preview, table_output
from lms_assets.defs.tables.step import gated_summary, table_defaults
from lms_assets.tables import response

response_table = table_defaults(group=RESPONSE, kinds={"polars", "duckdb"})


@gated_summary(
    response_table,
    description=(
        "Table 2's response rows from ADRS (PARAMCD BOR): n and % of patients with a best overall response for CR, "
        "PR, SD and PD (NE when present), ORR (CR + PR) and DCR (CR + PR + SD). ORR and DCR carry exact "
        "Clopper–Pearson 95% CIs (scipy), computed here and not printed in the paper. `patients` lists the SUBJIDs."
    ),
)
def response_summary(adrs: pl.DataFrame) -> Output[pl.DataFrame]:
    table = response.response_summary(adrs)
    rates = {r["key"]: r for r in table.filter(pl.col("key").is_in(list(response.RATES))).iter_rows(named=True)}
    extra: dict[str, Any] = {f"{key}_pct": MetadataValue.float(r["pct"]) for key, r in rates.items() if r["pct"] is not None}
    # The rows and their rates, narrow enough for the asset page; the method and patient lists are in the warehouse.
    shown = table.select("row", "n", pl.col("denominator").alias("of"), "pct", "ci_lower_pct", "ci_upper_pct")
    return table_output(table, shown=shown, **extra)


RECIST_CHECK = "recorded_responses_match_recist"


def _recist_checks(context, outputs, table: pl.DataFrame, inputs) -> list[AssetCheckResult]:
    """``RECIST_CHECK`` on a candidate ``recist_consistency``."""
    review = table.filter(pl.col("status") == "review")
    return [
        AssetCheckResult(
            check_name=RECIST_CHECK,
            passed=review.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "patients_to_review": review.height,
                "patients_checked": table.height,
                "review": preview(review.select("SUBJID", "recorded_response", "best_pct_change", "reason")),
            },
        )
    ]


@response_table(
    description=(
        "Each patient's recorded RECIST 1.1 best response against the thresholds on the best % change "
        "(PR: decrease ≥ 30%; PD: increase ≥ 20%). `status` is `consistent` or `review` with the `reason`. RECIST "
        "judges PD against the nadir (and new lesions), so a mismatch is flagged for review, never corrected."
    ),
    check_specs=[
        AssetCheckSpec(
            RECIST_CHECK,
            asset="recist_consistency",
            description=(
                "Warns when any recorded best response lies outside RECIST 1.1's range for its best % change, "
                "listing those patients and why; a clinician reviews them, nothing is changed."
            ),
        )
    ],
    checks=_recist_checks,
)
def recist_consistency(adrs: pl.DataFrame, adtr: pl.DataFrame) -> Output[pl.DataFrame]:
    table = response.recist_consistency(adrs, adtr)
    return table_output(table, patients_to_review=int(table["status"].eq("review").sum()))


@gated_summary(
    response_table,
    # Only the columns read: on a million patients the whole of ADTTE alone is six million wide rows.
    ins={
        "adsl": AssetIn(metadata={"columns": ["SUBJID", "COMBFL", "IMMUNOFL"]}),
        "adrs": AssetIn(metadata={"columns": ["SUBJID", "PARAMCD", "AVALC"]}),
        "adtr": AssetIn(metadata={"columns": ["SUBJID", "PARAMCD", "AVISIT", "PCHG"]}),
        "adtte": AssetIn(metadata={"columns": ["SUBJID", "DCUTDT", "PARAMCD", "CNSR"]}),
    },
    description=(
        "The Results' and Discussion's response values from ADRS, ADSL and ADTTE: patients with any tumour "
        "shrinkage and their mean shrinkage; study treatment + immunotherapy patients, their best responses, shrinkage "
        "over 70% and (per data cut) how many of those are alive; PR rate with combination therapy vs the study treatment "
        "alone with Fisher's exact p (not in the paper). `patients` lists the SUBJIDs."
    ),
)
def tumour_shrinkage(adsl: pl.DataFrame, adrs: pl.DataFrame, adtr: pl.DataFrame, adtte: pl.DataFrame) -> Output[pl.DataFrame]:
    return table_output(response.tumour_shrinkage(adsl, adrs, adtr, adtte))
