"""What every ADaM dataset of the study shares: identifiers, the treatment, the Yes/No flag rule and each dataset's source files."""

from __future__ import annotations

import polars as pl

# The record files (a folder ends with /) each ADaM table is derived from, besides patients.csv itself.
SOURCES = {
    "adsl": ("patient_allocations.csv",),
    "adrs": ("response.csv",),
    "adtr": ("response.csv",),
    "adtte": ("followup/",),
    "adae": ("adverse_events.csv",),
}


def yes_no_flag(column: str) -> pl.Expr:
    """Yes/No as printed becomes the ADaM flag Y/N."""
    return pl.when(pl.col(column) == "Yes").then(pl.lit("Y")).otherwise(pl.lit("N"))


def treatment(code: str | None) -> pl.Expr:
    """The study's one arm as ADaM holds it (TRT01P, TRTP): study.toml's ``treatment_code``, null where it names none."""
    return pl.lit(code, dtype=pl.String)


def subject_ids(studyid: str) -> list[pl.Expr]:
    """STUDYID (the study's, from its study.toml), USUBJID (study-patient) and SUBJID (the Table 3 row number) from ``patient_id``."""
    return [
        pl.lit(studyid).alias("STUDYID"),
        pl.format("{}-{}", pl.lit(studyid), pl.col("patient_id")).alias("USUBJID"),
        pl.col("patient_id").alias("SUBJID"),
    ]


# The value of a row-level origin flag (ADTTE's AVALRFL): the value rests on a reconstructed record, not on the paper.
RECONSTRUCTED = "Y"


def reconstructed_cells(provenance: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """(file, column, patient_id) of every reconstructed value among ``rows`` (file, patient_id), as provenance.csv says.

    A provenance ``file`` ending in / covers every file in that folder, ``column`` * every column of the file,
    and ``patient_ids`` "all" (or empty) every patient of the file; otherwise it lists the patients, space-separated.
    """
    declared = provenance.filter(pl.col("origin") == "reconstructed").select(
        pl.col("file").alias("declared_file"),
        "column",
        pl.when(pl.col("patient_ids").is_null() | (pl.col("patient_ids").str.strip_chars() == "all"))
        .then(pl.lit(None, dtype=pl.List(pl.Int64)))
        .otherwise(pl.col("patient_ids").str.strip_chars().str.split(" ").cast(pl.List(pl.Int64)))
        .alias("listed"),
    )
    covered = pl.col("file") == pl.col("declared_file")
    in_folder = pl.col("declared_file").str.ends_with("/") & pl.col("file").str.starts_with(pl.col("declared_file"))
    listed = pl.col("listed").is_null() | pl.col("listed").list.contains(pl.col("patient_id"))
    return (
        rows.select("file", "patient_id")
        .unique()
        .join(declared, how="cross")
        .filter((covered | in_folder) & listed)
        .select("file", "column", "patient_id")
    )
