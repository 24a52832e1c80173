"""ADTTE: progression-free and overall survival per patient and data cut, as AVAL (months) and CNSR."""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import RECONSTRUCTED, reconstructed_cells, subject_ids

# PARAMCD: (PARAM, time column, event column, EVNTDESC of an event, EVNTDESC of a censored time).
_ENDPOINTS = {
    "PFS": ("Progression-free survival (months)", "pfs_months", "progressed", "Progression or death", "Progression-free at last assessment"),
    "OS": ("Overall survival (months)", "os_months", "died", "Death", "Alive at last contact"),
}


def _per_endpoint(field: int) -> pl.Expr:
    return pl.col("PARAMCD").replace_strict({code: spec[field] for code, spec in _ENDPOINTS.items()}, return_dtype=pl.String)


def reconstruction_flags(followup: pl.DataFrame, provenance: pl.DataFrame) -> pl.DataFrame:
    """(_file, patient_id, PARAMCD) of every time resting on a reconstructed record: its time or its event column
    (a last contact of a living patient the paper prints as NA), per ``provenance``."""
    cells = reconstructed_cells(provenance, followup.select(pl.col("_file").alias("file"), "patient_id"))
    columns = pl.DataFrame(
        [(code, column) for code, (_, time, event, _, _) in _ENDPOINTS.items() for column in (time, event, "*")],
        schema={"PARAMCD": pl.String, "column": pl.String},
        orient="row",
    )
    return cells.join(columns, on="column").select(pl.col("file").alias("_file"), "patient_id", "PARAMCD").unique()


def derive_adtte(followup: pl.DataFrame, *, studyid: str, provenance: pl.DataFrame) -> pl.DataFrame:
    """ADTTE: PFS and OS per patient and data cut; AVAL in months, CNSR 0 = event, 1 = censored; AVALRFL "Y" where
    AVAL or CNSR rests on a reconstructed record (``provenance``, provenance.csv), null where both are as printed.

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
    flagged = reconstruction_flags(followup, provenance).with_columns(reconstructed=pl.lit(True))
    # A left join on three keys keeps the sorted order of ``narrow`` (Polars preserves the left order).
    narrow = narrow.join(flagged, on=["_file", "patient_id", "PARAMCD"], how="left", maintain_order="left")
    return narrow.select(
        *subject_ids(studyid),
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
        pl.when(pl.col("reconstructed")).then(pl.lit(RECONSTRUCTED)).alias("AVALRFL"),
    )
