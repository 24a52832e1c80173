"""The ADaM IG variables, one derivation at a time on hand-made cohorts: population flags, treatment, ECOGBL, DTHFL
(ADSL); responder parameters (ADRS); ADTR; PARAMN, ASEQ, CNSDTDSC, EVNTDESC, TRTP (ADTTE); AETERM, AEDECOD, AEREL
(ADAE); and every variable's label, origin and derivation in the dictionary."""

import datetime as dt

import polars as pl
import pytest

from lms_assets import adam, dictionary
from lms_assets.adam import adtr, variables
from lms_assets.records import schemas
from lms_assets.tables import response

PROVENANCE = pl.DataFrame(schema={"file": pl.String, "column": pl.String, "patient_ids": pl.String, "origin": pl.String})
CUT, LATER = dt.date(2021, 3, 31), dt.date(2021, 6, 30)


def _records(location: str, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(pl.lit(location).alias("_file"), pl.int_range(2, pl.len() + 2).alias("_row"))


def _adsl(*combinations: str) -> pl.DataFrame:
    patients = _records(
        schemas.PATIENTS.location,
        [
            {"patient_id": i, "age": 50, "sex": "Female", "ecog": i % 3, "surgery_history": "Yes", "radiotherapy_history": "No"}
            | {"chemotherapy_history": "No", "combination_therapy": combination}
            for i, combination in enumerate(combinations, start=1)
        ],
    )
    allocations = _records(
        schemas.PATIENT_ALLOCATIONS.location,
        [
            {"patient_id": i, "primary_site": "Uterus", "starting_dose_mg": 12, "dose_reduced": "No", "discontinued_for_toxicity": "No"}
            for i in range(1, len(combinations) + 1)
        ],
    )
    return adam.adsl.derive_adsl(patients, allocations, studyid="S", provenance=PROVENANCE, treatment_code="ANLOTINIB")


def _followup(*rows: tuple[int, dt.date, float, int, float, int]) -> pl.DataFrame:
    """Follow-up records from (patient, cut, pfs_months, progressed, os_months, died)."""
    return pl.DataFrame(
        [
            {"patient_id": p, "data_cut": c, "pfs_months": pfs, "progressed": prog, "os_months": os, "died": died, "_row": i + 2}
            | {"_file": f"followup/{c}.csv", "content_hash": "h"}
            for i, (p, c, pfs, prog, os, died) in enumerate(rows)
        ]
    )


def test_population_flags_treatment_baseline_ecog_and_dose_unit():
    adsl = _adsl("None", "Immunotherapy")
    assert adsl["SAFFL"].to_list() == adsl["FASFL"].to_list() == ["Y", "Y"]
    assert adsl["TRT01P"].to_list() == ["ANLOTINIB", "ANLOTINIB"]
    assert adsl["TRT01A"].to_list() == ["ANLOTINIB", "ANLOTINIB + IMMUNOTHERAPY"]
    assert adsl["ECOGBL"].to_list() == adsl["ECOG"].to_list() == [1, 2]
    assert adsl["DOSE0U"].to_list() == ["MG", "MG"]


def test_dthfl_is_death_by_the_latest_cut_and_null_otherwise():
    followup = _followup(
        (1, CUT, 2.0, 1, 5.0, 0),
        (1, LATER, 2.0, 1, 7.0, 1),  # died after the first cut
        (2, CUT, 2.0, 1, 4.0, 0),
        (2, LATER, 2.0, 1, 8.0, 0),  # alive
        (3, CUT, 1.0, 1, 3.0, 1),  # died, but has no row at the latest cut
    )
    adsl = adam.adsl.derive_dthfl(_adsl("None", "None", "None"), followup)
    assert adsl["DTHFL"].to_list() == ["Y", None, None]


def test_adrs_has_bor_orr_and_dcr_per_patient_and_the_response_table_counts_the_same():
    best = ["CR", "PR", "SD", "PD", "NE"]
    records = _records(
        schemas.RESPONSE.location, [{"patient_id": i, "best_pct_change": -10.0 * i, "best_response": b} for i, b in enumerate(best, 1)]
    )
    adrs = adam.adrs.derive_adrs(records, studyid="S")
    assert adrs["PARAMCD"].to_list() == ["BOR", "ORR", "DCR"] * 5 and adrs["PARAMN"].to_list() == [1, 2, 3] * 5
    by = {code: adrs.filter(pl.col("PARAMCD") == code) for code in ("BOR", "ORR", "DCR")}
    assert by["BOR"]["AVAL"].to_list() == [1, 2, 3, 5, 6]
    assert by["ORR"]["AVALC"].to_list() == ["Y", "Y", "N", "N", "N"] and by["ORR"]["AVAL"].to_list() == [1, 1, 0, 0, 0]
    assert by["DCR"]["AVALC"].to_list() == ["Y", "Y", "Y", "N", "N"] and by["DCR"]["AVAL"].to_list() == [1, 1, 1, 0, 0]
    # The tumour change is ADTR's, not ADRS's; every responder row points at its patient's record line.
    assert "PCHG" not in adrs.columns
    assert by["ORR"]["SRCROW"].to_list() == by["BOR"]["SRCROW"].to_list()
    table = response.response_summary(adrs)
    assert table.filter(pl.col("key") == "orr")["n"].item() == by["ORR"]["AVAL"].sum()
    assert table.filter(pl.col("key") == "dcr")["n"].item() == by["DCR"]["AVAL"].sum()


def test_adtr_holds_each_measured_patients_best_change():
    records = _records(schemas.RESPONSE.location, [{"patient_id": 2, "best_pct_change": -30.5}, {"patient_id": 1, "best_pct_change": None}])
    table = adtr.derive_adtr(records.with_columns(best_response=pl.lit("PR")), studyid="S")
    assert table.select("SUBJID", "PARAMCD", "AVISIT", "PCHG", "SRCROW").rows() == [(2, "SDIAM", "BEST", -30.5, 2)]


def test_adtte_numbers_parameters_and_rows_and_says_which_source_ended_each_time():
    followup = _followup(
        (1, CUT, 3.0, 1, 3.0, 1),  # progression-free time ends in death
        (2, CUT, 2.0, 1, 9.0, 0),  # progressed, alive at last contact
        (2, LATER, 2.0, 1, 12.0, 0),
    )
    adtte = adam.adtte.derive_adtte(followup, studyid="S", provenance=PROVENANCE, treatment_code="ANLOTINIB")
    rows = {(r["SUBJID"], r["DCUTDT"], r["PARAMCD"]): r for r in adtte.iter_rows(named=True)}
    assert rows[(1, CUT, "PFS")]["EVNTDESC"] == "Death" and rows[(1, CUT, "OS")]["EVNTDESC"] == "Death"
    assert rows[(2, CUT, "PFS")]["EVNTDESC"] == "Progression" and rows[(2, CUT, "PFS")]["CNSDTDSC"] is None
    assert rows[(2, CUT, "OS")]["CNSDTDSC"] == "Last contact" and rows[(2, CUT, "OS")]["CNSR"] == 1
    assert {r["PARAMCD"]: r["PARAMN"] for r in rows.values()} == {"PFS": 1, "OS": 2}
    assert set(adtte["AVALU"]) == {"MONTHS"} and set(adtte["TRTP"]) == {"ANLOTINIB"}
    # ASEQ: 1, 2, … within the patient over cuts, then PFS before OS.
    sequence = adtte.sort("SUBJID", "ASEQ").filter(pl.col("SUBJID") == 2).select("DCUTDT", "PARAMCD", "ASEQ").rows()
    assert sequence == [(CUT, "PFS", 1), (CUT, "OS", 2), (LATER, "PFS", 3), (LATER, "OS", 4)]


def test_adtte_censored_pfs_comes_from_the_last_tumour_assessment():
    adtte = adam.adtte.derive_adtte(_followup((1, CUT, 4.0, 0, 6.0, 0)), studyid="S", provenance=PROVENANCE)
    pfs = adtte.filter(pl.col("PARAMCD") == "PFS").row(0, named=True)
    assert (pfs["CNSR"], pfs["CNSDTDSC"], pfs["EVNTDESC"]) == (1, "Last tumour assessment", "Progression-free at last assessment")


def test_adae_keeps_the_reported_term_decodes_it_as_itself_and_invents_no_causality():
    events = _records(schemas.ADVERSE_EVENTS.location, [{"patient_id": 1, "term": "Fatigue", "episode": 1, "ctcae_grade": 2}])
    adae = adam.adae.derive_adae(events, studyid="S")
    assert adae.select("AETERM", "AEDECOD", "AEREL").row(0) == ("Fatigue", "Fatigue", None)
    assert adae["AEREL"].dtype == pl.String
    assert variables.origin("adae", "AEREL") == "Not Available" and "no causality" in (variables.derivation("adae", "AEREL") or "")


@pytest.mark.parametrize("table", sorted(variables.MODULES))
def test_every_adam_variable_has_a_label_an_origin_and_a_derivation(table):
    listed = dictionary.adam_variables(table)
    assert [v["name"] for v in listed] == list(dictionary.DERIVED[table]), "the dictionary lists the dataset's columns"
    assert set(variables.ORIGINS[table]) == set(dictionary.DERIVED[table]), "every column has exactly one origin"
    for v in listed:
        assert v["origin"] in {"Collected", "Derived", "Assigned", "Reconstructed", "Not Available"}, v
        assert v["label"] and len(v["label"]) <= 40 and len(v["name"]) <= 8, v
        assert v["derivation"] and "``" not in v["derivation"], v


def test_a_derived_variables_derivation_is_the_docstring_of_its_rule():
    assert variables.derivation("adsl", "SAFFL") == " ".join((adam.adsl.derive_saffl.__doc__ or "").split())
    assert variables.derivation("adsl", "PRIMSITE") == "From patient_allocations.csv, column primary_site"
    assert variables.origin("adsl", "PRIMSITE") == "Reconstructed" and variables.origin("adsl", "AGE") == "Collected"
