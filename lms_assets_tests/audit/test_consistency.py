"""The audit's rules on known cases, and the audit of the shipped study."""

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from dagster import TableMetadataValue

from lms_assets.audit import feasibility, findings, hypotheses
from lms_assets.audit.rounding import rounding_audit
from lms_assets.checks import printed_values
from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES
from lms_assets.defs.markdown import plain_text
from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.defs.registry_at_load import bounded
from lms_assets_tests.conftest import SHIPPED_DATA, SHIPPED_STUDY
from lms_assets_tests.records.test_validation import as_shown

REGISTRY_SCHEMA = {
    "value_id": pl.String,
    "source": pl.String,
    "quantity": pl.String,
    "printed": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "decimals": pl.Int64,
    "numerator": pl.Int64,
    "denominator": pl.Int64,
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
    assert findings.grim_fractions(pct, decimals, n) == ks


def test_granularity_flags_impossible_percent_and_bad_fraction():
    reg = registry(
        ("A.x.pct", "Abstract", "x.pct", "12.5%", 12.5, "percent", 1, None, None),
        ("E.dcr.pct", "Efficacy", "dcr.pct", "73.7% (14/21)", 73.7, "percent", 1, 14, 21),
        ("D.pr.pct", "Discussion", "pr_rate.combination.pct", "2/7, 28.6%", 28.6, "percent", 1, 2, 7),
        ("T.ok.pct", "Table", "ok.pct", "15.8", 15.8, "percent", 1, None, None),
    )
    found = findings.granularity_findings(reg, cohort_n=19)
    by_id = {fid: set(found.filter(pl.col("value_id") == fid)["finding"]) for fid in reg["value_id"]}
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
    found = findings.paired_count_findings(reg, cohort_n=19)
    assert found["value_id"].to_list() == ["T.a.pct"]


def test_cross_source_compares_at_each_printing_precision():
    reg = registry(
        ("A.m", "Abstract", "pfs.ci_lower", "3.0", 3.0, "months", 1, None, None),
        ("E.m", "Efficacy", "pfs.ci_lower", "2.96", 2.96, "months", 2, None, None),
        ("A.o", "Abstract", "os.ci_lower", "14.2", 14.2, "months", 1, None, None),
        ("E.o", "Efficacy", "os.ci_lower", "12.3", 12.3, "months", 1, None, None),
    )
    found = findings.cross_source_findings(reg)
    assert sorted(found["value_id"].to_list()) == ["A.o", "E.o"]
    assert "Abstract prints '14.2' for os.ci_lower, but Efficacy prints '12.3'" in found["explanation"].to_list()


def test_feasibility_enumerates_every_placement_of_the_censorings():
    # Deaths at 1, 2 and 3 months; two patients censored, each no earlier than 0.5 and no later than 10 months.
    # Four gaps (before 1, [1,2), [2,3), after 3) hold two censorings in C(5, 2) = 10 ways, all within bounds.
    result = feasibility.os_feasibility([1.0, 2.0, 3.0], [(0.5, 10.0), (0.5, 10.0)])
    assert (result.patterns_examined, result.patterns_feasible) == (10, 10)
    # Both censored before the first death: S = 2/3 at 1, 1/3 at 2 → median 2.
    # Both censored after the last death: S = 4/5, 3/5, 2/5 → median 3.
    assert feasibility.reachable(result.estimates, {"median": (2.0, 1)})
    assert feasibility.reachable(result.estimates, {"median": (3.0, 1)})
    assert not feasibility.reachable(result.estimates, {"median": (1.0, 1)})
    # The longest follow-up is at least the last death and at most the 10-month window.
    assert feasibility.reachable(result.estimates, {"followup_max": (10.0, 1)})
    assert not feasibility.reachable(result.estimates, {"followup_max": (2.5, 1)})


def test_feasibility_respects_each_patients_lower_bound():
    # A censoring that cannot come before 2.5 months can only fall in [2, 3) or after 3: 2 of the 4 gaps.
    result = feasibility.os_feasibility([1.0, 2.0, 3.0], [(2.5, 10.0)])
    assert (result.patterns_examined, result.patterns_feasible) == (4, 2)
    # In [2,3): S = 3/4, 2/4 → median 2; after 3: the same → median 2. Never 3.
    assert not feasibility.reachable(result.estimates, {"median": (3.0, 1)})


# --- the severity rule --------------------------------------------------------------------------------------

PRINTED = {"value_id": "T1.age.median", "source": "Table 1", "quantity": "age.median", "printed": "53", "value": 53.0, "decimals": 0}
NOT_REVIEWED = dict.fromkeys(printed_values.REVIEW_SCHEMA)
REVIEWED = {
    **NOT_REVIEWED,
    "reviewed_expected": "52.0",
    "reviewed_reason": "median of Table 3's ages",
    "reviewed_by": "lms-assets developers",
    "reviewed_on": None,
}
CONSISTENT = {"basis": "published_patient_data", "reconstruction": None, "findings": [], "explanation": None}


@pytest.mark.parametrize(
    ("review", "shown", "findings", "check", "status", "says"),
    [
        (NOT_REVIEWED, 53.0, [], printed_values.PASSED, printed_values.REPRODUCED, "reproduced"),
        (NOT_REVIEWED, 52.0, [], printed_values.ERROR, printed_values.DISCREPANCY, "not a reviewed discrepancy"),
        (REVIEWED, 52.0, [], printed_values.WARN, printed_values.DISCREPANCY, "Table 3's published rows give 52.0"),
        # A reviewed value saved by a spreadsheet without its trailing zero is still the reviewed value.
        ({**REVIEWED, "reviewed_expected": "52"}, 52.0, [], printed_values.WARN, printed_values.DISCREPANCY, "give 52.0"),
        # The reviewed value moved: a regression, even though the value is a known discrepancy.
        (REVIEWED, 51.0, [], printed_values.ERROR, printed_values.DISCREPANCY, "showed 52.0 when reviewed and now shows 51.0"),
        # Suddenly reproduced: the review is stale, and that blocks too.
        (REVIEWED, 53.2, [], printed_values.ERROR, printed_values.REPRODUCED, "stale review"),
        # The reviewed finding is no longer found: the review no longer explains the failure.
        ({**REVIEWED, "reviewed_finding": "grim_impossible"}, 52.0, [], printed_values.ERROR, printed_values.DISCREPANCY, "no longer found"),
        ({**REVIEWED, "reviewed_finding": "grim_impossible"}, 52.0, ["grim_impossible"], printed_values.WARN, printed_values.DISCREPANCY, "52.0"),
        (
            {**REVIEWED, "reviewed_expected": "not computable"},
            None,
            ["self_inconsistent"],
            printed_values.WARN,
            printed_values.DISCREPANCY,
            "hold nothing",
        ),
        (NOT_REVIEWED, None, [], printed_values.ERROR, printed_values.NOT_RECOMPUTABLE, "not computable"),
    ],
)
def test_a_failure_is_warn_only_for_a_reviewed_discrepancy_that_still_stands(review, shown, findings, check, status, says):
    verdict = printed_values.judge({**PRINTED, **review}, shown, {**CONSISTENT, "findings": findings})
    assert (verdict.check, verdict.status) == (check, status)
    assert says in verdict.check_reason
    if check == printed_values.WARN:
        assert verdict.check_reason == verdict.explanation


def test_the_hypotheses_try_a_rounded_mean_another_denominator_and_copied_bounds():
    reg = registry(
        ("T.age.median", "Table", "age.median", "53", 53.0, "years", 0, None, None),
        ("A.x.pct", "Abstract", "x.pct", "12.5%", 12.5, "percent", 1, None, None),
        ("D.y.pct", "Discussion", "y.pct", "87.5%", 87.5, "percent", 1, None, None),
        ("E.followup.max", "Efficacy", "followup.max", "23.5", 23.5, "months", 1, None, None),
        ("E.n", "Efficacy", "x.n", "24", 24.0, "patients", 0, None, None),
        ("E.os.median", "Efficacy", "os.median", "23.5", 23.5, "months", 1, None, None),
        ("E.dcr.pct", "Efficacy", "dcr.pct", "73.7% (14/21)", 73.7, "percent", 1, 14, 21),
    )
    rows = [
        {"value_id": "T.age.median", "quantity": "age.median", "status": "discrepancy", "recomputed": 52.0, "shown": "52.0", "findings": []},
        {"value_id": "A.x.pct", "quantity": "x.pct", "status": "discrepancy", "recomputed": 10.5, "shown": "10.53", "findings": ["grim_impossible"]},
        {
            "value_id": "D.y.pct",
            "quantity": "y.pct",
            "status": "discrepancy",
            "recomputed": None,
            "shown": "not computable",
            "findings": ["grim_impossible"],
        },
        {"value_id": "E.followup.max", "quantity": "followup.max", "status": "discrepancy", "recomputed": 28.0, "shown": "28.00", "findings": []},
        {
            "value_id": "E.dcr.pct",
            "quantity": "dcr.pct",
            "status": "discrepancy",
            "recomputed": 73.68,
            "shown": "73.68",
            "findings": ["self_inconsistent", "wrong_denominator"],
        },
    ]
    found = hypotheses.hypotheses(rows, reg, 19, {"age.median": 52.89}, {})
    assert "the printed median 53 is the mean rounded (mean = 52.9" in found["T.age.median"]
    # One denominator tried across both impossible percentages: 16 makes both exact.
    assert "a denominator of 16" in found["A.x.pct"] and "12.5% = 2/16, 87.5% = 14/16" in found["D.y.pct"]
    assert "equals the printed os.median" in found["E.followup.max"] and "x.n" not in found["E.followup.max"]
    assert "the printed denominator 21 is a slip for the cohort's 19: 14/19 = 73.68%" in found["E.dcr.pct"]
    assert all(text.startswith("Hypothesis: ") for text in found.values())


def test_an_interval_hypothesis_names_the_method_that_fits_and_says_when_none_does():
    reg = registry(
        ("T.os.ci_lower", "Table", "os.ci_lower", "14.1", 14.1, "months", 1, None, None),
        ("T.os.ci_upper", "Table", "os.ci_upper", "40.0", 40.0, "months", 1, None, None),
    )
    rows = [
        {"value_id": f"T.os.ci_{b}", "quantity": f"os.ci_{b}", "status": "discrepancy", "recomputed": 1.0, "shown": "1.00", "findings": []}
        for b in ("lower", "upper")
    ]
    found = hypotheses.hypotheses(rows, reg, 19, {}, {"os": [("SPSS median ± z·SE at 90%", 14.096, 32.904)]})
    assert "14.1 is the lower bound of SPSS median ± z·SE at 90% (14.10–32.90)" in found["T.os.ci_lower"]
    assert found["T.os.ci_upper"].startswith("No other standard CI method or level gives 40")


# --- the shipped study ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_audit(shipped_run):
    """The audit of the shipped study, the printed-value check results of the same run, and its warehouse."""
    import duckdb

    names = ("printed_audit", "printed_values", *PRINTED_VALUE_SOURCES)
    with duckdb.connect(str(shipped_run["warehouse"]), read_only=True) as con:
        tables = {name: con.sql(f"select * from {name}").pl() for name in names}
    return shipped_run["result"], tables["printed_audit"], tables


def test_audit_of_the_shipped_study(shipped_audit):
    result, table, _ = shipped_audit
    assert result.success
    registry = pl.read_csv(SHIPPED_DATA / "printed_values.csv")
    assert table.height == registry.height
    assert set(table["status"]) <= {"reproduced", "discrepancy", "not_recomputable"}
    # Everything Table 3 can give is recomputed; the one value nothing recomputes contradicts itself, so it is a discrepancy.
    status = dict(zip(table["value_id"], table["status"]))
    explanation = dict(zip(table["value_id"], table["explanation"]))
    assert table.filter(pl.col("status") == "not_recomputable").is_empty()
    assert status["DIS.metastasis.distant.pct"] == "discrepancy" and "16/19 = 84.2%" in explanation["DIS.metastasis.distant.pct"]
    assert table.filter(pl.col("status") == "discrepancy")["explanation"].str.len_chars().min() > 20
    assert table["computed_by"].null_count() == 1
    assert status["T1.age.median"] == "discrepancy" and "give 52.0" in explanation["T1.age.median"]
    assert "not k/19 for any whole k" in explanation["ABS.ae.hand_foot_skin_syndrome.g34.pct"]
    assert "14/21 = 66.7%" in explanation["EFF.dcr.pct"]
    assert "no placement of the unpublished last-contact times" in explanation["T2.os.ci_lower"]
    assert status["T2.response.PR.pct"] == "reproduced"
    # Every printed estimate is half-up at its printed precision, or reproduced by no rule at all (a discrepancy).
    rounding = dict(zip(table["value_id"], table["rounding"]))
    assert table["rounding_flag"].null_count() == table.height
    assert rounding["T2.response.PR.pct"] == "half-up / half-even at 1 dp" and rounding["T1.age.median"] == "none"
    assert rounding["T2.response.PR.n"] is None
    patients = dict(zip(table["value_id"], table["patients"].to_list()))
    assert patients["EFF.os.events"] == [3, 4, 7, 9, 11, 12, 13, 14, 15, 17, 18, 19]  # the deaths of Table 3
    assert patients["T2.response.PR.n"] == [1, 2, 3]
    assert len(patients["T2.pfs.median"]) == 19
    basis = dict(zip(table["value_id"], table["basis"]))
    assert basis["T2.orr.pct"] == "published_patient_data"
    assert basis["T4.ae.fatigue.any.n"] == "reconstructed_inputs"
    assert basis["T2.os.median"] == "reconstructed_inputs"
    hypotheses = dict(zip(table["value_id"], table["hypotheses"]))
    assert "mean rounded" in hypotheses["T1.age.median"]
    assert "23.5 equals the printed os.median" in hypotheses["EFF.followup.max"]
    # Beside each value, what the paper's data permit (sensitivity_ranges), and R's verification in the metadata.
    verdict = dict(zip(table["value_id"], table["sensitivity_verdict"]))
    assert table["sensitivity_verdict"].null_count() == 0
    assert verdict["T2.orr.pct"] == "fixed by the paper" and verdict["T2.os.ci_lower"] == "robust"
    assert verdict["DIS.subgroups.os.significant.n"] == "depends on the reconstruction"
    metadata = result.asset_materializations_for_node("printed_audit")[0].metadata
    assert metadata["r_check"].value.split(" of ")[0] == metadata["r_check"].value.split(" of ")[1].split(" ")[0]


def test_no_error_and_every_warn_is_a_reviewed_discrepancy_that_explains_itself(shipped_audit):
    result, table, tables = shipped_audit
    evaluations = result.get_asset_check_evaluations()
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in evaluations}
    assert not [n for n, e in checks.items() if not e.passed and e.severity.value == "ERROR"]
    values = value_verdicts(evaluations)
    reviewed = pl.read_csv(SHIPPED_DATA / "known_discrepancies.csv")
    warned = {f: row for f, row in values.items() if row["verdict"] != "passed"}
    assert set(warned) == set(reviewed["value_id"])
    # A section check warns exactly when one of its values is a reviewed discrepancy, and says first which and why.
    registry = tables["printed_values"]
    owner = dict(zip(registry["value_id"], registry["owner"]))
    # printed_values names each value's section check, which is the check whose table holds it.
    assert {f: row["check"] for f, row in values.items()} == dict(zip(registry["value_id"], registry["check_name"]))
    sections = {(owner[f], row["check"]) for f, row in warned.items()}
    assert {n for n, e in checks.items() if not e.passed} == sections
    for name in sections:
        metadata = checks[name].metadata
        # The panel's first entry is the table of its printed values; the first line names every failed one.
        assert next(iter(metadata)) == "printed values" and isinstance(metadata["printed values"], TableMetadataValue)
        for value, row in warned.items():
            if (owner[value], row["check"]) == name:
                assert value in plain_text(checks[name].description), (name, value)
        # Each reason once, however many values cite it.
        reasons = [v.value for k, v in metadata.items() if k.startswith("reason ")]
        assert len(reasons) == len(set(reasons)) > 0
    explanation = dict(zip(table["value_id"], table["explanation"]))
    for value, row in warned.items():
        # The value's reasons are printed_audit's sentence and its review; every cell text, nothing numeric for the UI to plot.
        assert row["reason"].startswith(explanation[value]) and explanation[value] and row["check_outcome"] == "WARN"
        assert row["reason"].endswith(" Reviewed by lms-assets developers on 2026-12-01."), row["reason"]
        assert all(isinstance(v, str) for v in row.values()), value
        assert row["basis"] in ("Table 3", "reconstructed")
        assert row["trace"].endswith(f"/report/trace.html#{value}")
    assert values["T2.os.ci_lower"]["basis"] == "reconstructed"
    assert values["T2.os.ci_lower"]["shown"] == "12.29"
    assert (values["T2.os.ci_lower"]["check"], values["T1.age.median"]["check"]) == ("printed_table_2", "printed_table_1")


def test_printed_audit_the_checks_and_the_report_agree_on_every_status(shipped_audit):
    from lms_assets.defs.report import _comparisons

    result, table, tables = shipped_audit
    # Every printed value has its verdict in its section check's table, the same as printed_audit's check_outcome.
    values = value_verdicts(result.get_asset_check_evaluations())
    audited = dict(zip(table["value_id"], table["check_outcome"]))
    assert {f: values[f]["verdict"] for f in audited} == audited
    comparisons = _comparisons(tables, tables["printed_values"], table, SHIPPED_STUDY)
    shown = pl.concat([c.filter(pl.col("value_id").is_not_null()) for c in comparisons.values()]).select("value_id", "status")
    assert shown.height == table.filter(pl.col("source").is_in([t.source for t in SHIPPED_STUDY.report_tables])).height
    expected = dict(zip(table["value_id"], table["status"]))
    assert dict(shown.iter_rows()) == {f: expected[f] for f in shown["value_id"]}


# --- the registry at definition load (issue 15, boundaries) -------------------------------------------------


def _definitions_and_registry_failure(paths):
    """Load the definitions on ``paths`` (a platform_env), then materialize raw_printed_values: (defs, its failure message as
    the UI shows it, Markdown escapes resolved)."""
    from dagster import AssetKey

    from lms_assets_tests.conftest import defs_for

    defs = defs_for(paths)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[AssetKey("raw_printed_values")], raise_on_error=False)
    failures = [as_shown(e.event_specific_data.error.message) for e in result.get_step_failure_events()]
    return defs, " ".join(failures)


def _stand_in_descriptions(defs) -> list[str]:
    graph = defs.resolve_asset_graph()
    return [graph.get_check_spec(k).description for k in graph.asset_check_keys if k.name == "printed_values"]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda path: path.write_bytes(path.read_bytes().replace(b"Abstract", "Résumé".encode("latin-1"))), "not UTF-8"),
        (lambda path: path.write_text(path.read_text().replace(",decimals,", ",places,", 1)), "missing column(s) decimals"),
    ],
    ids=["latin-1", "missing column"],
)
def test_a_bad_registry_leaves_the_definitions_loading_and_fails_its_own_asset(platform_env, damage, says):
    damage(platform_env["data"] / "printed_values.csv")
    defs, failure = _definitions_and_registry_failure(platform_env)
    descriptions = _stand_in_descriptions(defs)
    # One stand-in check per summary asset, saying the registry could not be read; its own asset says why.
    assert len(descriptions) == len(PRINTED_VALUE_SOURCES)
    assert all("printed_values.csv could not be read (RecordFileError)" in d for d in descriptions)
    assert "printed_values.csv" in failure and says in failure


def test_the_load_time_message_quotes_nothing_from_the_file(platform_env, monkeypatch):
    secret = "lms-test-secret-value-0xdeadbeef"
    # An environment dump saved as the registry: one header line with ';' in it, which validation would quote.
    (platform_env["data"] / "printed_values.csv").write_text(f"DB_PASSWORD={secret};LS_COLORS=rs=0\n1,2\n")
    defs, _ = _definitions_and_registry_failure(platform_env)
    descriptions = _stand_in_descriptions(defs)
    assert descriptions and not any(secret in d for d in descriptions)


def test_a_registry_symlinked_out_of_the_study_folder_is_refused_without_echoing_it(platform_env, tmp_path, monkeypatch):
    secret = "lms-test-secret-value-0xdeadbeef"
    monkeypatch.setenv("LMS_TEST_SECRET", secret)
    registry = platform_env["data"] / "printed_values.csv"
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(registry, outside)
    for target in (outside, Path("/proc/self/environ")):
        registry.unlink()
        registry.symlink_to(target)
        defs, failure = _definitions_and_registry_failure(platform_env)
        descriptions = _stand_in_descriptions(defs)
        assert descriptions and all("outside the study folder" in d for d in descriptions)
        assert "outside the study folder" in failure
        assert secret not in failure and not any(secret in d for d in descriptions)


def test_load_errors_are_bounded_and_sanitised():
    text = "x" * 1000 + "\x1b[31m"
    shown = bounded(text)
    assert len(shown) < 250 and "\x1b" not in shown and shown.endswith("more characters not shown)")
    assert bounded("line 3\nis\tbad") == "line 3?is\tbad"


def test_every_claim_without_a_registry_row_says_why_and_names_real_values():
    from lms_assets.records import schemas, validation

    raw = validation.read_raw(SHIPPED_DATA / "unchecked_claims.csv", schemas.UNCHECKED_CLAIMS)
    assert validation.problems(raw, schemas.UNCHECKED_CLAIMS).is_empty()
    claims = validation.clean(raw, schemas.UNCHECKED_CLAIMS, validation.empty_quarantine())
    printed = set(pl.read_csv(SHIPPED_DATA / "printed_values.csv")["value_id"])
    named = {f for ids in claims["value_ids"].drop_nulls() for f in ids.split()}
    assert named <= printed, sorted(named - printed)
    covered = claims.filter(pl.col("disposition") == "covered_by_registry")
    assert covered["value_ids"].null_count() == 0
    assert (claims["reason"].str.len_chars() > 20).all()


def test_a_bad_file_s_failure_quotes_a_bounded_excerpt_only(platform_env):
    header = "A=" + "x" * 5000 + ";B=\x1b[2J"
    (platform_env["data"] / "printed_values.csv").write_text(header + "\n1\n")
    _, failure = _definitions_and_registry_failure(platform_env)
    assert "printed_values.csv" in failure and "x" * 700 not in failure and "\x1b" not in failure


def _known(tmp_path: Path, *rows: str) -> pl.DataFrame:
    from lms_assets.records import schemas, validation

    path = tmp_path / "known_discrepancies.csv"
    path.write_text("\n".join(["value_id,expected_recomputed,finding,reason,reviewed_by,reviewed_on", *rows]) + "\n")
    return validation.read_raw(path, schemas.KNOWN_DISCREPANCIES)


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["T1.age.median,52.0,,,lms-assets developers,2026-12-01"], "row 2 column reason: an entry needs a machine finding or a written reason"),
        (["T1.age.median,52.0,a_guess,,lms-assets developers,2026-12-01"], "row 2 column finding: not one of grim_impossible"),
        (["T9.nothing.n,1.0,,printed nowhere,lms-assets developers,2026-12-01"], "value_id T9.nothing.n not in printed_values.csv"),
    ],
    ids=["no finding or reason", "unknown finding", "not printed"],
)
def test_a_reviewed_list_that_cannot_be_applied_is_refused_with_row_and_column(rows, says, tmp_path):
    from lms_assets.checks.printed_values import printed_values_table
    from lms_assets.records import errors, schemas, validation

    registry = validation.read_raw(SHIPPED_DATA / "printed_values.csv", schemas.REGISTRY)
    with pytest.raises(errors.RecordFileError, match="known_discrepancies.csv") as refused:
        printed_values_table(registry, _known(tmp_path, *rows))
    assert says in str(refused.value)


def test_the_published_cut_is_the_latest_data_cut_the_registry_names_and_printed_values_carries_it(tmp_path):
    import datetime as dt

    from lms_assets.checks.printed_values import printed_values_table
    from lms_assets.records import schemas, validation
    from lms_assets.tables.printed import published_cut

    dates = pl.DataFrame({"data_cut": [dt.date(2020, 1, 31), None, dt.date(2021, 6, 30), dt.date(2020, 7, 1)]})
    assert published_cut(dates) == dt.date(2021, 6, 30)
    assert published_cut(dates.filter(pl.col("data_cut").is_null())) is None
    assert published_cut(dates.clear()) is None

    raw = validation.read_raw(SHIPPED_DATA / "printed_values.csv", schemas.REGISTRY)
    printed_values = printed_values_table(raw, _known(tmp_path))
    # The shipped registry dates its survival values at the 2021-03-31 cut and leaves every other row undated.
    assert published_cut(printed_values) == dt.date(2021, 3, 31)
    assert printed_values["published_cut"].unique().to_list() == [dt.date(2021, 3, 31)]


@pytest.mark.parametrize(
    ("quantity", "printed", "decimals", "recomputed", "rounding", "flag"),
    [
        ("orr.pct", 15.8, 1, 100 * 3 / 19, "half-up / half-even at 1 dp", None),
        ("x.median", 2.3, 1, 2.25, "half-up at 1 dp", None),  # a tie: half-even would print 2.2
        ("x.median", 2.2, 1, 2.25, "half-even / truncation at 1 dp", "unusual: only half-even / truncation at 1 dp reproduces the printed 2.2"),
        ("x.pct", 15.7, 1, 100 * 3 / 19, "truncation at 1 dp", "unusual: only truncation at 1 dp reproduces the printed 15.7"),
        ("x.ci_lower", 0.0, 1, 0.0, "half-up / half-even / truncation at 0 dp, half-up / half-even / truncation at 1 dp", None),
        ("age.median", 53.0, 0, 52.0, "none", None),
        ("orr.n", 3.0, 0, 3.0, None, None),  # a count is not rounded
        ("orr.pct", 15.8, 1, None, None, None),  # nothing recomputed
    ],
)
def test_rounding_audit_names_the_rule_and_precision_that_reproduce_a_printed_estimate(quantity, printed, decimals, recomputed, rounding, flag):
    row = {"quantity": quantity, "value": printed, "decimals": decimals}
    assert rounding_audit(row, recomputed) == {"rounding": rounding, "rounding_flag": flag}


def test_every_shipped_printed_value_has_one_owner_and_its_check_is_named_in_the_check_module():
    """The owners' declared prefixes never overlap on a shipped quantity, and every check name built from a ``source``
    at load is spelled out in ``checks.printed_values``, so grep finds it in the code."""
    from lms_assets.records import schemas, validation

    registry = printed_values.typed_registry(validation.read_raw(SHIPPED_DATA / "printed_values.csv", schemas.REGISTRY))
    for quantity in registry["quantity"].to_list():
        owners = [o.table for o in printed_values.OWNERS if quantity.startswith(o.prefixes)]
        assert len(owners) <= 1, f"{quantity} is claimed by {owners}"
    names = {printed_values.check_name(s) for s in registry["source"].unique().to_list()}
    listed = set(re.findall(r"printed_[a-z0-9_]+", printed_values.__doc__ or ""))
    assert names <= listed, sorted(names - listed)
