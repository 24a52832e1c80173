"""Table 2, RECIST consistency and the text's shrinkage values from hand-made cohorts; a wrong printed value fails its check."""

import datetime as dt

import polars as pl
import pytest

from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.tables import response
from lms_assets_tests.conftest import run_assets

CUT_1 = dt.date(2021, 3, 31)
CUT_2 = dt.date(2022, 3, 31)


def _adrs(*rows: tuple[str, float | None]) -> pl.DataFrame:
    """ADRS BOR rows of (response, best % change) for SUBJIDs 1, 2, … (the change is ADTR's, ``_adtr``)."""
    return pl.DataFrame(
        {
            "USUBJID": [f"S-{i + 1}" for i in range(len(rows))],
            "SUBJID": list(range(1, len(rows) + 1)),
            "PARAMCD": ["BOR"] * len(rows),
            "AVALC": [r[0] for r in rows],
        },
        schema={"USUBJID": pl.String, "SUBJID": pl.Int64, "PARAMCD": pl.String, "AVALC": pl.String},
    )


def _adtr(*rows: tuple[str, float | None]) -> pl.DataFrame:
    """ADTR rows (SDIAM at AVISIT BEST) of the patients of (response, best % change) rows with a change."""
    changes = [(i + 1, r[1]) for i, r in enumerate(rows) if r[1] is not None]
    return pl.DataFrame(
        {"SUBJID": [s for s, _ in changes], "PARAMCD": "SDIAM", "AVISIT": "BEST", "PCHG": [c for _, c in changes]},
        schema={"SUBJID": pl.Int64, "PARAMCD": pl.String, "AVISIT": pl.String, "PCHG": pl.Float64},
    )


def _adsl(combination: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "SUBJID": list(range(1, len(combination) + 1)),
            "COMBFL": ["N" if c == "None" else "Y" for c in combination],
            "IMMUNOFL": ["Y" if "Immunotherapy" in c else "N" for c in combination],
        }
    )


def _adtte_os(alive_by_cut: dict[dt.date, set[int]], patients: int) -> pl.DataFrame:
    rows = [
        {"SUBJID": s, "DCUTDT": cut, "PARAMCD": "OS", "CNSR": int(s in alive), "AVAL": 10.0}
        for cut, alive in alive_by_cut.items()
        for s in range(1, patients + 1)
    ]
    return pl.DataFrame(rows, schema={"SUBJID": pl.Int64, "DCUTDT": pl.Date, "PARAMCD": pl.String, "CNSR": pl.Int64, "AVAL": pl.Float64})


# A CR, two PRs, an SD and an SD with a ≥ 20% increase; nobody with PD.
COHORT_ROWS = (("CR", -100.0), ("PR", -80.0), ("PR", -45.0), ("SD", -10.0), ("SD", 25.0))
COHORT, COHORT_ADTR = _adrs(*COHORT_ROWS), _adtr(*COHORT_ROWS)


def _row(table: pl.DataFrame, key: str) -> dict:
    return table.filter(pl.col("key") == key).row(0, named=True)


def _value(computed: pl.DataFrame, quantity: str) -> float:
    return computed.filter(pl.col("quantity") == quantity)["value"].item()


def test_response_rows_with_a_cr_and_an_empty_category():
    table = response.response_summary(COHORT)
    assert table["key"].to_list() == ["response.CR", "response.PR", "response.SD", "response.PD", "orr", "dcr"]
    assert (_row(table, "response.CR")["n"], _row(table, "response.CR")["patients"]) == (1, [1])
    empty = _row(table, "response.PD")
    assert (empty["n"], empty["pct"], empty["patients"]) == (0, 0.0, [])
    orr = _row(table, "orr")
    assert (orr["n"], orr["denominator"], orr["pct"], orr["patients"]) == (3, 5, 60.0, [1, 2, 3])
    assert _row(table, "dcr")["n"] == 5


def test_orr_has_the_exact_clopper_pearson_interval():
    orr = _row(response.response_summary(COHORT), "orr")
    # 3/5: Beta(0.025; 3, 3) and Beta(0.975; 4, 2), as tabulated for the exact binomial interval.
    assert orr["ci_lower_pct"] == pytest.approx(14.663, abs=1e-3)
    assert orr["ci_upper_pct"] == pytest.approx(94.726, abs=1e-3)
    assert "Clopper–Pearson" in orr["ci_method"] and "not printed" in orr["ci_method"]
    dcr = _row(response.response_summary(COHORT), "dcr")
    assert dcr["ci_upper_pct"] == pytest.approx(100.0)
    assert dcr["ci_lower_pct"] == pytest.approx(100 * 0.025 ** (1 / 5), abs=1e-6)  # all 5 of 5: lower = (α/2)^(1/n)
    assert _row(response.response_summary(COHORT), "response.PR")["ci_lower_pct"] is None


def test_not_evaluable_counts_in_the_denominator_when_present():
    table = response.response_summary(_adrs(("PR", -50.0), ("NE", None)))
    assert table["key"].to_list()[:5] == ["response.CR", "response.PR", "response.SD", "response.PD", "response.NE"]
    assert _row(table, "orr")["pct"] == 50.0
    computed = response.recomputed_values(table)
    assert _value(computed, "response.NE.n") == 1 and _value(computed, "orr.pct") == 50.0


def test_recist_consistency_flags_mismatches_for_review():
    rows = (("CR", -100.0), ("PR", -20.0), ("SD", 25.0), ("SD", -35.0), ("PD", 10.0), ("PD", 20.0), ("SD", -30.0), ("NE", None))
    table = response.recist_consistency(_adrs(*rows), _adtr(*rows))
    status = dict(zip(table["SUBJID"].to_list(), table["status"].to_list()))
    assert status == {1: "consistent", 2: "review", 3: "review", 4: "review", 5: "review", 6: "consistent", 7: "review", 8: "review"}
    reasons = dict(zip(table["SUBJID"].to_list(), table["reason"].to_list()))
    assert "nadir" in reasons[3]  # an SD at +25% is flagged, not turned into PD
    assert "under 30%" in reasons[2]
    assert table["status"].to_list()[:6] == ["review"] * 6  # patients to review come first
    assert table.filter(pl.col("SUBJID") == 7)["threshold_range"].item().startswith("PR-sized")  # exactly −30% is PR-sized


def test_shrinkage_mean_is_over_shrinking_patients_only():
    table = response.tumour_shrinkage(_adsl(["None"] * 5), COHORT, COHORT_ADTR, _adtte_os({CUT_1: set()}, 5))
    computed = response.shrinkage_recomputed_values(table, CUT_1)
    assert _value(computed, "shrinkage.n") == 4
    assert _value(computed, "shrinkage.pct") == 80.0
    assert _value(computed, "shrinkage.mean_pct") == pytest.approx((100 + 80 + 45 + 10) / 4)


def test_deep_shrinkage_on_immunotherapy_and_alive_at_the_published_cut():
    adsl = _adsl(["Immunotherapy", "Immunotherapy+Chemotherapy", "Immunotherapy", "Chemotherapy", "None"])
    adtte = _adtte_os({CUT_1: {1, 2}, CUT_2: {2}}, 5)
    table = response.tumour_shrinkage(adsl, COHORT, COHORT_ADTR, adtte)
    at_first = response.shrinkage_recomputed_values(table, CUT_1)
    assert _value(at_first, "immunotherapy.n") == 3
    assert _value(at_first, "immunotherapy.PR.n") == 2 and _value(at_first, "immunotherapy.CR.n") == 1
    assert _value(at_first, "shrinkage_gt70_immunotherapy.n") == 2  # −100% and −80%; −45% is not over 70%
    assert _value(at_first, "shrinkage_gt70_immunotherapy_alive.n") == 2
    assert _value(response.shrinkage_recomputed_values(table, CUT_2), "shrinkage_gt70_immunotherapy_alive.n") == 1
    assert _value(response.shrinkage_recomputed_values(table, None), "shrinkage_gt70_immunotherapy_alive.n") == 1  # latest cut
    assert "shrinkage_gt70_immunotherapy_alive.n" not in response.shrinkage_recomputed_values(table, dt.date(2020, 1, 1))["quantity"].to_list()


def test_pr_rate_by_combination_with_fishers_exact_test():
    rows = (("PR", -40.0), ("PR", -50.0), ("PR", -35.0), ("SD", 0.0), ("SD", 5.0), ("PD", 30.0))
    table = response.tumour_shrinkage(_adsl(["Chemotherapy"] * 3 + ["None"] * 3), _adrs(*rows), _adtr(*rows), _adtte_os({CUT_1: set()}, 6))
    combination, monotherapy = _row(table, "pr_rate.combination"), _row(table, "pr_rate.monotherapy")
    assert (combination["n"], combination["denominator"], combination["pct"]) == (3, 3, 100.0)
    assert (monotherapy["n"], monotherapy["pct"]) == (0, 0.0)
    # 3/3 vs 0/3: each of the two most extreme tables has probability 1/C(6,3) = 1/20, two-sided p = 0.1.
    assert combination["p_value"] == pytest.approx(0.1)


@pytest.mark.slow
def test_a_wrong_printed_value_fails_its_check(platform_env):
    registry = platform_env["data"] / "printed_values.csv"
    text = registry.read_text()
    assert "T2.response.PR.n,Table 2,response.PR.n,3,3," in text
    registry.write_text(text.replace("T2.response.PR.n,Table 2,response.PR.n,3,3,", "T2.response.PR.n,Table 2,response.PR.n,4,4,"))
    # The printed-value checks read the registry and the audit's paper_consistency as well as the table.
    result = run_assets("response_summary", "printed_values", "paper_consistency", paths=platform_env)
    values = value_verdicts(e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "response_summary")
    wrong = values["T2.response.PR.n"]
    # Not a reviewed discrepancy: a blocking ERROR that says what the table shows against what is printed.
    assert wrong["verdict"] == wrong["check_outcome"] == "ERROR" and wrong["check"] == "printed_table_2"
    assert wrong["shown"] == "3.0" and wrong["printed"] == "4"
    assert values["T2.response.PR.pct"]["verdict"] == values["ABS.response.PR.n"]["verdict"] == "passed"
