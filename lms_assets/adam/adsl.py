"""ADSL: one row per patient, the baseline characteristics, treatment and flags of Table 1 and Table 3."""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids, yes_no_flag

_PRIOR_CHEMO_LINES = {"No": 0, "1 line": 1, "2 line": 2, "3 line and more": 3}
_PRIOR_CHEMO_LABEL = {0: "None", 1: "1 line", 2: "2 lines", 3: "3 lines and more"}


def prior_chemo_lines(history: pl.Expr) -> pl.Expr:
    """Prior chemotherapy lines as a number; '3 line and more' is 3 (three or more)."""
    return history.replace_strict(_PRIOR_CHEMO_LINES, return_dtype=pl.Int64)


def combination_flag(combination: pl.Expr) -> pl.Expr:
    """Combination therapy: any therapy other than 'None' given with anlotinib."""
    return pl.when(combination == "None").then(pl.lit("N")).otherwise(pl.lit("Y"))


def immunotherapy_flag(combination: pl.Expr) -> pl.Expr:
    """Immunotherapy combination: the combined therapy includes immunotherapy."""
    return pl.when(combination.str.contains("Immunotherapy")).then(pl.lit("Y")).otherwise(pl.lit("N"))


def derive_adsl(patients: pl.DataFrame, allocations: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADSL: one row per patient with baseline characteristics, treatment and derived flags."""
    joined = patients.join(allocations.drop("_file", "_row"), on="patient_id", how="left")
    lines = prior_chemo_lines(pl.col("chemotherapy_history"))
    return joined.select(
        *subject_ids(studyid),
        pl.col("age").alias("AGE"),
        pl.lit("YEARS").alias("AGEU"),
        pl.col("sex").replace_strict({"Female": "F", "Male": "M"}, return_dtype=pl.String).alias("SEX"),
        pl.col("ecog").alias("ECOG"),
        pl.when(pl.col("ecog") <= 1).then(pl.lit("0-1")).otherwise(pl.lit(">=2")).alias("ECOGGR1"),
        yes_no_flag("surgery_history").alias("SURGFL"),
        yes_no_flag("radiotherapy_history").alias("RADIOFL"),
        lines.alias("PRCHLN"),
        lines.replace_strict(_PRIOR_CHEMO_LABEL, return_dtype=pl.String).alias("PRCHCAT"),
        pl.when(lines > 0).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("PRCHFL"),
        pl.col("combination_therapy").alias("COMBTRT"),
        combination_flag(pl.col("combination_therapy")).alias("COMBFL"),
        immunotherapy_flag(pl.col("combination_therapy")).alias("IMMUNOFL"),
        pl.col("primary_site").alias("PRIMSITE"),
        pl.col("starting_dose_mg").alias("DOSE0"),
        yes_no_flag("dose_reduced").alias("DOSREDFL"),
        yes_no_flag("discontinued_for_toxicity").alias("DISCAEFL"),
    ).sort("SUBJID")
