"""ADTTE: progression-free and overall survival per patient and data cut, as AVAL (months) and CNSR.

Times are held as durations, not dates: the paper prints months from the first dose (Table 3) and no date at all,
so ADT, STARTDT and the censoring dates cannot be derived. AVAL is that duration (AVALU "MONTHS"), and the data
cut (DCUTDT, the follow-up file's date) is the only date. EVNTDESC and CNSDTDSC say which source ended each time,
as admiral's event and censoring sources do. Each ``derive_*`` adds one variable and states its rule.
"""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import RECONSTRUCTED, reconstructed_cells, subject_ids, treatment

# PARAMCD: (PARAM, time column, event column, EVNTDESC of an event, EVNTDESC of a censored time).
_ENDPOINTS = {
    "PFS": ("Progression-free survival (months)", "pfs_months", "progressed", "Progression", "Progression-free at last assessment"),
    "OS": ("Overall survival (months)", "os_months", "died", "Death", "Alive at last contact"),
}
# PARAMCD: PARAMN, in the order Table 2 and Figure 1 give the endpoints.
PARAMN = {"PFS": 1, "OS": 2}
# A PFS row whose event is the patient's death at the same time (see derive_evntdesc).
_DIED_THEN = "_died_then"
# PARAMCD: CNSDTDSC, the source of a censored time (what the last observation was).
CENSORING_SOURCES = {"PFS": "Last tumour assessment", "OS": "Last contact"}


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


def derive_evntdesc(adtte: pl.DataFrame) -> pl.DataFrame:
    """EVNTDESC of a PFS event = "Death" where the patient died at that very time (PFS time = OS time, OS an event, same
    record): the records' progressed counts progression or death, and only this coincidence says which; otherwise the
    endpoint's event ("Progression", "Death") or censoring ("Progression-free at last assessment", "Alive at last contact")."""
    return adtte.with_columns(pl.when(pl.col(_DIED_THEN)).then(pl.lit("Death")).otherwise(pl.col("EVNTDESC")).alias("EVNTDESC")).drop(_DIED_THEN)


def derive_cnsdtdsc(adtte: pl.DataFrame) -> pl.DataFrame:
    """CNSDTDSC = the censoring source of a censored time: PFS "Last tumour assessment", OS "Last contact"; null for an event."""
    source = pl.col("PARAMCD").replace_strict(CENSORING_SOURCES, return_dtype=pl.String)
    return adtte.with_columns(pl.when(pl.col("CNSR") == 1).then(source).alias("CNSDTDSC"))


def derive_paramn(adtte: pl.DataFrame) -> pl.DataFrame:
    """PARAMN = PFS 1, OS 2."""
    return adtte.with_columns(pl.col("PARAMCD").replace_strict(PARAMN, return_dtype=pl.Int64).alias("PARAMN"))


def derive_trtp(adtte: pl.DataFrame, code: str | None) -> pl.DataFrame:
    """TRTP = the study's one planned treatment (study.toml's ``treatment_code``, as ADSL.TRT01P): a single-arm study."""
    return adtte.with_columns(treatment(code).alias("TRTP"))


def derive_aseq(adtte: pl.DataFrame) -> pl.DataFrame:
    """ASEQ = (the data cut's place among the dataset's cuts - 1) x 2 + PARAMN: unique within the patient, in the order of
    cut, then PARAMN (the IG's sequence number; a patient first seen at a later cut starts above 1)."""
    place = pl.col("DCUTDT").rank("dense").cast(pl.Int64) - 1
    return adtte.with_columns((place * len(PARAMN) + pl.col("PARAMN")).alias("ASEQ"))


def derive_adtte(followup: pl.DataFrame, *, studyid: str, provenance: pl.DataFrame, treatment_code: str | None = None) -> pl.DataFrame:
    """ADTTE: PFS and OS per patient and data cut; AVAL in months, CNSR 0 = event, 1 = censored; AVALRFL "Y" where
    AVAL or CNSR rests on a reconstructed record (``provenance``, provenance.csv), null where both are as printed;
    EVNTDESC/CNSDTDSC (what ended the time), PARAMN, TRTP and ASEQ after them.

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
            ((pl.col("died") == 1) & (pl.col("pfs_months") == pl.col("os_months")) & pl.lit(code == "PFS")).alias(_DIED_THEN),
            "_file",
            "_row",
            "content_hash",
        )
        for code, (_, time, event, _, _) in _ENDPOINTS.items()
    ).sort("data_cut", "PARAMCD", "patient_id")
    flagged = reconstruction_flags(followup, provenance).with_columns(reconstructed=pl.lit(True))
    # A left join on three keys keeps the sorted order of ``narrow`` (Polars preserves the left order).
    narrow = narrow.join(flagged, on=["_file", "patient_id", "PARAMCD"], how="left", maintain_order="left")
    return (
        narrow.select(
            *subject_ids(studyid),
            pl.col("data_cut").alias("DCUTDT"),
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
            (pl.col(_DIED_THEN) & (pl.col("event") == 1)).alias(_DIED_THEN),
        )
        .pipe(derive_evntdesc)
        .pipe(derive_cnsdtdsc)
        .pipe(derive_paramn)
        .pipe(derive_trtp, treatment_code)
        .pipe(derive_aseq)
    )
