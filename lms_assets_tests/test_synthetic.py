"""Synthetic studies: the generator's invariants, the full graph on a few thousand patients, and the benchmark's smoke run."""

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lms_assets import synthetic
from lms_assets.records import boundary, csv_text, schemas, validation

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study() -> synthetic.Study:
    return synthetic.generate(2000, seed=11, cuts=3)


def _cuts(study: synthetic.Study) -> list[pl.DataFrame]:
    return [frame for name, frame in sorted(study.files.items()) if name.startswith("followup/")]


def test_folder_has_the_record_files_and_no_registry(study, tmp_path):
    synthetic.write(study, tmp_path / "s")
    files = sorted(str(p.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("*.csv"))
    assert files == [
        "adverse_events.csv",
        "followup/2020-03-31.csv",
        "followup/2020-09-30.csv",
        "followup/2021-03-31.csv",
        "patient_allocations.csv",
        "patients.csv",
        "provenance.csv",
        "response.csv",
    ]
    assert not (tmp_path / "s" / schemas.REGISTRY.location).exists()


def test_every_row_passes_validation(study, tmp_path):
    """Nothing the generator writes would be quarantined: the CSVs read back and break no rule."""
    folder = tmp_path / "s"
    synthetic.write(study, folder)
    raw = {
        s.name: validation.read_raw(folder / s.location, s, label=s.location)
        for s in (schemas.PATIENTS, schemas.PATIENT_ALLOCATIONS, schemas.RESPONSE, schemas.ADVERSE_EVENTS, schemas.PROVENANCE)
    }
    raw["followup"] = pl.concat(validation.read_raw(p, schemas.FOLLOWUP, label=f"followup/{p.name}") for p in boundary.followup_files(folder))
    registry = pl.DataFrame(schema={**dict.fromkeys(schemas.REGISTRY.column_names, pl.String), validation.FILE: pl.String, validation.ROW: pl.Int64})
    quarantine = validation.quarantine_rows(
        raw["patients"],
        raw["allocations"],
        raw["response"],
        raw["followup"],
        raw["adverse_events"],
        registry,
        raw["provenance"],
        vocabulary=synthetic.SHIPPED.vocabulary,
    )
    assert quarantine.is_empty(), quarantine.head(5)
    assert raw["patients"].height == 2000 and raw["followup"].height == 3 * 2000


def test_baseline_distributions_are_plausible(study):
    patients, allocations = study.files["patients.csv"], study.files["patient_allocations.csv"]
    assert patients["patient_id"].to_list() == list(range(1, 2001))
    assert 0.68 < (patients["sex"] == "Female").mean() < 0.79  # Table 1: 73.7 %
    assert 45 <= patients["age"].median() <= 61 and patients["age"].min() >= 18 and patients["age"].max() <= 90
    assert set(patients["ecog"].unique()) <= {0, 1, 2, 3} and (patients["ecog"] >= 2).mean() > 0.3
    assert set(patients["combination_therapy"].unique()) == set(synthetic.COMBINATIONS)
    assert set(patients["chemotherapy_history"].unique()) == set(synthetic.CHEMOTHERAPY)
    uterus = allocations.join(patients, on="patient_id").filter(pl.col("primary_site") == "Uterus")
    assert uterus.height > 0 and (uterus["sex"] == "Female").all()
    assert set(allocations["starting_dose_mg"].unique()) == {10, 12}


def test_best_change_agrees_with_the_recorded_response(study):
    """RECIST 1.1 bands: CR −100 %, PR ≤ −30 %, SD between, PD ≥ +20 %."""
    response = study.files["response.csv"]
    band = response.group_by("best_response").agg(pl.col("best_pct_change").min().alias("lo"), pl.col("best_pct_change").max().alias("hi"))
    bands = {r["best_response"]: (r["lo"], r["hi"]) for r in band.iter_rows(named=True)}
    assert set(bands) == {"CR", "PR", "SD", "PD"}
    assert bands["CR"] == (-100.0, -100.0)
    assert bands["PR"][1] <= -30.0
    assert bands["SD"][0] > -30.0 and bands["SD"][1] < 20.0
    assert bands["PD"][0] >= 20.0
    immuno = response.join(study.files["patients.csv"], on="patient_id").with_columns(
        pl.col("combination_therapy").str.contains("Immunotherapy").alias("immuno")
    )
    pr_rate = immuno.group_by("immuno").agg((pl.col("best_response") == "PR").mean().alias("pr")).sort("immuno")["pr"].to_list()
    assert pr_rate[1] > pr_rate[0]


def test_followup_is_consistent_within_and_across_cuts(study):
    cuts = _cuts(study)
    for cut in cuts:
        assert (cut["pfs_months"] <= cut["os_months"]).all()
        assert cut.filter((pl.col("died") == 1) & (pl.col("progressed") == 0)).is_empty()  # death is a PFS event
        assert cut["patient_id"].to_list() == list(range(1, 2001))
    latest = cuts[-1]
    assert 0.2 < latest["died"].mean() < 0.95 and 0.5 < latest["progressed"].mean() < 1.0  # some censoring remains
    assert 2.0 < latest.filter(pl.col("progressed") == 1)["pfs_months"].median() < 8.0
    for before, after in itertools.pairwise(cuts):
        both = before.join(after, on="patient_id", suffix="_next")
        assert (both["pfs_months_next"] >= both["pfs_months"]).all() and (both["os_months_next"] >= both["os_months"]).all()
        died = both.filter(pl.col("died") == 1)
        assert (died["died_next"] == 1).all() and (died["os_months_next"] == died["os_months"]).all()
        progressed = both.filter(pl.col("progressed") == 1)
        assert (progressed["progressed_next"] == 1).all() and (progressed["pfs_months_next"] == progressed["pfs_months"]).all()
        assert (both["os_months_next"] > both["os_months"]).any()  # follow-up does extend


def test_adverse_events_follow_table_4(study):
    events = study.files["adverse_events.csv"]
    assert set(events["term"].unique()) == {t[0] for t in synthetic.AE_TERMS}
    assert 2.5 < events.height / 2000 < 3.5
    assert events["ctcae_grade"].is_between(1, 4).all() and (events["ctcae_grade"] <= 2).mean() > 0.8
    assert (events["ctcae_grade"] >= 3).any()
    runs = events.group_by("patient_id", "term").agg(pl.col("episode").sort().alias("episodes"), pl.len().alias("n"))
    assert (runs["n"] > 1).any()
    assert all(e == list(range(1, len(e) + 1)) for e in runs["episodes"].to_list())
    hfs = runs.filter(pl.col("term") == "Hand foot skin syndrome").height / 2000
    assert 0.32 < hfs < 0.42  # Table 4: 36.8 % of patients


def test_provenance_says_everything_is_synthetic(study):
    provenance = study.files["provenance.csv"]
    assert set(provenance["origin"]) == {"synthetic"}
    assert set(provenance["file"]) == {name for name in study.files if name != "provenance.csv"}
    assert provenance["location"].str.contains("--seed 11").all()


def test_deterministic_for_a_seed(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.csv"))}

    synthetic.main(["--patients", "300", "--seed", "5", "--out", str(tmp_path / "a")])
    synthetic.main(["--patients", "300", "--seed", "5", "--out", str(tmp_path / "b")])
    synthetic.main(["--patients", "300", "--seed", "6", "--out", str(tmp_path / "c")])
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["patients.csv"] != digest(tmp_path / "c")["patients.csv"]


def test_refuses_a_folder_that_already_holds_files(tmp_path):
    (tmp_path / "old.csv").write_text("x\n")
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.write(synthetic.generate(10, seed=1), tmp_path)


def test_line_numbers_without_quotes_match_the_csv_module():
    """The fast path for quote-free files (a million rows in milliseconds) numbers records exactly as csv parsing does."""
    import random

    rng = random.Random(0)
    pieces = ["7", "x", ",", " ", "\t", "\x0b", "\xa0", "ab"]
    for _ in range(3000):
        newline = rng.choice(["\n", "\r\n"])
        lines = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 8))]
        text = "a,b" + newline + newline.join(lines) + rng.choice(["", newline])
        assert csv_text.record_line_numbers(text).tolist() == csv_text._record_line_numbers_by_parsing(text).tolist(), repr(text)


@pytest.mark.parametrize("first", ["1", '"1"'], ids=["plain", "quoted"])
def test_blank_lines_are_skipped_and_keep_spreadsheet_line_numbers(tmp_path, first):
    path = tmp_path / "response.csv"
    path.write_text(f"patient_id,best_pct_change,best_response\n{first},-40.0,PR\n\n ,, \n2,5.0,SD\n")
    raw = validation.read_raw(path, schemas.RESPONSE)
    assert raw.select("patient_id", "_row").rows() == [("1", 2), ("2", 5)]


@pytest.mark.slow
def test_full_graph_on_a_synthetic_study(tmp_path):
    """Every asset materializes on 3 000 synthetic patients; nothing is quarantined; the paper's checks say there is nothing to compare."""
    from lms_assets.checks.printed_values import PRINTED_VALUE_SOURCES
    from lms_assets.definitions import build_defs

    folder = tmp_path / "study"
    synthetic.write(synthetic.generate(3000, seed=2, cuts=2), folder)
    warehouse = tmp_path / "warehouse" / "lms.duckdb"
    defs = build_defs(study_dir=folder, warehouse=warehouse, outputs=tmp_path / "outputs")
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, f"steps failed: {failed}"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.sql("select count(*) from quarantine").fetchone()[0] == 0
        assert con.sql("select count(*) from adsl").fetchone()[0] == 3000
        assert con.sql("select count(*) from adtte").fetchone()[0] == 3000 * 2 * 2
        assert con.sql("select count(*) from raw_printed_values").fetchone()[0] == 0
        for table in PRINTED_VALUE_SOURCES:
            assert con.sql(f"select count(*) from {table}").fetchone()[0] > 0, table

    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert PRINTED_VALUE_SOURCES, "no summary asset registers printed values"
    for table in PRINTED_VALUE_SOURCES:
        check = evaluations[(table, "printed_values")]
        assert check.passed and check.metadata["compared"].value == "0"
        assert "nothing to compare" in check.metadata["reason"].value
    assert evaluations[("quarantine", "no_quarantined_rows")].passed

    # Payloads stay bounded: no materialization carries more than a chart image and capped previews.
    for event in result.all_events:
        if event.is_step_materialization:
            metadata = event.step_materialization_data.materialization.metadata
            size = sum(len(str(v.value)) for v in metadata.values())
            assert size < 1_000_000, f"{event.step_key} metadata is {size} characters"


# ADSL, ADRS (which a check on ADSL reads) and ADTTE with everything upstream: the steps the smoke test looks
# for, without the summaries and charts.
SMOKE_SELECTION = "*adsl,*adrs,*adtte"


@pytest.mark.slow
def test_benchmark_smoke_run(tmp_path):
    """The benchmark runs end to end on a tiny synthetic study and writes its tables. Its graph run is the
    datasets' slice of the graph: the whole graph is timed by other tests, and here only the benchmark is checked."""
    options = ["--sizes", "40", "--seed", "3", "--select", SMOKE_SELECTION, "--workdir", str(tmp_path)]
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (results,) = tmp_path.glob("benchmark-*.json")
    report = json.loads(results.read_text())
    (row,) = report["rows"]
    assert row["patients"] == 40 and row["study"] == "synthetic 40" and row["select"] == SMOKE_SELECTION
    for run in ("graph", "trivial", "bare"):
        assert row[run]["returncode"] == 0 and row[run]["wall_s"] > 0 and row[run]["tree_rss_bytes"] > 10 * 1024**2
    assert set(row["graph"]["steps"]) == {"ingest", "adam"}  # the record ingest's step and the ADaM datasets' step
    assert "study_report" not in row["graph"]["steps"]  # the selection, not the whole graph, ran
    assert set(row["trivial"]["steps"]) == {"trivial"}
    assert row["bare"]["phases"]["compute_s"] > 0 and "adtte" in row["bare"]["steps"]
    assert report["machine"]["cores"]
    table = (tmp_path / results.name.replace(".json", ".md")).read_text()
    assert f"| synthetic 40 (--select {SMOKE_SELECTION}) | 40 |" in table and "graph/trivial" in table
    assert "synthetic 40: not judged, the graph run was the selection" in table
