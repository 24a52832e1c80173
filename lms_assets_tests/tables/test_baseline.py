"""Table 1 from hand-made cohorts: counts over all patients, empty levels, missing values, the text's groupings."""

import polars as pl
import pytest

from lms_assets.tables import baseline, printed


def _adsl(*patients: dict) -> pl.DataFrame:
    defaults = {
        "AGE": 50,
        "SEX": "F",
        "ECOG": 1,
        "SURGFL": "Y",
        "RADIOFL": "N",
        "PRCHLN": 0,
        "COMBFL": "N",
        "PRIMSITE": "Retroperitoneal",
        "DOSE0": 12,
    }
    rows = [{"SUBJID": i + 1, **defaults, **p} for i, p in enumerate(patients)]
    return pl.DataFrame(
        rows,
        schema={
            "SUBJID": pl.Int64,
            "AGE": pl.Int64,
            "SEX": pl.String,
            "ECOG": pl.Int64,
            "SURGFL": pl.String,
            "RADIOFL": pl.String,
            "PRCHLN": pl.Int64,
            "COMBFL": pl.String,
            "PRIMSITE": pl.String,
            "DOSE0": pl.Int64,
        },
    )


COHORT = _adsl(
    {"AGE": 30, "ECOG": 0, "PRCHLN": 1},
    {"AGE": 41, "ECOG": 3, "PRCHLN": 3, "COMBFL": "Y", "PRIMSITE": "Pelvis"},
    {"AGE": 60, "ECOG": 2, "PRIMSITE": None, "DOSE0": 10},
    {"AGE": 72, "ECOG": 1, "PRCHLN": 2, "PRIMSITE": "Pelvis"},
)


def _row(table: pl.DataFrame, key: str) -> dict:
    return table.filter(pl.col("key") == key).row(0, named=True)


def _value(computed: pl.DataFrame, quantity: str) -> float:
    return computed.filter(pl.col("quantity") == quantity)["value"].item()


def test_counts_and_percentages_over_all_patients():
    table = baseline.baseline_summary(COHORT)
    assert _row(table, "patients")["n"] == 4
    pelvis = _row(table, "site.pelvis")
    assert (pelvis["n"], pelvis["pct"], pelvis["patients"]) == (2, 50.0, [2, 4])
    assert _row(table, "chemotherapy.3plus_lines")["patients"] == [2]
    assert _row(table, "dose.10mg")["pct"] == 25.0
    # Table 1's order: sites most frequent first, doses highest first.
    sites = table.filter(pl.col("characteristic") == "Primary tumor site")["level"].to_list()
    assert sites == ["Pelvis", "Retroperitoneal", "Not recorded"]
    assert table.filter(pl.col("characteristic") == "Starting dose")["level"].to_list() == ["12 mg", "10 mg"]


def test_empty_level_is_printed_as_zero():
    table = baseline.baseline_summary(COHORT)
    male = _row(table, "sex.male")
    assert (male["n"], male["pct"], male["patients"]) == (0, 0.0, [])
    assert _row(table, "surgery.no")["n"] == 0


def test_missing_value_is_its_own_row_and_still_in_the_denominator():
    table = baseline.baseline_summary(COHORT)
    missing = _row(table, "site.not_recorded")
    assert (missing["level"], missing["n"], missing["pct"], missing["patients"]) == ("Not recorded", 1, 25.0, [3])


def test_age_median_of_an_even_cohort_is_the_mean_of_the_middle_two():
    table = baseline.baseline_summary(COHORT)
    assert _row(table, "age.median")["value"] == pytest.approx(50.5)
    assert (_row(table, "age.min")["value"], _row(table, "age.min")["patients"]) == (30.0, [1])
    assert (_row(table, "age.max")["value"], _row(table, "age.max")["patients"]) == (72.0, [4])


def test_ecog_levels_above_two_are_added_and_grouped():
    table = baseline.baseline_summary(COHORT)
    assert table.filter(pl.col("characteristic") == baseline.ECOG)["level"].to_list() == ["0", "1", "2", "3"]
    computed = baseline.recomputed_values(table)
    assert _value(computed, "ecog.0-1.n") == 2
    assert _value(computed, "ecog.ge2.pct") == 50.0
    assert _value(computed, "ecog.gt2.n") == 1
    assert computed.filter(pl.col("quantity") == "ecog.gt2.n")["patients"].item().to_list() == [2]


def test_any_prior_chemotherapy_counts_one_line_or_more():
    computed = baseline.recomputed_values(baseline.baseline_summary(COHORT))
    assert _value(computed, "chemotherapy.any.n") == 3
    assert _value(computed, "chemotherapy.any.pct") == 75.0
    assert _value(computed, "chemotherapy.none.n") == 1


def test_printed_ecog_levels_stay_when_nobody_has_them():
    table = baseline.baseline_summary(_adsl({"ECOG": 1}, {"ECOG": 1}))
    assert table.filter(pl.col("characteristic") == baseline.ECOG)["n"].to_list() == [0, 2, 0]
    assert _value(baseline.recomputed_values(table), "ecog.gt2.n") == 0


def test_a_value_without_a_table_level_is_refused():
    with pytest.raises(ValueError, match="SEX"):
        baseline.baseline_summary(_adsl({"SEX": "X"}))


def test_slug_matches_registry_names():
    assert printed.slug("Nausea/vomiting") == "nausea_vomiting"
    assert printed.slug("Hand foot skin syndrome") == "hand_foot_skin_syndrome"
    assert printed.slug("ALT elevation") == "alt_elevation"
