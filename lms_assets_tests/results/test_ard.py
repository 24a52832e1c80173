"""The analysis results dataset: one row per statistic on the cards columns, every printed value one row, exported per
cut as CSV and Parquet that R reads; and what changed from one cut to the next. Read from the session's whole-graph
run of the shipped study (``shipped_run``), a later cut from the pure functions on the shipped records."""

import datetime as dt
import subprocess

import duckdb
import polars as pl
import pytest

from lms_assets.defs.results import PRINTED_IN_RESULTS, per_cut
from lms_assets.results import ard, changes, export
from lms_assets_tests.audit.test_verification import rscript_or_fail
from lms_assets_tests.defs import test_fault_injection
from lms_assets_tests.defs.test_fault_injection import results_of, with_a_later_cut

# test_fault_injection's module fixture ``records`` (the shipped study's typed records), for the pure tests here.
shipped_records = test_fault_injection.records
CUT = dt.date(2021, 3, 31)
# The one printed value no table computes (the Discussion's distant metastases: the records hold no metastasis sites).
NOT_COMPUTED = {"metastasis.distant.pct"}


def _table(shipped_run: dict, name: str) -> pl.DataFrame:
    with duckdb.connect(str(shipped_run["warehouse"]), read_only=True) as con:
        return pl.from_arrow(con.sql(f"select * from main.{name}").to_arrow_table())


@pytest.fixture
def results(shipped_run) -> pl.DataFrame:
    return _table(shipped_run, "analysis_results")


def test_cards_fields_of_registry_quantities():
    assert ard.cards_fields("ae.hypertension.g34.pct") == {
        "group1": "ATOXGRGP",
        "group1_level": "Grade 3/4",
        "variable": "AEDECOD",
        "variable_level": "hypertension",
        "stat_name": "pct",
        "stat_label": "%",
    }
    assert ard.cards_fields("pfs.median") == {
        "group1": "PARAMCD",
        "group1_level": "PFS",
        "variable": "AVAL",
        "variable_level": None,
        "stat_name": "median",
        "stat_label": "Median",
    }
    subgroups = ard.cards_fields("subgroups.os.significant.n")
    assert (subgroups["group1_level"], subgroups["variable_level"], subgroups["stat_label"]) == ("OS", "significant", "Comparisons with p < 0.05")
    assert ard.cards_fields("pr_rate.monotherapy.pct")["group1_level"] == "N"


def test_every_printed_value_is_one_row_with_the_value_its_check_compared(shipped_run, results):
    check = next(e for e in shipped_run["result"].get_asset_check_evaluations() if e.check_name == PRINTED_IN_RESULTS)
    assert check.passed
    registry = _table(shipped_run, "printed_values")
    assert check.metadata["printed values in the ARD"].value == f"{registry.height - 1} of {registry.height}"
    at_cut = results.filter(pl.col("data_cut") == CUT)
    counts = dict(at_cut.group_by("quantity").len().iter_rows())
    assert {q for q in registry["quantity"].unique() if counts.get(q) != 1} == NOT_COMPUTED
    # The paper's headline numbers, as the ARD holds them.
    stat = dict(at_cut.filter(pl.col("quantity").is_not_null()).select("quantity", "stat").iter_rows())
    assert (round(stat["pfs.median"], 1), round(stat["os.median"], 1), stat["patients.n"], stat["orr.n"]) == (4.1, 23.5, 19, 3)


def test_one_row_per_statistic_on_the_cards_columns(results):
    assert results.schema == ard.ARD_SCHEMA
    assert results.group_by(list(ard.KEY)).len()["len"].max() == 1
    assert set(results["analysis"]) == {
        "baseline_summary",
        "response_summary",
        "tumour_shrinkage",
        "ae_summary",
        "survival_summary",
        "survival_followup",
        "survival_subgroups",
        "survival_landmarks",
    }
    # Statistics the paper never prints are there too, with no registry quantity: R's interval and the subgroup tests.
    unprinted = results.filter(pl.col("quantity").is_null())
    bc = unprinted.filter(
        (pl.col("analysis") == "survival_summary") & pl.col("method").str.contains("Brookmeyer") & (pl.col("group1_level") == "PFS")
    )
    assert set(bc["stat_name"]) >= {"median", "ci_lower", "ci_upper"}
    assert unprinted.filter(pl.col("stat_name") == "logrank_p").height == 2 * 7
    assert (results["n"] == results["patients"].list.len()).all()


def test_reconstruction_is_said_on_every_row_resting_on_it(results):
    basis = dict(results.filter(pl.col("quantity").is_not_null()).select("quantity", "basis").iter_rows())
    assert basis["os.median"] == basis["site.retroperitoneal.n"] == basis["ae.any_g34.n"] == "reconstructed_inputs"
    assert basis["pfs.median"] == basis["age.median"] == basis["orr.n"] == "published_patient_data"
    unprinted = results.filter(pl.col("quantity").is_null())
    by_analysis = unprinted.group_by("analysis", "group1_level").agg(pl.col("basis").unique().sort()).sort("analysis", "group1_level").rows()
    survival_bases = {(a, g): b for a, g, b in by_analysis if a.startswith("survival_")}
    reconstructed, published = ["reconstructed_inputs"], ["published_patient_data"]
    assert survival_bases == {
        ("survival_followup", "OS"): reconstructed,
        ("survival_followup", "PFS"): published,
        ("survival_landmarks", "OS"): reconstructed,
        ("survival_landmarks", "PFS"): published,
        # The subgroup comparisons rest on the primary-site allocation too, as the Discussion's claim does.
        ("survival_subgroups", "OS"): reconstructed,
        ("survival_subgroups", "PFS"): reconstructed,
        # OS events rest on the transcribed deaths only; every other OS estimate on the last-contact times too.
        ("survival_summary", "OS"): published + reconstructed,
        ("survival_summary", "PFS"): published,
    }


def test_source_rows_are_the_record_lines_of_the_patients_counted(shipped_run, results):
    by_quantity = {r["quantity"]: r for r in results.filter(pl.col("quantity").is_not_null()).iter_rows(named=True)}
    adtte = _table(shipped_run, "adtte").filter((pl.col("PARAMCD") == "PFS") & (pl.col("DCUTDT") == CUT))
    pfs = by_quantity["pfs.median"]
    assert (pfs["n"], pfs["source_file"], pfs["source_rows"]) == (19, "followup/2021-03-31.csv", sorted(adtte["SRCROW"].to_list()))
    male = by_quantity["sex.male.n"]
    patients = _table(shipped_run, "raw_patients").filter(pl.col("sex") == "Male")
    assert (male["source_file"], male["source_rows"]) == ("patients.csv", sorted(patients["_row"].to_list()))
    assert by_quantity["site.lung.n"]["source_file"] == "patient_allocations.csv"
    hypertension = by_quantity["ae.hypertension.g34.n"]
    adae = _table(shipped_run, "adae").filter((pl.col("AEDECOD") == "Hypertension") & pl.col("SUBJID").is_in(hypertension["patients"]))
    assert (hypertension["source_file"], hypertension["source_rows"]) == ("adverse_events.csv", sorted(adae["SRCROW"].to_list()))


def test_exported_per_cut_with_a_column_dictionary(shipped_run, results):
    files = {kind: shipped_run["outputs"] / path for kind, path in export.files(CUT).items()}
    assert pl.read_parquet(files["parquet"]).equals(results.filter(pl.col("data_cut") == CUT))
    csv = pl.read_csv(files["csv"], infer_schema=False)
    assert csv.columns == list(ard.ARD_SCHEMA) and csv.height == results.height
    assert csv.filter(pl.col("quantity") == "sex.male.n")["patients"].item() == " ".join(
        map(str, results.filter(pl.col("quantity") == "sex.male.n")["patients"].item())
    )
    dictionary = pl.read_csv(files["columns"])
    assert dictionary["column"].to_list() == list(ard.ARD_SCHEMA) and dictionary["description"].str.len_chars().min() > 10
    assert not list(files["csv"].parent.glob(".*.tmp"))


def test_the_asset_page_links_the_files_and_shows_the_printed_value_rows(shipped_run):
    metadata = next(iter(shipped_run["result"].asset_materializations_for_node("analysis_results"))).metadata
    for kind in ("csv", "parquet", "columns"):
        assert metadata[f"{kind} {CUT}"].value.endswith(export.files(CUT)[kind].as_posix())
    rows = {r.data["quantity"]: r.data for r in metadata["printed value rows"].records}
    registry = _table(shipped_run, "printed_values")
    assert set(rows) == set(registry["quantity"]) - NOT_COMPUTED
    assert (rows["pfs.median"]["stat"], rows["pfs.median"]["basis"], rows["os.median"]["basis"]) == ("4.10", "Table 3", "reconstructed")


def test_r_reads_the_csv_and_finds_the_printed_median_pfs(shipped_run):
    path = shipped_run["outputs"] / export.files(CUT)["csv"]
    program = (
        "ard <- read.csv(commandArgs(TRUE)[1]);"
        'row <- ard[ard$quantity == "pfs.median" & ard$data_cut == "2021-03-31", ];'
        'cat(nrow(row), row$group1_level, row$stat_name, formatC(row$stat, format = "f", digits = 1), row$n, "\\n")'
    )
    out = subprocess.run([rscript_or_fail(), "-e", program, str(path)], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["1", "PFS", "median", "4.1", "19"]


def test_a_failed_check_keeps_the_published_ard_and_its_files(shipped_run, platform_env, monkeypatch):
    from dagster import AssetSelection

    from lms_assets_tests.conftest import run_selection, start_from_shipped_run
    from lms_assets_tests.defs.test_fault_injection import percent_as_proportion

    start_from_shipped_run(shipped_run, platform_env)
    files = {kind: platform_env["outputs"] / path for kind, path in export.files(CUT).items()}
    before = {kind: path.read_bytes() for kind, path in files.items()}
    percent_as_proportion(monkeypatch, {})
    result = run_selection(AssetSelection.assets("analysis_results"), platform_env)
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == PRINTED_IN_RESULTS)
    assert not check.passed and check.severity.value == "ERROR"
    assert {kind: path.read_bytes() for kind, path in files.items()} == before
    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
        published = pl.from_arrow(con.sql("select * from main.analysis_results").to_arrow_table())
        staged = pl.from_arrow(con.sql("select stat from staging.analysis_results where quantity = 'orr.pct'").to_arrow_table())
    assert published.equals(_table(shipped_run, "analysis_results"))
    assert staged["stat"].to_list() == pytest.approx([3 / 19])


def test_one_cut_has_no_changes(shipped_run):
    assert _table(shipped_run, "cut_changes").is_empty()
    metadata = next(iter(shipped_run["result"].asset_materializations_for_node("cut_changes"))).metadata
    assert metadata["by cut"].value == "one data cut: nothing to compare"


def test_a_later_cut_names_the_two_new_deaths_the_os_median_move_and_the_verdicts_it_changes(shipped_records):
    later = with_a_later_cut(shipped_records)
    results, tables = results_of(later)
    table = changes.cut_changes(results, tables["adtte"], later["printed_values"])
    assert set(table["later_cut"]) == {dt.date(2022, 3, 31)}
    of = {kind: table.filter(pl.col("kind") == kind) for kind in changes.KINDS}
    (forecast,) = of[changes.FORECAST].iter_rows(named=True)
    assert (forecast["earlier_value"], round(forecast["later_value"], 1), forecast["change"]) == (
        23.5,
        25.7,
        "rose, against the Discussion's forecast",
    )
    assert forecast["basis"] == "reconstructed_inputs"
    events = of[changes.PATIENT].filter(pl.col("change").str.starts_with("new event"))
    assert events.select("item", "change").rows() == [("patient 1 OS", "new event: death"), ("patient 2 OS", "new event: death")]
    longer = of[changes.PATIENT].filter(pl.col("change") == "longer follow-up, still censored")
    assert sorted(longer["SUBJID"]) == [5, 6, 8, 10, 16]
    verdicts = dict(of[changes.PRINTED].select(pl.col("item").str.extract(r"^([^:]+)"), "change").iter_rows())
    assert verdicts["T2.os.median"] == verdicts["EFF.os.events"] == "agrees → differs"
    assert not any(key.startswith(("T2.pfs", "T1.", "T4.")) for key in verdicts)
    # Statistics that do not depend on follow-up never move; the OS median does, with its interval.
    moved = of[changes.STATISTIC]["item"]
    assert not moved.str.starts_with("baseline_summary").any() and not moved.str.starts_with("ae_summary").any()
    spss_os = moved.filter(moved.str.starts_with("survival_summary: PARAMCD = OS, AVAL") & moved.str.contains("SPSS"))
    assert {item.split(", ")[2].split(" (")[0] for item in spss_os} >= {"Median", "95% CI lower limit", "95% CI upper limit", "Events"}
    summary = per_cut(table).row(0, named=True)
    assert summary["new events"] == "2: patient 1 OS, patient 2 OS" and summary["longer follow-up"] == "5 patient(s)"
    assert summary["printed values changed verdict"].startswith("9: ABS.os.median, ")


def test_long_patient_lists_are_cut_to_the_first_ones_and_n_counts_them_all(shipped_records, monkeypatch):
    monkeypatch.setattr(ard, "MAX_LISTED", 5)
    results, _ = results_of(shipped_records)
    pfs = results.filter(pl.col("quantity") == "pfs.median").row(0, named=True)
    assert (pfs["n"], pfs["patients"], len(pfs["source_rows"])) == (19, [1, 2, 3, 4, 5], 5)
    assert results["patients"].list.len().max() == results["source_rows"].list.len().max() == 5


def test_the_column_dictionary_says_how_many_patients_are_listed():
    assert f"first {ard.MAX_LISTED}" in export.columns().filter(pl.col("column") == "patients")["description"].item()
