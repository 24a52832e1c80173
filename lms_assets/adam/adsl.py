"""ADSL: one row per patient, the baseline characteristics, treatment and flags of Table 1 and Table 3.

The population flags, treatment variables and ECOGBL follow the ADaM IG's ADSL as admiral derives them; each
``derive_*`` adds one variable (or a value and its unit) and states its rule in its docstring.
"""

from __future__ import annotations

import polars as pl

from lms_assets.adam.common import reconstructed_cells, subject_ids, treatment, yes_no_flag
from lms_assets.records import schemas
from lms_assets.records.declarations import SEX_CODES

_PRIOR_CHEMO_LINES = {"No": 0, "1 line": 1, "2 line": 2, "3 line and more": 3}
_PRIOR_CHEMO_LABEL = {0: "None", 1: "1 line", 2: "2 lines", 3: "3 lines and more"}


def prior_chemo_lines(history: pl.Expr) -> pl.Expr:
    """Prior chemotherapy lines as a number; '3 line and more' is 3 (three or more)."""
    return history.replace_strict(_PRIOR_CHEMO_LINES, return_dtype=pl.Int64)


def combination_flag(combination: pl.Expr) -> pl.Expr:
    """Combination therapy: any therapy other than 'None' given with the study treatment."""
    return pl.when(combination == "None").then(pl.lit("N")).otherwise(pl.lit("Y"))


def immunotherapy_flag(combination: pl.Expr) -> pl.Expr:
    """Immunotherapy combination: the combined therapy includes immunotherapy."""
    return pl.when(combination.str.contains("Immunotherapy")).then(pl.lit("Y")).otherwise(pl.lit("N"))


# Every ADSL variable taken from a record, with the file and column it comes from: where provenance.csv says that
# column is reconstructed for a patient, the variable is listed in the patient's RECONVAR.
VARIABLE_SOURCES = {
    **{
        variable: (schemas.PATIENTS.location, column)
        for variable, column in (
            ("AGE", "age"),
            ("SEX", "sex"),
            ("ECOG", "ecog"),
            ("ECOGGR1", "ecog"),
            ("SURGFL", "surgery_history"),
            ("RADIOFL", "radiotherapy_history"),
            ("PRCHLN", "chemotherapy_history"),
            ("PRCHCAT", "chemotherapy_history"),
            ("PRCHFL", "chemotherapy_history"),
            ("COMBTRT", "combination_therapy"),
            ("COMBFL", "combination_therapy"),
            ("IMMUNOFL", "combination_therapy"),
        )
    },
    **{
        variable: (schemas.PATIENT_ALLOCATIONS.location, column)
        for variable, column in (
            ("PRIMSITE", "primary_site"),
            ("DOSE0", "starting_dose_mg"),
            ("DOSREDFL", "dose_reduced"),
            ("DISCAEFL", "discontinued_for_toxicity"),
        )
    },
}
# The variables patient_allocations.csv gives: allocated to patients to meet Table 1's and the Safety text's counts.
ALLOCATED_VARIABLES = frozenset(v for v, (file, _) in VARIABLE_SOURCES.items() if file == schemas.PATIENT_ALLOCATIONS.location)


def reconstructed_variables(patient_ids: pl.Series, provenance: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, RECONVAR): each patient's ADSL variables resting on a reconstructed record, space-separated in
    ``VARIABLE_SOURCES`` order; patients with none are absent."""
    files = {file for file, _ in VARIABLE_SOURCES.values()}
    rows = pl.DataFrame({"file": sorted(files)}).join(pl.DataFrame({"patient_id": patient_ids.unique()}), how="cross")
    sources = pl.DataFrame(
        [(v, file, column, i) for i, (v, (file, column)) in enumerate(VARIABLE_SOURCES.items())],
        schema={"variable": pl.String, "file": pl.String, "source_column": pl.String, "order": pl.Int64},
        orient="row",
    )
    cells = reconstructed_cells(provenance, rows).join(sources, on="file")
    return (
        cells.filter((pl.col("column") == "*") | (pl.col("column") == pl.col("source_column")))
        .unique(["patient_id", "variable"])
        .sort("patient_id", "order")
        .group_by("patient_id", maintain_order=True)
        .agg(pl.col("variable").str.join(" ").alias("RECONVAR"))
    )


def derive_saffl(adsl: pl.DataFrame) -> pl.DataFrame:
    """SAFFL = "Y" for every patient: the Methods admit only patients who received at least one cycle of the study treatment, so
    every patient in the records took a dose (the safety set). Not taken from DOSE0, which is reconstructed."""
    return adsl.with_columns(pl.lit("Y").alias("SAFFL"))


def derive_fasfl(adsl: pl.DataFrame) -> pl.DataFrame:
    """FASFL = SAFFL: the paper analyses efficacy in every treated patient (Methods), so the full analysis set is the safety set."""
    return adsl.with_columns(pl.col("SAFFL").alias("FASFL"))


def derive_trt01p(adsl: pl.DataFrame, code: str | None) -> pl.DataFrame:
    """TRT01P = the study's one planned treatment (study.toml's ``treatment_code``; null where it names none): a single-arm study."""
    return adsl.with_columns(treatment(code).alias("TRT01P"))


def derive_trt01a(adsl: pl.DataFrame) -> pl.DataFrame:
    """TRT01A = the treatment taken: TRT01P alone, or "TRT01P + COMBTRT" (upper case) where another therapy was combined with it."""
    combined = pl.format("{} + {}", pl.col("TRT01P"), pl.col("COMBTRT").str.to_uppercase())
    return adsl.with_columns(pl.when(pl.col("COMBFL") == "Y").then(combined).otherwise(pl.col("TRT01P")).alias("TRT01A"))


def derive_ecogbl(adsl: pl.DataFrame) -> pl.DataFrame:
    """ECOGBL = ECOG: Table 3's performance status is the one taken before the first dose (the baseline)."""
    return adsl.with_columns(pl.col("ECOG").alias("ECOGBL"))


def derive_dose0u(adsl: pl.DataFrame) -> pl.DataFrame:
    """DOSE0U = "MG", the unit of DOSE0 (a daily dose, Table 1)."""
    return adsl.with_columns(pl.lit("MG").alias("DOSE0U"))


def derive_dthfl(adsl: pl.DataFrame, followup: pl.DataFrame) -> pl.DataFrame:
    """DTHFL = "Y" for a patient who died by the latest data cut of ``followup`` (its ``died`` = 1), null otherwise (the IG's
    Y/null flag); a patient with no row at that cut is null."""
    latest = followup.filter(pl.col("data_cut") == pl.col("data_cut").max())
    died = latest.filter(pl.col("died") == 1).select(pl.col("patient_id").alias("SUBJID"), pl.lit("Y").alias("DTHFL"))
    return adsl.join(died, on="SUBJID", how="left", maintain_order="left")


def derive_adsl(
    patients: pl.DataFrame, allocations: pl.DataFrame, *, studyid: str, provenance: pl.DataFrame, treatment_code: str | None = None
) -> pl.DataFrame:
    """ADSL: one row per patient with baseline characteristics, treatment (``treatment_code``, study.toml's) and derived flags; RECONVAR names the
    variables whose value rests on a reconstructed record (``provenance``, provenance.csv), null when none does.
    DTHFL needs the follow-up: ``derive_dthfl`` adds it."""
    joined = patients.join(allocations.drop("_file", "_row"), on="patient_id", how="left")
    joined = joined.join(reconstructed_variables(joined["patient_id"], provenance), on="patient_id", how="left")
    lines = prior_chemo_lines(pl.col("chemotherapy_history"))
    return (
        joined.select(
            *subject_ids(studyid),
            pl.col("age").alias("AGE"),
            pl.lit("YEARS").alias("AGEU"),
            pl.col("sex").replace_strict(SEX_CODES, return_dtype=pl.String).alias("SEX"),
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
            "RECONVAR",
        )
        .sort("SUBJID")
        .pipe(derive_saffl)
        .pipe(derive_fasfl)
        .pipe(derive_trt01p, treatment_code)
        .pipe(derive_trt01a)
        .pipe(derive_ecogbl)
        .pipe(derive_dose0u)
    )
