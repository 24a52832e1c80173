"""What every ADaM dataset of the study shares: identifiers, the Yes/No flag rule and each dataset's source files."""

from __future__ import annotations

import polars as pl

# The record files (a folder ends with /) each ADaM table is derived from, besides patients.csv itself.
SOURCES = {
    "adsl": ("patient_allocations.csv",),
    "adrs": ("response.csv",),
    "adtte": ("followup/",),
    "adae": ("adverse_events.csv",),
}


def yes_no_flag(column: str) -> pl.Expr:
    """Yes/No as printed becomes the ADaM flag Y/N."""
    return pl.when(pl.col(column) == "Yes").then(pl.lit("Y")).otherwise(pl.lit("N"))


def subject_ids(studyid: str) -> list[pl.Expr]:
    """STUDYID (the study's, from its study.toml), USUBJID (study-patient) and SUBJID (the Table 3 row number) from ``patient_id``."""
    return [
        pl.lit(studyid).alias("STUDYID"),
        pl.format("{}-{}", pl.lit(studyid), pl.col("patient_id")).alias("USUBJID"),
        pl.col("patient_id").alias("SUBJID"),
    ]
