"""The mark beside each printed value on the page (``MARKS``), from the verdict rule of the checks and printed_audit.

``marked_audit`` gives printed_audit each value's mark, symbol and words; ``audit_summary`` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from lms_assets.checks import printed_values as audit_rules
from lms_assets.checks.printed_values import AGREES, basis_words, compare

# The report's mark of a printed value: printed_audit's status, with "reproduced here but the paper contradicts it
# elsewhere" told apart from a discrepancy (printed_audit counts it as one), so that ≠ never marks a value that agrees.
CONTRADICTED = "contradicted"
MARKS = {
    audit_rules.REPRODUCED: ("✓", "reproduced: the recomputed value agrees at the printed precision"),
    CONTRADICTED: ("✓†", "reproduced here, but the paper contradicts this printing elsewhere"),
    audit_rules.DISCREPANCY: ("≠", "discrepancy: the recomputed value differs, or nothing recomputes it and the paper contradicts it"),
    audit_rules.NOT_RECOMPUTABLE: ("?", "not recomputable: the records hold nothing that gives this value"),
}
# Added to ✓, ✓† and ≠ when the recomputed value rests on reconstructed inputs only, and beside every survival
# estimate that does.
RECONSTRUCTED_MARK = "*"
RECONSTRUCTED_WORDS = "from reconstructed inputs only: shows the pipeline's arithmetic, not that the paper is right"
RECONSTRUCTED_DISCREPANCY_WORDS = "a discrepancy from reconstructed inputs only: the reconstruction may be what differs, not the paper"
RECONSTRUCTED_VALUE_WORDS = "beside a survival estimate: it rests on reconstructed last-contact times (ADTTE AVALRFL = Y)"
RECONSTRUCTED = "reconstructed_inputs"
BASIS_WORDS = {basis: basis_words(basis) for basis in ("published_patient_data", RECONSTRUCTED)}
# The audit's long tables name the basis in a word, with the sensitivity verdict when the reconstruction could move it.
BASIS_SHORT = {"published_patient_data": "Table 3", RECONSTRUCTED: "reconstructed"}


def mark_of(printed_value: float, decimals: int, recomputed: float | None, findings: Sequence[str]) -> str:
    """A printed value's mark (a key of ``MARKS``), from the one comparison and verdict rule of the checks and printed_audit."""
    comparison = compare(printed_value, decimals, recomputed)
    status = audit_rules.status_of(comparison, findings)
    return CONTRADICTED if status == audit_rules.DISCREPANCY and comparison == AGREES else status


def mark_text(mark: str | None, basis: str | None) -> str:
    """The mark's symbol, with ``*`` when the comparison rests on reconstructed inputs only (not on "?": nothing was recomputed)."""
    if mark is None:
        return ""
    symbol = MARKS[mark][0]
    return symbol + RECONSTRUCTED_MARK if mark != audit_rules.NOT_RECOMPUTABLE and basis == RECONSTRUCTED else symbol


def marked_audit(audit: pl.DataFrame, registry: pl.DataFrame) -> pl.DataFrame:
    """printed_audit with each printed value's mark (``mark_of``), its ``symbol`` (``mark_text``), the symbol with its words (``verdict``) and the row's CSS classes."""
    printed = registry.select("value_id", pl.col("value").alias("_printed"), pl.col("decimals").alias("_decimals"))
    joined = audit.join(printed, on="value_id", how="left")
    marks = [
        status if value is None else mark_of(value, decimals, recomputed, findings or [])
        for status, value, decimals, recomputed, findings in joined.select("status", "_printed", "_decimals", "recomputed", "findings").iter_rows()
    ]
    marked = joined.with_columns(pl.Series("mark", marks, dtype=pl.String))
    symbols = [mark_text(mark, basis) for mark, basis in marked.select("mark", "basis").iter_rows()]
    verdicts = [
        f"{symbol} {MARKS[mark][1].split(':')[0]}" + (" (from reconstructed inputs only)" if symbol.endswith(RECONSTRUCTED_MARK) else "")
        for symbol, mark in zip(symbols, marked["mark"])
    ]
    return marked.with_columns(
        pl.Series("symbol", symbols, dtype=pl.String),
        pl.Series("verdict", verdicts, dtype=pl.String),
        pl.format("status-{}", pl.col("mark")).alias("css"),
    ).drop("_printed", "_decimals")


def audit_summary(marked: pl.DataFrame) -> pl.DataFrame:
    """Printed values counted by mark and basis."""
    return marked.group_by("verdict", "basis").len("values").sort("verdict", "basis")
