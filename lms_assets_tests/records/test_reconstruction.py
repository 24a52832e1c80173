"""Every value reconstructed in data/ satisfies the constraints recorded in data/provenance.csv.

Targets are read from the printed-value registry, so the test checks the files against the paper.
"""

import polars as pl
import pytest

from lms_assets.tables import printed
from lms_assets.tables.kaplan_meier import km_table
from lms_assets.tables.survival import spss_median_ci
from lms_assets_tests.conftest import SHIPPED_DATA

STUDY_WINDOW_MONTHS = 39.0  # first possible start 2018-01 to the data cut 2021-03-31


def registry_value(value_id: str) -> float:
    registry = pl.read_csv(SHIPPED_DATA / "printed_values.csv")
    return registry.filter(pl.col("value_id") == value_id)["value"].item()


@pytest.fixture(scope="module")
def followup():
    return pl.read_csv(SHIPPED_DATA / "followup" / "2021-03-31.csv")


@pytest.fixture(scope="module")
def patients():
    return pl.read_csv(SHIPPED_DATA / "patients.csv").join(pl.read_csv(SHIPPED_DATA / "patient_allocations.csv"), on="patient_id")


@pytest.fixture(scope="module")
def worst_ae():
    events = pl.read_csv(SHIPPED_DATA / "adverse_events.csv")
    return events.group_by("patient_id", "term").agg(pl.col("ctcae_grade").max())


def test_reconstructed_os_times_stay_inside_the_study(followup):
    alive = followup.filter(pl.col("died") == 0)
    assert alive.height == 19 - registry_value("EFF.os.events")
    assert (alive["os_months"] >= alive["pfs_months"]).all()
    assert (alive["os_months"] <= STUDY_WINDOW_MONTHS).all()


def test_reconstructed_os_reproduces_the_printed_median_and_the_results_interval(followup):
    estimate = spss_median_ci(km_table(followup["os_months"].to_list(), followup["died"].to_list()))
    assert estimate.median == pytest.approx(registry_value("T2.os.median"))
    assert round(estimate.ci_lower, 1) == registry_value("EFF.os.ci_lower")
    assert round(estimate.ci_upper, 1) == registry_value("EFF.os.ci_upper")


def test_allocations_match_table_1_counts(patients):
    for site, n in patients.group_by("primary_site").len().iter_rows():
        assert n == registry_value(f"T1.site.{site.lower()}.n"), site
    assert patients.filter(pl.col("primary_site") == "Uterus")["sex"].to_list() == ["Female"]
    for dose, n in patients.group_by("starting_dose_mg").len().iter_rows():
        assert n == registry_value(f"T1.dose.{dose}mg.n")


def test_dose_changes_match_the_safety_text(patients, worst_ae):
    grade34 = set(worst_ae.filter(pl.col("ctcae_grade") >= 3)["patient_id"].to_list())
    reduced = set(patients.filter(pl.col("dose_reduced") == "Yes")["patient_id"].to_list())
    stopped = set(patients.filter(pl.col("discontinued_for_toxicity") == "Yes")["patient_id"].to_list())
    assert len(reduced) == registry_value("SAF.dose_reduction.n")
    assert len(stopped) == registry_value("SAF.discontinuation.n")
    assert stopped <= grade34 and grade34 <= reduced


def test_adverse_events_match_table_4_at_worst_grade(worst_ae):
    terms = worst_ae["term"].unique().to_list()
    registry = pl.read_csv(SHIPPED_DATA / "printed_values.csv")
    assert len(terms) == registry.filter(pl.col("value_id").str.starts_with("T4.") & pl.col("value_id").str.ends_with(".any.n")).height
    for term in terms:
        rows = worst_ae.filter(pl.col("term") == term)
        assert rows.height == registry_value(f"T4.ae.{printed.slug(term)}.any.n"), term
        assert rows.filter(pl.col("ctcae_grade") <= 2).height == registry_value(f"T4.ae.{printed.slug(term)}.g12.n"), term
        assert rows.filter(pl.col("ctcae_grade").is_between(3, 4)).height == registry_value(f"T4.ae.{printed.slug(term)}.g34.n"), term
    assert worst_ae.filter(pl.col("ctcae_grade") >= 3)["patient_id"].n_unique() == registry_value("SAF.ae.any_g34.n")
    assert worst_ae.filter(pl.col("ctcae_grade") == 5).is_empty()


def test_every_reconstructed_value_is_declared_in_provenance():
    provenance = pl.read_csv(SHIPPED_DATA / "provenance.csv")
    reconstructed = provenance.filter(pl.col("origin") == "reconstructed")
    assert reconstructed["constraint"].is_not_null().all()
    declared = set(zip(reconstructed["file"], reconstructed["column"]))
    for column in pl.read_csv(SHIPPED_DATA / "patient_allocations.csv").columns[1:]:
        assert ("patient_allocations.csv", column) in declared
    assert ("adverse_events.csv", "*") in declared
    alive = pl.read_csv(SHIPPED_DATA / "followup" / "2021-03-31.csv").filter(pl.col("died") == 0)["patient_id"].sort().to_list()
    os_row = reconstructed.filter(pl.col("column") == "os_months")
    assert [int(p) for p in os_row["patient_ids"].item().split()] == alive
