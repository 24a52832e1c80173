"""Each table's recomputed values beside the values the paper printed, with the audit's verdict: the page's Tables 1, 2 and 4."""

from __future__ import annotations

import polars as pl

from lms_assets.checks import printed_values as audit_rules
from lms_assets.checks.printed_values import compare
from lms_assets.report.marks import mark_of
from lms_assets.report.survival_table import SURVIVAL_DECIMALS
from lms_assets.tables.printed import format_value

COMPARISON_SCHEMA = pl.Schema(
    {
        "row": pl.Int64,
        "order": pl.Int64,
        "group": pl.String,
        "label": pl.String,
        "statistic": pl.String,
        "quantity": pl.String,
        "recomputed": pl.Float64,
        "value_id": pl.String,
        "printed": pl.String,
        "printed_value": pl.Float64,
        "decimals": pl.Int64,
        "status": pl.String,
        "mark": pl.String,
        "basis": pl.String,
        "explanation": pl.String,
    }
)


def compare_with_printed(spine: pl.DataFrame, values: pl.DataFrame, registry: pl.DataFrame, audit: pl.DataFrame, source: str) -> pl.DataFrame:
    """Each recomputed value of a table's rows beside the value the paper printed in ``source``, with the audit's verdict.

    ``spine`` gives the rows (``key``, ``label``, and the ``group`` heading them where the paper groups its rows) in
    the table's order; a row's values are the quantities ``key`` or ``key.<statistic>`` of ``values``. A printed value of ``source`` that no row recomputes is
    kept as a row of its own, so nothing the paper printed is dropped. ``order`` places the statistics as
    the paper prints them (registry order), then those it does not print.
    """
    printed = registry.filter(pl.col("source") == source).select(
        "value_id", "quantity", "printed", pl.col("value").alias("printed_value"), "decimals"
    )
    rank = {quantity: i for i, quantity in enumerate(printed["quantity"].to_list())}
    printed_pairs = list(zip(values["quantity"].to_list(), values["value"].to_list()))
    groups = spine["group"] if "group" in spine.columns else pl.repeat(None, spine.height, dtype=pl.String, eager=True)
    cells = []
    for row, (key, label, group) in enumerate(zip(spine["key"], spine["label"], groups)):
        for position, (quantity, value) in enumerate(printed_pairs):
            if quantity == key or quantity.startswith(f"{key}."):
                order = rank.get(quantity, len(rank) + position)
                cells.append((row, order, group, label, quantity[len(key) + 1 :] or "value", quantity, value))
    names = ["row", "order", "group", "label", "statistic", "quantity", "recomputed"]
    recomputed = pl.DataFrame(cells, schema=names, orient="row").cast({name: COMPARISON_SCHEMA[name] for name in names})
    joined = recomputed.join(printed, on="quantity", how="full", coalesce=True)
    unmatched = pl.col("row").is_null()
    joined = joined.with_columns(
        pl.when(unmatched).then(spine.height + pl.int_range(pl.len())).otherwise(pl.col("row")).alias("row"),
        pl.col("order").fill_null(pl.col("quantity").replace_strict(rank, default=None, return_dtype=pl.Int64)),
        pl.when(unmatched).then(pl.col("quantity")).otherwise(pl.col("label")).alias("label"),
        pl.col("statistic").fill_null("value"),
    )
    # The status is decided here, by the same verdict rule as the checks and printed_audit, from the value this
    # table shows and the audit's findings about the printing (test_audit asserts the report, printed_audit and the checks agree).
    verdicts = audit.select("value_id", "findings", "basis", "explanation", "hypotheses")
    joined = joined.join(verdicts, on="value_id", how="left")
    judged = [
        (None, None)
        if value_id is None
        else (
            audit_rules.status_of(compare(printed_value, decimals, recomputed), findings or []),
            mark_of(printed_value, decimals, recomputed, findings or []),
        )
        for value_id, printed_value, decimals, recomputed, findings in joined.select(
            "value_id", "printed_value", "decimals", "recomputed", "findings"
        ).iter_rows()
    ]
    explanation = pl.concat_str([pl.col("explanation").fill_null(""), pl.col("hypotheses").fill_null("")], separator=" ").str.strip_chars()
    return (
        joined.with_columns(
            pl.Series("status", [s for s, _ in judged], dtype=pl.String),
            pl.Series("mark", [m for _, m in judged], dtype=pl.String),
            explanation.alias("explanation"),
        )
        .select(list(COMPARISON_SCHEMA))
        .cast(COMPARISON_SCHEMA)
        .sort("row", "order")
    )


def recomputed_text(value: float | None, decimals: int | None) -> str:
    """A recomputed value at the printed precision plus one digit (half up, as printed_audit's ``shown``); counts as whole numbers."""
    if value is None:
        return "—"
    if float(value).is_integer() and (decimals is None or decimals == 0):
        return str(int(value))
    return format_value(value, SURVIVAL_DECIMALS - 1 if decimals is None else decimals)
