"""The audit's rules on known cases, and the audit of the shipped study."""

import polars as pl
import pytest

from lms_assets.analysis import audit

REGISTRY_SCHEMA = {
    "figure_id": pl.String, "source": pl.String, "quantity": pl.String, "printed": pl.String, "value": pl.Float64,
    "unit": pl.String, "decimals": pl.Int64, "numerator": pl.Int64, "denominator": pl.Int64,
}


def registry(*rows):
    return pl.DataFrame([dict(zip(REGISTRY_SCHEMA, r)) for r in rows], schema=REGISTRY_SCHEMA)


@pytest.mark.parametrize(
    ("pct", "decimals", "n", "ks"),
    [
        (15.8, 1, 19, [3]),
        (10.5, 1, 19, [2]),
        (12.5, 1, 19, []),  # the abstract's hand-foot grade 3/4: not k/19 for any k
        (87.5, 1, 19, []),  # the discussion's distant metastasis "16/19"
        (28.6, 1, 7, [2]),
        (50.0, 0, 4, [2]),
        (33.0, 0, 3, [1]),
        (34.0, 0, 3, []),
    ],
)
def test_grim(pct, decimals, n, ks):
    assert audit.grim_fractions(pct, decimals, n) == ks


def test_granularity_flags_impossible_percent_and_bad_fraction():
    reg = registry(
        ("A.x.pct", "Abstract", "x.pct", "12.5%", 12.5, "percent", 1, None, None),
        ("E.dcr.pct", "Efficacy", "dcr.pct", "73.7% (14/21)", 73.7, "percent", 1, 14, 21),
        ("D.pr.pct", "Discussion", "pr_rate.combination.pct", "2/7, 28.6%", 28.6, "percent", 1, 2, 7),
        ("T.ok.pct", "Table", "ok.pct", "15.8", 15.8, "percent", 1, None, None),
    )
    found = audit.granularity_findings(reg, cohort_n=19)
    by_id = {fid: set(found.filter(pl.col("figure_id") == fid)["finding"]) for fid in reg["figure_id"]}
    assert by_id == {
        "A.x.pct": {"grim_impossible"},
        "E.dcr.pct": {"self_inconsistent", "wrong_denominator"},
        "D.pr.pct": set(),
        "T.ok.pct": set(),
    }
    dcr = found.filter(pl.col("finding") == "self_inconsistent")["explanation"].item()
    assert dcr == "Efficacy prints 73.7% as 14/21, but 14/21 = 66.7%"


def test_paired_count_and_percent_must_agree():
    reg = registry(
        ("T.a.n", "Table", "a.n", "5", 5, "patients", 0, None, None),
        ("T.a.pct", "Table", "a.pct", "31.6", 31.6, "percent", 1, None, None),
        ("T.b.n", "Table", "b.n", "6", 6, "patients", 0, None, None),
        ("T.b.pct", "Table", "b.pct", "31.6", 31.6, "percent", 1, None, None),
    )
    found = audit.paired_count_findings(reg, cohort_n=19)
    assert found["figure_id"].to_list() == ["T.a.pct"]


def test_cross_source_compares_at_each_printing_precision():
    reg = registry(
        ("A.m", "Abstract", "pfs.ci_lower", "3.0", 3.0, "months", 1, None, None),
        ("E.m", "Efficacy", "pfs.ci_lower", "2.96", 2.96, "months", 2, None, None),
        ("A.o", "Abstract", "os.ci_lower", "14.2", 14.2, "months", 1, None, None),
        ("E.o", "Efficacy", "os.ci_lower", "12.3", 12.3, "months", 1, None, None),
    )
    found = audit.cross_source_findings(reg)
    assert sorted(found["figure_id"].to_list()) == ["A.o", "E.o"]
    assert "Abstract prints '14.2' for os.ci_lower, but Efficacy prints '12.3'" in found["explanation"].to_list()


def test_feasibility_enumerates_every_placement_of_the_censorings():
    # Deaths at 1, 2 and 3 months; two patients censored, each no earlier than 0.5 and no later than 10 months.
    # Four gaps (before 1, [1,2), [2,3), after 3) hold two censorings in C(5, 2) = 10 ways, all within bounds.
    result = audit.os_feasibility([1.0, 2.0, 3.0], [(0.5, 10.0), (0.5, 10.0)])
    assert (result.patterns_examined, result.patterns_feasible) == (10, 10)
    # Both censored before the first death: S = 2/3 at 1, 1/3 at 2 → median 2.
    # Both censored after the last death: S = 4/5, 3/5, 2/5 → median 3.
    assert audit.reachable(result.estimates, {"median": (2.0, 1)})
    assert audit.reachable(result.estimates, {"median": (3.0, 1)})
    assert not audit.reachable(result.estimates, {"median": (1.0, 1)})
    # The longest follow-up is at least the last death and at most the 10-month window.
    assert audit.reachable(result.estimates, {"followup_max": (10.0, 1)})
    assert not audit.reachable(result.estimates, {"followup_max": (2.5, 1)})


def test_feasibility_respects_each_patients_lower_bound():
    # A censoring that cannot come before 2.5 months can only fall in [2, 3) or after 3: 2 of the 4 gaps.
    result = audit.os_feasibility([1.0, 2.0, 3.0], [(2.5, 10.0)])
    assert (result.patterns_examined, result.patterns_feasible) == (4, 2)
    # In [2,3): S = 3/4, 2/4 → median 2; after 3: the same → median 2. Never 3.
    assert not audit.reachable(result.estimates, {"median": (3.0, 1)})


@pytest.fixture(scope="module")
def shipped_audit(tmp_path_factory):
    """The audit of the shipped study, and the published-figure check results of the same run."""
    import duckdb

    from lms_assets_tests.conftest import SHIPPED_DATA, run_assets

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("audit")
    mp.setenv("LMS_DATA_DIR", str(SHIPPED_DATA))
    mp.setenv("LMS_DUCKDB_PATH", str(root / "lms.duckdb"))
    mp.setenv("LMS_OUTPUT_DIR", str(root / "outputs"))
    try:
        result = run_assets("figure_audit")
    finally:
        mp.undo()
    with duckdb.connect(str(root / "lms.duckdb"), read_only=True) as con:
        table = con.sql("select * from figure_audit").pl()
    return result, table


def test_audit_of_the_shipped_study(shipped_audit):
    result, table = shipped_audit
    assert result.success
    registry = pl.read_csv(__import__("lms_assets_tests.conftest").conftest.SHIPPED_DATA / "published_figures.csv")
    assert table.height == registry.height
    assert set(table["status"]) <= {"reproduced", "discrepancy", "not_recomputable"}
    # Everything Table 3 can give is recomputed; only the distant-metastasis figure has no data behind it.
    assert table.filter(pl.col("status") == "not_recomputable")["figure_id"].to_list() == ["DIS.metastasis.distant.pct"]
    assert table.filter(pl.col("status") == "discrepancy")["explanation"].str.len_chars().min() > 20
    assert table["computed_by"].null_count() == 1
    status = dict(zip(table["figure_id"], table["status"]))
    explanation = dict(zip(table["figure_id"], table["explanation"]))
    assert status["T1.age.median"] == "discrepancy" and "give 52.0" in explanation["T1.age.median"]
    assert "not k/19 for any whole k" in explanation["ABS.ae.hand_foot_skin_syndrome.g34.pct"]
    assert "14/21 = 66.7%" in explanation["EFF.dcr.pct"]
    assert "no placement of the unpublished last-contact times" in explanation["T2.os.ci_lower"]
    assert status["T2.response.PR.pct"] == "reproduced"
    patients = dict(zip(table["figure_id"], table["patients"].to_list()))
    assert patients["EFF.os.events"] == [3, 4, 7, 9, 11, 12, 13, 14, 15, 17, 18, 19]  # the deaths of Table 3
    assert patients["T2.response.PR.n"] == [1, 2, 3]
    assert len(patients["T2.pfs.median"]) == 19
    basis = dict(zip(table["figure_id"], table["basis"]))
    assert basis["T2.orr.pct"] == "published_patient_data"
    assert basis["T4.ae.fatigue.any.n"] == "reconstructed_inputs"
    assert basis["T2.os.median"] == "reconstructed_inputs"


def test_check_severity_follows_the_audit(shipped_audit):
    result, _ = shipped_audit
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # The paper contradicts itself about these: warnings, with the audit's reason attached.
    for name in ("T1_age_median", "ABS_ae_hand_foot_skin_syndrome_g34_pct", "T2_os_ci_lower"):
        assert not checks[name].passed
        assert checks[name].severity.value == "WARN"
    assert "not k/19" in checks["ABS_ae_hand_foot_skin_syndrome_g34_pct"].metadata["paper_findings"].value
    # Nothing on the shipped study is an unexplained regression.
    errors = [n for n, e in checks.items() if not e.passed and e.severity.value == "ERROR"]
    assert errors == []
