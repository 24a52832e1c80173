"""Independent double programming: every compared statistic of our warehouse tables against R's ``survival``.

The R program (``lms_assets/audit/survival_check.R``) reads only the record files. Each study is materialized once
(in-process, only what ``r_verification`` needs), our tables are exported from the DuckDB warehouse,
R is run on the study folder, and ``lms_assets.audit.verification.compare`` (the asset's own rule) must find
every value in agreement to 1e-9, apart from the named exceptions in ``verification.EXCEPTIONS``.

Studies: the shipped one, two hand-built hard ones (ties of events, censorings tied with events, a curve and a
group reaching S = 0, plateaus at exactly 0.5, groups without events, single-patient groups, a curve ending on
its 0.5 plateau, landmark months that are event times) and one drawn by ``lms_assets.synthetic``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetCheckSeverity

from lms_assets import synthetic
from lms_assets.audit import verification
from lms_assets.defs.audit.verification import MAX_PATIENTS, R_INSTALL_HINT, REFERENCE_SCRIPT, agreement_result, run_reference, verify
from lms_assets_tests.conftest import SHIPPED_DATA, SHIPPED_RUN_GROUP

PATIENT_COLUMNS = ("patient_id", "age", "sex", "ecog", "surgery_history", "radiotherapy_history", "chemotherapy_history", "combination_therapy")
FOLLOWUP_COLUMNS = ("patient_id", "pfs_months", "progressed", "os_months", "died")

# Hard study 1, one cut. PFS: twelve progressions with ties, S = 6/12 = 0.5 from 4 to 6 (first crossing 4,
# midpoint 5), reaching 0 at a tied last time. OS: a death tied with a progression time, deaths tied with
# censorings at 6 and 9, S reaching 0 at 15; the combination group (1–4) has no death; one man.
TIES_AND_PLATEAUS = {
    "patients": [
        (1, 40, "Female", 0, "Yes", "No", "No", "Immunotherapy"),
        (2, 41, "Female", 1, "Yes", "Yes", "1 line", "Immunotherapy"),
        (3, 42, "Female", 0, "No", "No", "2 line", "Chemotherapy"),
        (4, 43, "Female", 2, "Yes", "No", "No", "Radiotherapy"),
        (5, 44, "Female", 0, "Yes", "Yes", "1 line", "None"),
        (6, 45, "Female", 1, "No", "Yes", "3 line and more", "None"),
        (7, 46, "Female", 2, "Yes", "No", "1 line", "None"),
        (8, 47, "Female", 0, "Yes", "No", "No", "None"),
        (9, 48, "Female", 1, "No", "No", "2 line", "None"),
        (10, 49, "Female", 3, "Yes", "Yes", "1 line", "None"),
        (11, 50, "Female", 0, "Yes", "No", "No", "None"),
        (12, 51, "Male", 1, "No", "Yes", "1 line", "None"),
    ],
    "cuts": {
        "2021-03-31": [
            (1, 1.0, 1, 5.0, 0),
            (2, 1.0, 1, 6.0, 0),
            (3, 2.0, 1, 6.0, 0),
            (4, 3.0, 1, 9.0, 0),
            (5, 3.0, 1, 3.0, 1),
            (6, 4.0, 1, 6.0, 1),
            (7, 6.0, 1, 6.0, 1),
            (8, 6.0, 1, 9.0, 1),
            (9, 7.0, 1, 12.0, 1),
            (10, 8.0, 1, 12.0, 1),
            (11, 9.0, 1, 15.0, 1),
            (12, 9.0, 1, 15.0, 1),
        ],
    },
}

# Hard study 2, two cuts. Men's OS at the later cut: S = 1/2 from 9 to their last time 12, so the curve ends on
# the plateau (R's midpoint 10.5); ECOG ≥ 2 reaches S = 0; no surgery (5–7) means no PFS event; one patient
# with prior radiotherapy; censorings at 0.5 and at landmark months 3 and 6; OS median not reached at the first cut.
EXTREMES = {
    "patients": [
        (1, 60, "Male", 0, "Yes", "No", "No", "None"),
        (2, 61, "Male", 0, "Yes", "No", "No", "None"),
        (3, 62, "Male", 1, "Yes", "Yes", "1 line", "None"),
        (4, 63, "Male", 1, "Yes", "No", "No", "Chemotherapy"),
        (5, 64, "Female", 2, "No", "No", "2 line", "None"),
        (6, 65, "Female", 2, "No", "No", "No", "Immunotherapy"),
        (7, 66, "Female", 0, "No", "No", "1 line", "None"),
        (8, 67, "Female", 1, "Yes", "No", "1 line", "Radiotherapy"),
        (9, 68, "Female", 3, "Yes", "No", "3 line and more", "None"),
        (10, 69, "Female", 0, "Yes", "No", "2 line", "None"),
    ],
    "cuts": {
        "2020-09-30": [
            (1, 3.0, 1, 3.0, 1),
            (2, 3.0, 1, 6.0, 0),
            (3, 6.0, 0, 6.0, 0),
            (4, 6.0, 1, 6.0, 0),
            (5, 1.5, 0, 1.5, 0),
            (6, 2.0, 0, 4.0, 0),
            (7, 0.5, 0, 6.0, 0),
            (8, 4.5, 1, 4.5, 1),
            (9, 1.0, 1, 2.0, 1),
            (10, 6.0, 1, 6.0, 0),
        ],
        "2021-03-31": [
            (1, 3.0, 1, 3.0, 1),
            (2, 3.0, 1, 9.0, 1),
            (3, 9.0, 1, 12.0, 0),
            (4, 6.0, 1, 12.0, 0),
            (5, 1.5, 0, 1.5, 0),
            (6, 2.0, 0, 10.0, 0),  # alive: a death would be a PFS event (data/README.md, progressed)
            (7, 0.5, 0, 12.0, 0),
            (8, 4.5, 1, 4.5, 1),
            (9, 1.0, 1, 2.0, 1),
            (10, 6.0, 1, 7.5, 1),
        ],
    },
}


def write_hard_study(folder: Path, design: dict, seed: int) -> Path:
    """A study folder from a hand-built design: its patients and follow-up cuts, the other record files drawn by
    ``lms_assets.synthetic`` for the same patient ids (they pass validation and exercise Tables 1, 2 and 4)."""
    n = len(design["patients"])
    drawn = synthetic.generate(n, seed, cuts=1).files
    (folder / "followup").mkdir(parents=True)
    files = {
        "patients.csv": pl.DataFrame(design["patients"], schema=list(PATIENT_COLUMNS), orient="row"),
        "patient_allocations.csv": drawn["patient_allocations.csv"],
        "response.csv": drawn["response.csv"],
        "adverse_events.csv": drawn["adverse_events.csv"],
        **{f"followup/{cut}.csv": pl.DataFrame(rows, schema=list(FOLLOWUP_COLUMNS), orient="row") for cut, rows in design["cuts"].items()},
    }
    files["provenance.csv"] = pl.DataFrame(
        {
            "file": list(files),
            "column": ["*"] * len(files),
            "patient_ids": ["all"] * len(files),
            "origin": ["synthetic"] * len(files),
            "location": [f"lms_assets_tests/audit/test_verification.py hard study (seed {seed})"] * len(files),
            "constraint": ["hand-built edge cases for the R cross-check; not real patients"] * len(files),
        }
    )
    for relative, frame in files.items():
        frame.write_csv(folder / relative)
    (folder / "study.toml").write_text(synthetic.study_toml(n, seed))
    return folder


def _build_study(name: str, folder: Path) -> Path:
    if name == "ties_and_plateaus":
        return write_hard_study(folder, TIES_AND_PLATEAUS, seed=3)
    if name == "extremes":
        return write_hard_study(folder, EXTREMES, seed=4)
    if name == "synthetic_40":
        synthetic.write(synthetic.generate(40, seed=3, cuts=3), folder)
        return folder
    synthetic.write(synthetic.generate(60, seed=11, cuts=2), folder)
    return folder


# synthetic_40 (the benchmark's smoke study) has a plateau at exactly S = 0.5 running to the last observation,
# which quantile.survfit reads as never reaching 0.5 unless S is rounded first (survival_check.R, midpoint_median).
STUDIES = ("shipped", "ties_and_plateaus", "extremes", "synthetic_60", "synthetic_40")


def rscript_or_fail() -> str:
    """Rscript's path. R is part of the platform (`make run` and `make test` install it): a missing R fails, saying how to install it."""
    found = shutil.which("Rscript")
    if found is None:
        pytest.fail("Rscript not found: install R with survival (apt-get install r-base-core r-cran-survival), or run `make test`, which installs it")
    return found


def _warehouse_tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {name: pl.from_arrow(con.sql(f"select * from main.{name}").to_arrow_table()) for name in (*verification.TABLES, "r_verification")}


# The shipped study's tables come from the session's whole-graph run, on the xdist worker that holds it.
pytestmark = pytest.mark.xdist_group(SHIPPED_RUN_GROUP)


@pytest.fixture(scope="module", params=STUDIES)
def verified(request, tmp_path_factory):
    """One study materialized up to ``r_verification``; its warehouse tables and the study folder."""
    from dagster import AssetSelection

    from lms_assets.definitions import build_defs

    rscript_or_fail()
    if request.param == "shipped":
        shipped = request.getfixturevalue("shipped_run")  # everything, a superset of what the check needs
        assert shipped["result"].success, "shipped: materialization failed"
        return {"name": "shipped", "study": shipped["data"], "tables": _warehouse_tables(shipped["warehouse"])}
    root = tmp_path_factory.mktemp(request.param)
    study = _build_study(request.param, root / "study")
    warehouse = root / "warehouse" / "lms.duckdb"
    # The whole definitions, so the summaries come with their printed-value checks, as in the UI.
    defs = build_defs(study_dir=study, warehouse=warehouse, outputs=root / "outputs")
    selection = AssetSelection.assets("r_verification").upstream().resolve(defs.resolve_asset_graph())
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=list(selection), raise_on_error=False)
    assert result.success, f"{request.param}: materialization failed"
    return {"name": request.param, "study": study, "tables": _warehouse_tables(warehouse)}


@pytest.mark.slow
def test_every_value_agrees_with_r(verified):
    """Our tables exported from the warehouse, R run here on the study folder: every value agrees, none is one-sided."""
    tables = verified["tables"]
    table = verify({name: tables[name] for name in verification.TABLES}, verified["study"], rscript_or_fail())
    problems = table.filter(pl.col("status") != verification.AGREE)
    shown = problems.select("table", "data_cut", "endpoint", "key", "time", "statistic", "ours", "r", "status")
    assert problems.is_empty(), f"{verified['name']}: {problems.height} values do not agree with R:\n{shown.head(20).to_pandas().to_string()}"
    # Every compared table and statistic takes part, so a silent gap in R's coverage cannot pass.
    assert set(table["table"]) == set(verification.TABLES)
    assert table.height == verification.long_form({name: tables[name] for name in verification.TABLES}).height
    summary = verification.verification_summary(table)
    assert summary["status"] == "reproduced" and summary["agreed"] == summary["comparisons"] == table.height
    assert summary["reference"].startswith("R 4.") and "survival 3." in summary["reference"]


@pytest.mark.slow
def test_the_asset_records_the_same_comparison(verified):
    """The stored ``r_verification`` is the comparison this test makes: one rule for both."""
    stored = verified["tables"]["r_verification"]
    recomputed = verify({name: verified["tables"][name] for name in verification.TABLES}, verified["study"], rscript_or_fail())
    assert stored.equals(recomputed)


def _value(tables: dict, table: str, **where) -> object:
    frame = tables[table]
    statistic = where.pop("statistic")
    for column, wanted in where.items():
        frame = frame.filter(pl.col(column).cast(pl.String) == str(wanted))
    return frame[statistic].item()


@pytest.mark.slow
def test_the_hard_studies_are_hard_and_r_sees_the_same(verified):
    """The edge cases are really in the data, and each comes out as R gives it (agreement is asserted above)."""
    tables, name = verified["tables"], verified["name"]
    curves = tables["survival_curves"]
    if name == "shipped":
        # The defect R found: the OS Brookmeyer–Crowley upper bound is not reached (R: NA), not 28.0.
        row = tables["survival_summary"].filter((pl.col("endpoint") == "OS") & (pl.col("method") == "brookmeyer_crowley_loglog"))
        assert row["ci_lower"].item() == 6.9 and row["ci_upper"].item() is None and "not reached" in row["note"].item()
        return
    if name == "synthetic_60":
        assert (curves["events"] >= 2).any() and ((curves["events"] > 0) & (curves["censored"] > 0)).any()
        return
    if name == "synthetic_40":
        subgroups = tables["survival_subgroups"]
        # Extremities, OS at 2020-09-30: 7 of 14 die by 10.4, the rest censored up to 32.4.
        assert subgroups.filter((pl.col("factor") == "Primary site") & ((pl.col("median_midpoint") - 21.4).abs() < 1e-9)).height
        return
    assert (curves["events"] >= 2).any(), "tied event times"
    assert ((curves["events"] > 0) & (curves["censored"] > 0)).any(), "censorings tied with events"
    assert (curves["surv"] == 0).any() and curves.filter(pl.col("surv") == 0)["ci_upper"].is_null().all(), "S reaches 0, band null"
    subgroups = tables["survival_subgroups"]
    if name == "ties_and_plateaus":
        pfs = tables["survival_summary"].filter((pl.col("endpoint") == "PFS") & (pl.col("method") == "spss"))
        assert (pfs["median"].item(), pfs["median_midpoint"].item()) == (4.0, 5.0), "plateau at exactly 0.5"
        combination = subgroups.filter((pl.col("endpoint") == "OS") & (pl.col("factor") == "Combination therapy"))
        assert combination["events"].item() == 0 and combination["hr"].item() is None and combination["logrank_p"].item() is not None
        sex = subgroups.filter((pl.col("endpoint") == "OS") & (pl.col("factor") == "Sex"))
        assert sex["n"].item() == 1 and sex["hr"].item() is not None, "single-patient group with a finite HR"
    else:
        men = subgroups.filter((pl.col("data_cut") == pl.date(2021, 3, 31)) & (pl.col("endpoint") == "OS") & (pl.col("factor") == "Sex"))
        assert (men["median"].item(), men["median_midpoint"].item()) == (9.0, 10.5), "a curve ending on its 0.5 plateau"
        surgery = subgroups.filter((pl.col("endpoint") == "PFS") & (pl.col("factor") == "Prior surgery"))
        assert (surgery["events_ref"] == 0).all() and surgery["hr"].is_null().all(), "a level without events"
        radiotherapy = subgroups.filter(pl.col("factor") == "Prior radiotherapy")
        assert (radiotherapy["n"] == 1).all(), "single-patient group"
        first_os = tables["survival_summary"].filter((pl.col("data_cut") == pl.date(2020, 9, 30)) & (pl.col("endpoint") == "OS"))
        assert first_os["median"].is_null().all(), "median not reached"


# --- the comparison rule itself (no R, no Dagster) ---------------------------------------------------------


def _long(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=verification.LONG_SCHEMA, orient="row")


def test_compare_flags_a_difference_beyond_the_tolerance_and_one_sided_values():
    ours = _long(
        [
            ("survival_summary", "2021-03-31", "OS", "spss", None, "median", 23.5),
            ("survival_summary", "2021-03-31", "OS", "spss", None, "se", 5.7171768479828531),
            ("survival_summary", "2021-03-31", "OS", "brookmeyer_crowley_loglog", None, "ci_upper", 28.0),
            ("survival_curves", "2021-03-31", "OS", "", 3.9, "surv", None),
            ("survival_curves", "2021-03-31", "OS", "", 4.1, "surv", 0.9),
        ]
    )
    r = _long(
        [
            ("survival_summary", "2021-03-31", "OS", "spss", None, "median", 23.5 + 1e-12),
            ("survival_summary", "2021-03-31", "OS", "spss", None, "se", 5.7171768479828531 + 1e-7),
            ("survival_summary", "2021-03-31", "OS", "brookmeyer_crowley_loglog", None, "ci_upper", None),
            ("survival_curves", "2021-03-31", "OS", "", 3.9, "surv", None),
            ("survival_curves", "2021-03-31", "OS", "", 4.2, "surv", 0.9),
        ]
    )
    table = verification.compare(ours, r, "R test")
    status = {(row["statistic"], row["key"], row["time"]): row["status"] for row in table.iter_rows(named=True)}
    assert status[("median", "spss", None)] == "agree"
    assert status[("se", "spss", None)] == "disagree"
    assert status[("ci_upper", "brookmeyer_crowley_loglog", None)] == "disagree"  # 28.0 against R's NA
    assert status[("surv", "", 3.9)] == "agree"  # both not estimable
    assert status[("surv", "", 4.1)] == "missing_in_r" and status[("surv", "", 4.2)] == "missing_in_ours"
    assert table.filter(pl.col("statistic") == "median")["exception"].item() == "plateau_median_first_crossing"
    summary = verification.verification_summary(table)
    assert (summary["status"], summary["comparisons"], summary["agreed"], summary["disagreed"], summary["missing"]) == ("disagreements", 6, 2, 2, 2)
    assert "plateau_median_first_crossing" in summary["markdown"]


def test_compare_refuses_a_repeated_key():
    row = ("survival_curves", "2021-03-31", "OS", "", 3.9, "surv", 1.0)
    with pytest.raises(ValueError, match="repeated key"):
        verification.compare(_long([row, row]), _long([row]), "R test")


def test_every_exception_is_named_with_a_reason_and_applies_to_compared_statistics():
    compared = {c.table: set(c.statistics) for c in verification.COMPARED}
    for exception in verification.EXCEPTIONS:
        assert exception.name and len(exception.reason) > 40
        for table in exception.tables:
            assert compared[table] & set(exception.statistics), f"{exception.name} names nothing compared in {table}"


ONE_PATIENT_TABLE_1 = {"baseline_summary": pl.DataFrame({"key": ["patients"], "n": [1]})}


def test_without_rscript_the_record_says_not_run_never_a_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Rscript on it
    table = verify(ONE_PATIENT_TABLE_1, tmp_path)
    summary = verification.verification_summary(table)
    assert table["status"].to_list() == ["not_run"]
    assert summary["status"] == f"not run: Rscript not found; {R_INSTALL_HINT}" and summary["agreed"] == summary["comparisons"] == 0
    assert "not run: Rscript not found" in summary["markdown"]


def test_without_rscript_agrees_with_r_fails_with_error_saying_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = agreement_result(verify(ONE_PATIENT_TABLE_1, tmp_path))
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert "Rscript not found" in result.description
    assert "apt-get install r-base-core r-cran-survival" in result.description and "make test" in result.description
    assert "independent_verification = false" in result.description


def test_a_study_declaring_no_r_passes_saying_it_was_not_independently_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    table = verify(ONE_PATIENT_TABLE_1, tmp_path, independent=False)
    result = agreement_result(table, independent=False)
    assert result.passed and result.description.startswith("not independently verified")
    assert result.metadata["independently_verified"].value is False
    assert verification.verification_summary(table)["status"].startswith("not run: not independently verified")


def test_independent_verification_is_a_validated_study_setting(tmp_path):
    from lms_assets.records.study import load_study
    from lms_assets.records.validation import RecordFileError

    shutil.copy(SHIPPED_DATA / "study.toml", tmp_path / "study.toml")
    assert load_study(tmp_path).independent_verification is True
    text = (tmp_path / "study.toml").read_text()
    (tmp_path / "study.toml").write_text(text.replace("independent_verification = true", "independent_verification = false"))
    assert load_study(tmp_path).independent_verification is False
    (tmp_path / "study.toml").write_text(text.replace("independent_verification = true", 'independent_verification = "no"'))
    with pytest.raises(RecordFileError, match="independent_verification must be true or false"):
        load_study(tmp_path)


def test_a_study_beyond_the_cox_limit_is_not_run_rather_than_half_compared(tmp_path):
    too_many = {"baseline_summary": pl.DataFrame({"key": ["patients"], "n": [MAX_PATIENTS + 1]})}
    summary = verification.verification_summary(verify(too_many, tmp_path))
    assert summary["status"].startswith("not run:") and f"{MAX_PATIENTS + 1:,} patients" in summary["status"]


def test_the_reference_script_fails_loudly_on_a_folder_without_records(tmp_path):
    rscript = rscript_or_fail()
    # A study (its study.toml names the comparisons R is given) whose record files are missing.
    shutil.copyfile(SHIPPED_DATA / "study.toml", tmp_path / "study.toml")
    run = run_reference(tmp_path, rscript)
    assert run.results is None and "patients.csv: file not found" in run.reference
    assert REFERENCE_SCRIPT.is_file()
    # A failing R run fails the check, with R's message, rather than crashing the step.
    result = agreement_result(verify(ONE_PATIENT_TABLE_1, tmp_path, rscript))
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR and "patients.csv: file not found" in result.description


def test_a_hanging_r_run_fails_the_check_instead_of_the_step(tmp_path, monkeypatch):
    from lms_assets.defs.audit import verification as verification_defs

    hanging = tmp_path / "Rscript"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")  # exec: the process killed at the timeout is the sleep itself
    hanging.chmod(0o755)
    monkeypatch.setattr(verification_defs, "TIMEOUT_SECONDS", 0.2)
    study = tmp_path / "study"
    study.mkdir()
    shutil.copyfile(SHIPPED_DATA / "study.toml", study / "study.toml")
    result = agreement_result(verify(ONE_PATIENT_TABLE_1, study, str(hanging)))
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert "was stopped after 0.2 s" in result.description


# --- the QC record in the study report -------------------------------------------------------------------------


def _recorded(statuses: list[str]) -> pl.DataFrame:
    ours = _long([("survival_curves", "2021-03-31", "OS", "", float(i), "surv", 0.5) for i in range(len(statuses))])
    r = _long([("survival_curves", "2021-03-31", "OS", "", float(i), "surv", 0.5 if s == "agree" else 0.6) for i, s in enumerate(statuses)])
    return verification.compare(ours, r, "R 4.2.2, survival 3.5.3")


def test_report_verification_section_names_versions_counts_and_every_exception():
    from lms_assets.report import page as report_page

    html = report_page.verification_html(_recorded(["agree", "agree", "agree"]))
    assert "3 of 3</strong> values agree" in html and "R 4.2.2, survival 3.5.3" in html
    assert "Figure 1A/B" in html and "survival_curves" in html
    for exception in verification.EXCEPTIONS:
        assert exception.name in html
    assert "do not agree" not in html


def test_report_verification_section_lists_disagreements_and_says_when_r_did_not_run():
    from lms_assets.report import page as report_page

    html = report_page.verification_html(_recorded(["agree", "disagree"]))
    assert "1 of 2</strong> values agree" in html and "1 values that do not agree with R" in html and "0.6" in html
    not_run = report_page.verification_html(verification.not_run("Rscript not found"))
    assert "not run: Rscript not found" in not_run and "nothing here is independently verified" in not_run
    assert "not part of this report" in report_page.verification_html(None)
