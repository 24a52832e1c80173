"""CDISC ADaM-shaped derivations of the validated records: ADSL, ADRS, ADTTE and ADAE.

Each function takes clean, typed frames (see ``validation.clean``) and returns one ADaM dataset.
"""

from __future__ import annotations

import polars as pl

STUDYID = "ZOU-LMS-ANLOTINIB"

# The record files (a folder ends with /) each ADaM table is derived from, besides patients.csv itself.
SOURCES = {
    "adsl": ("patient_allocations.csv",),
    "adrs": ("response.csv",),
    "adtte": ("followup/",),
    "adae": ("adverse_events.csv",),
}

_PRIOR_CHEMO_LINES = {"No": 0, "1 line": 1, "2 line": 2, "3 line and more": 3}
_PRIOR_CHEMO_LABEL = {0: "None", 1: "1 line", 2: "2 lines", 3: "3 lines and more"}


def _yn(column: str) -> pl.Expr:
    """Yes/No as printed becomes the ADaM flag Y/N."""
    return pl.when(pl.col(column) == "Yes").then(pl.lit("Y")).otherwise(pl.lit("N"))


def _subject_ids() -> list[pl.Expr]:
    return [
        pl.lit(STUDYID).alias("STUDYID"),
        pl.format("{}-{}", pl.lit(STUDYID), pl.col("patient_id")).alias("USUBJID"),
        pl.col("patient_id").alias("SUBJID"),
    ]


def prior_chemo_lines(history: pl.Expr) -> pl.Expr:
    """Prior chemotherapy lines as a number; '3 line and more' is 3 (three or more)."""
    return history.replace_strict(_PRIOR_CHEMO_LINES, return_dtype=pl.Int64)


def combination_flag(combination: pl.Expr) -> pl.Expr:
    """Combination therapy: any therapy other than 'None' given with anlotinib."""
    return pl.when(combination == "None").then(pl.lit("N")).otherwise(pl.lit("Y"))


def immunotherapy_flag(combination: pl.Expr) -> pl.Expr:
    """Immunotherapy combination: the combined therapy includes immunotherapy."""
    return pl.when(combination.str.contains("Immunotherapy")).then(pl.lit("Y")).otherwise(pl.lit("N"))


def derive_adsl(patients: pl.DataFrame, allocations: pl.DataFrame) -> pl.DataFrame:
    """ADSL: one row per patient with baseline characteristics, treatment and derived flags."""
    joined = patients.join(allocations.drop("_file", "_row"), on="patient_id", how="left")
    lines = prior_chemo_lines(pl.col("chemotherapy_history"))
    return joined.select(
        *_subject_ids(),
        pl.col("age").alias("AGE"),
        pl.lit("YEARS").alias("AGEU"),
        pl.col("sex").replace_strict({"Female": "F", "Male": "M"}, return_dtype=pl.String).alias("SEX"),
        pl.col("ecog").alias("ECOG"),
        pl.when(pl.col("ecog") <= 1).then(pl.lit("0-1")).otherwise(pl.lit(">=2")).alias("ECOGGR1"),
        _yn("surgery_history").alias("SURGFL"),
        _yn("radiotherapy_history").alias("RADIOFL"),
        lines.alias("PRCHLN"),
        lines.replace_strict(_PRIOR_CHEMO_LABEL, return_dtype=pl.String).alias("PRCHCAT"),
        pl.when(lines > 0).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("PRCHFL"),
        pl.col("combination_therapy").alias("COMBTRT"),
        combination_flag(pl.col("combination_therapy")).alias("COMBFL"),
        immunotherapy_flag(pl.col("combination_therapy")).alias("IMMUNOFL"),
        pl.col("primary_site").alias("PRIMSITE"),
        pl.col("starting_dose_mg").alias("DOSE0"),
        _yn("dose_reduced").alias("DOSREDFL"),
        _yn("discontinued_for_toxicity").alias("DISCAEFL"),
    ).sort("SUBJID")


def derive_adrs(response: pl.DataFrame) -> pl.DataFrame:
    """ADRS: best overall response (PARAMCD BOR) per patient, with the best % change of the target-lesion sum."""
    return response.select(
        *_subject_ids(),
        pl.lit("BOR").alias("PARAMCD"),
        pl.lit("Best Overall Response (RECIST 1.1)").alias("PARAM"),
        pl.col("best_response").alias("AVALC"),
        pl.col("best_pct_change").alias("PCHG"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
    ).sort("SUBJID")


# PARAMCD: (PARAM, time column, event column, EVNTDESC of an event, EVNTDESC of a censored time).
_ENDPOINTS = {
    "PFS": ("Progression-free survival (months)", "pfs_months", "progressed", "Progression or death", "Progression-free at last assessment"),
    "OS": ("Overall survival (months)", "os_months", "died", "Death", "Alive at last contact"),
}


def _per_endpoint(field: int) -> pl.Expr:
    return pl.col("PARAMCD").replace_strict({code: spec[field] for code, spec in _ENDPOINTS.items()}, return_dtype=pl.String)


def derive_adtte(followup: pl.DataFrame) -> pl.DataFrame:
    """ADTTE: PFS and OS per patient and data cut; AVAL in months, CNSR 0 = event, 1 = censored.

    ``followup`` carries ``data_cut`` (Date) and ``content_hash`` of the file each row came from.
    """
    # Stacked and sorted while narrow, the repeated text columns added after: a million patients over
    # three cuts are six million rows, and sorting them at full width held two copies (~0.8 GB more).
    narrow = pl.concat(
        followup.select(
            "patient_id",
            "data_cut",
            pl.lit(code).alias("PARAMCD"),
            pl.col(time).alias("AVAL"),
            pl.col(event).alias("event"),
            "_file",
            "_row",
            "content_hash",
        )
        for code, (_, time, event, _, _) in _ENDPOINTS.items()
    ).sort("data_cut", "PARAMCD", "patient_id")
    return narrow.select(
        *_subject_ids(),
        pl.col("data_cut").alias("DATACUT"),
        "PARAMCD",
        _per_endpoint(0).alias("PARAM"),
        "AVAL",
        (1 - pl.col("event")).alias("CNSR"),
        pl.when(pl.col("event") == 1).then(_per_endpoint(3)).otherwise(_per_endpoint(4)).alias("EVNTDESC"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
        pl.col("content_hash").alias("SRCHASH"),
        pl.lit("MONTHS").alias("AVALU"),
    )


def ctcae_grade_group(grade: pl.Expr) -> pl.Expr:
    """CTCAE grade groups of Table 4: 1–2, 3–4, and 5 (death) on its own."""
    return (
        pl.when(grade <= 2).then(pl.lit("Grade 1/2")).when(grade <= 4).then(pl.lit("Grade 3/4")).otherwise(pl.lit("Grade 5"))
    )


def derive_adae(adverse_events: pl.DataFrame) -> pl.DataFrame:
    """ADAE: one row per patient and term at the worst CTCAE grade over its episodes."""
    worst = adverse_events.group_by("patient_id", "term").agg(
        pl.col("ctcae_grade").max().alias("ATOXGR"),
        pl.len().alias("AENEPI"),
    )
    return worst.select(
        *_subject_ids(),
        pl.col("term").alias("AEDECOD"),
        "ATOXGR",
        ctcae_grade_group(pl.col("ATOXGR")).alias("ATOXGRGP"),
        pl.col("AENEPI").cast(pl.Int64),
        pl.lit("Y").alias("TRTEMFL"),
    ).sort("SUBJID", "AEDECOD")
