"""ADAE: one row per treatment-emergent adverse event (episode), graded by CTCAE 4.03, with the worst-grade flags of Table 4.

The flags follow CDISC ADaM OCCDS and admiral's ``derive_var_extreme_flag(mode = "first")``: "Y" on one event of
each group, null on the others. AOCCIFL ("1st Max Sev./Int. Occurrence Flag") marks each patient's worst event
over all terms, AOCCPIFL ("1st Max Sev./Int. Occur Within PT Flag") each patient's worst event of each term; a tie
at the worst grade goes to the earliest episode, then the lowest ASEQ. (AOCCFL/AOCCPFL, the first occurrence
by time, are not derived: the records carry no dates and Table 4 counts the worst grade.) Each ``derive_*`` adds
one variable and states its rule in its docstring; ``derive_adae`` composes them.
"""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import subject_ids

EPISODE = "AEEPINUM"
_POSITION = "_position"


def ctcae_grade_group(grade: pl.Expr) -> pl.Expr:
    """CTCAE grade groups of Table 4: 1–2, 3–4, and 5 (death) on its own."""
    return pl.when(grade <= 2).then(pl.lit("Grade 1/2")).when(grade <= 4).then(pl.lit("Grade 3/4")).otherwise(pl.lit("Grade 5"))


def extreme_flag(adae: pl.DataFrame, new_var: str, by: list[str], order: list[str], descending: list[bool]) -> pl.DataFrame:
    """admiral's ``derive_var_extreme_flag(mode = "first")`` restricted to TRTEMFL = Y: ``new_var`` = "Y" on each ``by`` group's first treatment-emergent row in ``order``, null elsewhere."""
    emergent = pl.col("TRTEMFL") == "Y"
    # The frame is sorted rather than ranked with arg_sort_by(...).over(by): polars 2.1 returns wrong positions for a
    # multi-key arg_sort_by in a window. Treatment-emergent rows sort first (False < True), so a group's first row
    # is emergent if any is.
    # Only the columns the rule reads are sorted, and the flag is put back in the rows' own order: sorting the
    # whole frame there and back moved every column twice (~2 s of 4.7 for a million patients' ADAE).
    keys = adae.select(*dict.fromkeys([*by, *order, "TRTEMFL"])).with_row_index(_POSITION)
    ordered = keys.sort([~emergent, *order], descending=[False, *descending], maintain_order=True)
    first = pl.struct(by).is_first_distinct() & emergent
    flags = ordered.select(_POSITION, pl.when(first).then(pl.lit("Y")).otherwise(pl.lit(None, dtype=pl.String)).alias(new_var))
    return adae.with_columns(flags.sort(_POSITION)[new_var])


def derive_events(adverse_events: pl.DataFrame, studyid: str) -> pl.DataFrame:
    """STUDYID, USUBJID, SUBJID; AETERM = the term as recorded; AEEPINUM = episode; SRCFILE/SRCROW = the raw file and line: one row per record."""
    return adverse_events.select(
        *subject_ids(studyid),
        pl.col("term").alias("AETERM"),
        pl.col("episode").alias(EPISODE),
        pl.col("ctcae_grade"),
        pl.col("_file").alias("SRCFILE"),
        pl.col("_row").alias("SRCROW"),
    )


def derive_aedecod(adae: pl.DataFrame) -> pl.DataFrame:
    """AEDECOD = AETERM: the records hold Table 4's wording, not coded to a MedDRA preferred term, so the term is its own decode."""
    return adae.with_columns(pl.col("AETERM").alias("AEDECOD"))


def derive_aerel(adae: pl.DataFrame) -> pl.DataFrame:
    """AEREL = null: adverse_events.csv records no causality. The paper calls Table 4's events treatment-related as a whole
    (Methods; Results: Safety and Toxicity) but not event by event, and a value is not invented from that."""
    return adae.with_columns(pl.lit(None, dtype=pl.String).alias("AEREL"))


def derive_aseq(adae: pl.DataFrame) -> pl.DataFrame:
    """ASEQ = 1, 2, … per patient (USUBJID) in the order of AEDECOD, then episode (the records carry no dates)."""
    ordered = adae.sort("SUBJID", "AEDECOD", EPISODE)
    # Windowed by SUBJID, the integer USUBJID is made from (``subject_ids``): the same patients, without hashing
    # a million patients' USUBJID text.
    return ordered.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("SUBJID").alias("ASEQ"))


def derive_atoxgrn(adae: pl.DataFrame) -> pl.DataFrame:
    """ATOXGRN = the recorded CTCAE 4.03 grade of the episode (1–5), a number."""
    return adae.with_columns(pl.col("ctcae_grade").alias("ATOXGRN")).drop("ctcae_grade")


def derive_atoxgr(adae: pl.DataFrame) -> pl.DataFrame:
    """ATOXGR = ATOXGRN as text ("1"–"5"), as the IG holds the analysis toxicity grade."""
    return adae.with_columns(pl.col("ATOXGRN").cast(pl.String).alias("ATOXGR"))


def derive_atoxgrgp(adae: pl.DataFrame) -> pl.DataFrame:
    """ATOXGRGP = Table 4's grade group of ATOXGRN: "Grade 1/2", "Grade 3/4" or "Grade 5"."""
    return adae.with_columns(ctcae_grade_group(pl.col("ATOXGRN")).alias("ATOXGRGP"))


def derive_trtemfl(adae: pl.DataFrame) -> pl.DataFrame:
    """TRTEMFL = "Y" for every event: the study records only adverse events on the study treatment (Table 4)."""
    return adae.with_columns(pl.lit("Y").alias("TRTEMFL"))


def derive_aoccifl(adae: pl.DataFrame) -> pl.DataFrame:
    """AOCCIFL = "Y" on each patient's first treatment-emergent event at their maximum ATOXGR over all terms (ties: earliest episode, then ASEQ)."""
    # Per patient: SUBJID, one to one with USUBJID (``subject_ids``), is an integer and cheaper to group by.
    # ATOXGR's text orders as its number: CTCAE grades are the single digits 1-5 (records.schemas).
    return extreme_flag(adae, "AOCCIFL", ["SUBJID"], ["ATOXGR", EPISODE, "ASEQ"], [True, False, False])


def derive_aoccpifl(adae: pl.DataFrame) -> pl.DataFrame:
    """AOCCPIFL = "Y" on each patient's first treatment-emergent event of each AEDECOD at its maximum ATOXGR (ties: earliest episode)."""
    return extreme_flag(adae, "AOCCPIFL", ["SUBJID", "AEDECOD"], ["ATOXGR", EPISODE], [True, False])


def derive_adae(adverse_events: pl.DataFrame, *, studyid: str) -> pl.DataFrame:
    """ADAE: one row per adverse event (patient, term, episode) with its grade, TRTEMFL and the worst-grade flags AOCCIFL and AOCCPIFL."""
    return (
        derive_events(adverse_events, studyid)
        .pipe(derive_aedecod)
        .pipe(derive_aerel)
        .pipe(derive_aseq)
        .pipe(derive_atoxgrn)
        .pipe(derive_atoxgr)
        .pipe(derive_atoxgrgp)
        .pipe(derive_trtemfl)
        .pipe(derive_aoccifl)
        .pipe(derive_aoccpifl)
        .select(
            "STUDYID",
            "USUBJID",
            "SUBJID",
            "ASEQ",
            "AETERM",
            "AEDECOD",
            EPISODE,
            "ATOXGR",
            "ATOXGRN",
            "ATOXGRGP",
            "TRTEMFL",
            "AOCCIFL",
            "AOCCPIFL",
            "AEREL",
            "SRCFILE",
            "SRCROW",
        )
    )
