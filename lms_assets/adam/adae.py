"""ADAE: treatment-emergent adverse events graded by CTCAE 4.03 (Table 4)."""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids


def ctcae_grade_group(grade: pl.Expr) -> pl.Expr:
    """CTCAE grade groups of Table 4: 1–2, 3–4, and 5 (death) on its own."""
    return (
        pl.when(grade <= 2).then(pl.lit("Grade 1/2")).when(grade <= 4).then(pl.lit("Grade 3/4")).otherwise(pl.lit("Grade 5"))
    )


def derive_adae(adverse_events: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADAE: one row per patient and term at the worst CTCAE grade over its episodes."""
    worst = adverse_events.group_by("patient_id", "term").agg(
        pl.col("ctcae_grade").max().alias("ATOXGR"),
        pl.len().alias("AENEPI"),
    )
    return worst.select(
        *subject_ids(studyid),
        pl.col("term").alias("AEDECOD"),
        "ATOXGR",
        ctcae_grade_group(pl.col("ATOXGR")).alias("ATOXGRGP"),
        pl.col("AENEPI").cast(pl.Int64),
        pl.lit("Y").alias("TRTEMFL"),
    ).sort("SUBJID", "AEDECOD")
