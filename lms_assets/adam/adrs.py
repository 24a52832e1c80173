"""ADRS: the best overall response per patient by RECIST 1.1 (Table 3)."""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids


def derive_adrs(response: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADRS: best overall response (PARAMCD BOR) per patient, with the best % change of the target-lesion sum."""
    return response.select(
        *subject_ids(studyid),
        pl.lit("BOR").alias("PARAMCD"),
        pl.lit("Best Overall Response (RECIST 1.1)").alias("PARAM"),
        pl.col("best_response").alias("AVALC"),
        pl.col("best_pct_change").alias("PCHG"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
    ).sort("SUBJID")
