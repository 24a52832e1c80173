"""data/ holds Table 3 exactly as the paper prints it (when the paper's text is beside the repository)."""

import re

import polars as pl
import pytest

from lms_assets_tests.conftest import REPO, SHIPPED_DATA

PAPER = REPO.parent / "shared" / "study-paper.txt"


@pytest.fixture(scope="module")
def table3() -> list[list[str]]:
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER}")
    text = PAPER.read_text()
    body = text[text.index("Table 3 Clinical") : text.index("Abbreviations: PR, partial")]
    return [[cell.strip() for cell in line.split("\t")] for line in body.splitlines() if re.match(r"^\d+\t", line)]


def test_patients_and_response_match_table_3(table3):
    patients = pl.read_csv(SHIPPED_DATA / "patients.csv", infer_schema=False)
    response = pl.read_csv(SHIPPED_DATA / "response.csv", infer_schema=False)
    assert len(table3) == patients.height == response.height == 19
    for printed, patient, resp in zip(table3, patients.iter_rows(named=True), response.iter_rows(named=True)):
        assert printed[:7] == [
            patient["patient_id"],
            patient["age"],
            patient["sex"],
            patient["ecog"],
            patient["surgery_history"],
            patient["radiotherapy_history"],
            patient["chemotherapy_history"],
        ]
        assert printed[7].replace(" ", "") == patient["combination_therapy"]
        assert float(printed[8].rstrip("%")) == float(resp["best_pct_change"])
        assert printed[9] == resp["best_response"]


def test_followup_matches_table_3(table3):
    cut = pl.read_csv(SHIPPED_DATA / "followup" / "2021-03-31.csv")
    for printed, row in zip(table3, cut.iter_rows(named=True)):
        assert float(printed[10]) == row["pfs_months"]
        if printed[11] == "NA":
            assert row["died"] == 0
        else:
            assert (row["died"], row["os_months"]) == (1, float(printed[11]))
