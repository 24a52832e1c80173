"""A second study of another shape runs end to end with no code of its own: ``LMS_DATA_DIR=<it> make materialize``.

``studies/second/`` is an invented study (its README.md and study.toml say where every value comes from): 31
patients, its own adverse-event vocabulary, primary sites and subgroups, two data cuts, and a registry of its own
with one deliberate misprint, ``MISPRINT``. The misprint is recorded here, not in the folder's
known_discrepancies.csv: the first run must flag it as the shipped pipeline flags any unreviewed difference (the
blocking check fails and its table is held back); the test then reviews it, as a study team would, and the
second run publishes the report with the value marked as a discrepancy.
"""

import csv
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetCheckSeverity, AssetSelection, DagsterEvent, DagsterInstance, DagsterRunStatus

from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.defs.report import REPORT_FILE
from lms_assets.records.study import load_study
from lms_assets.tables import toxicity
from lms_assets_tests.conftest import REPO, defs_for, run_selection
from lms_assets_tests.records.test_validation import failure_first_lines

# Two whole-graph runs.
pytestmark = pytest.mark.slow

SECOND = Path(__file__).resolve().parent / "studies" / "second"
# The deliberate misprint: Table C prints 11 patients with neutropenia; the records have 9.
MISPRINT = "TC.ae.neutropenia.any.n"
MISPRINT_CHECK = "printed_table_c"
# Words of the shipped study and its paper that nothing made from this study may contain.
FOREIGN = ("leiomyosarcoma", "anlotinib", "zou", "lms-anlotinib", "zou-lms")
EMBEDDED = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def review_misprint(study: Path) -> None:
    """Review ``MISPRINT`` in ``study``'s known_discrepancies.csv, as a study team would: it then warns, not blocks."""
    with (study / "known_discrepancies.csv").open("a", newline="") as file:
        csv.writer(file).writerow([MISPRINT, "9.0", "", "deliberate misprint of the invented second study", "test_second_study", "2026-12-07"])


@dataclass(frozen=True)
class StoredRun:
    """The run `make materialize` made, read back from its instance as an in-process run's result gives it."""

    success: bool
    all_events: list[DagsterEvent]

    def get_asset_check_evaluations(self) -> list:
        return [e.event_specific_data for e in self.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]

    def get_asset_materialization_events(self) -> list[DagsterEvent]:
        return [e for e in self.all_events if e.is_step_materialization]


def make_materialize(paths: dict[str, Path], home: Path) -> StoredRun:
    """`make materialize` as README gives it, with the study folder, warehouse and outputs of ``paths`` (make creates
    the instance in ``home``); the run it made."""
    env = {**os.environ, "LMS_DATA_DIR": str(paths["data"]), "LMS_DUCKDB_PATH": str(paths["warehouse"]), "LMS_OUTPUT_DIR": str(paths["outputs"])}
    subprocess.run(["make", "materialize", f"DAGSTER_HOME={home}"], cwd=REPO, env=env, capture_output=True, check=False)
    with DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_run_records()
        events = [entry.dagster_event for entry in instance.all_logs(record.dagster_run.run_id) if entry.dagster_event]
        return StoredRun(record.dagster_run.status == DagsterRunStatus.SUCCESS, events)


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> dict:
    """The second study materialized on a copy by `make materialize` (the whole graph), then again downstream of the
    misprinted table once the test has reviewed the misprint in the copy's known_discrepancies.csv: what the held-back
    table kept from being made. Keys: ``first``, ``second`` (the runs), ``data``, ``warehouse``, ``outputs``."""
    root = tmp_path_factory.mktemp("second_study")
    study = root / "study"
    shutil.copytree(SECOND, study, ignore=shutil.ignore_patterns("README.md"))
    paths = {"data": study, "warehouse": root / "warehouse" / "lms.duckdb", "outputs": root / "outputs"}
    first = make_materialize(paths, root / "dagster_home")
    review_misprint(study)
    # What the held-back table kept from being made (itself, and every step after the one that failed), with the
    # registry the review changes.
    made = {e.asset_key for e in first.get_asset_materialization_events()}
    held_back = [key for key in defs_for(paths).resolve_asset_graph().get_all_asset_keys() if key not in made]
    reviewed = AssetSelection.assets("raw_discrepancies", "printed_values", *held_back)
    return {"first": first, "second": run_selection(reviewed, paths), **paths}


def _table(warehouse: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(f"select * from {name}").pl()


def test_its_summary_tables_are_its_own(second):
    baseline = _table(second["warehouse"], "baseline_summary")
    counts = dict(zip(baseline["key"], baseline["n"]))
    assert counts["patients"] == 31
    assert {k for k in counts if k.startswith("site.")} == {"site.stomach", "site.oesophagus", "site.gastro_oesophageal_junction"}
    assert (counts["site.stomach"], counts["site.oesophagus"], counts["site.gastro_oesophageal_junction"]) == (14, 9, 8)

    ae = _table(second["warehouse"], "ae_summary")
    terms = set(ae.filter(pl.col("section") == toxicity.TERM)["term"])
    assert terms == set(load_study(second["data"]).values("adverse_events", "term"))
    assert dict(zip(ae["term"], ae["total_n"]))["Neutropenia"] == 9

    subgroups = _table(second["warehouse"], "survival_subgroups")
    assert subgroups["data_cut"].unique().sort().cast(pl.String).to_list() == ["2022-01-31", "2022-07-31"]
    shown = subgroups.select("factor", "level", "reference").unique(maintain_order=True).rows()
    assert shown == [
        ("Sex", "Female", "Male"),
        ("Primary site", "Oesophagus", "Stomach"),
        ("Prior surgery", "Surgery", "No surgery"),
        ("Combination therapy", "Combined", "VX-101 alone"),
    ]
    adsl = _table(second["warehouse"], "adsl")
    assert set(adsl["TRT01P"]) == {"VX-101"} and set(adsl["STUDYID"]) == {"SECOND-TEST"}


def test_the_misprint_is_flagged_and_holds_its_table_back_until_reviewed(second):
    first = second["first"]
    assert not first.success
    lines = failure_first_lines(first)
    assert list(lines) == ["ae_summary"]
    assert MISPRINT in lines["ae_summary"] and "unreviewed" in lines["ae_summary"]
    failed = {(e.check_name, e.severity) for e in first.get_asset_check_evaluations() if not e.passed}
    assert failed == {(MISPRINT_CHECK, AssetCheckSeverity.ERROR)}
    verdicts = value_verdicts(first.get_asset_check_evaluations())
    assert verdicts[MISPRINT]["verdict"] == "ERROR"
    # Every other printed value of the study agrees with its records.
    assert {v for k, row in verdicts.items() if k != MISPRINT for v in [row["verdict"]]} == {"passed"}

    reviewed = second["second"]
    assert reviewed.success, failure_first_lines(reviewed)
    verdicts = value_verdicts(reviewed.get_asset_check_evaluations())
    assert verdicts[MISPRINT]["verdict"] == "WARN" and verdicts[MISPRINT]["check"] == MISPRINT_CHECK


def test_the_report_names_the_study_and_marks_the_misprint(second):
    html = (second["outputs"] / REPORT_FILE).read_text()
    assert "VX-101 in advanced gastric cancer (invented second study)" in html
    for heading in ("Table A. Baseline characteristics", "Table B. Response and survival", "Table C. Adverse events at the worst grade"):
        assert heading in html
    assert MISPRINT in html


def test_nothing_made_from_it_names_the_shipped_study_or_its_paper(second):
    found = []
    for path in sorted(p for p in second["outputs"].rglob("*") if p.is_file() and p.suffix in {".html", ".json", ".csv"}):
        # Embedded pictures are base64, where any short word turns up by chance.
        text = EMBEDDED.sub("", path.read_text(errors="replace")).lower()
        found += [f"{path.relative_to(second['outputs'])}: {word}" for word in FOREIGN if word in text]
    with duckdb.connect(str(second["warehouse"]), read_only=True) as con:
        tables = [name for (name,) in con.sql("select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        for name in tables:
            frame = con.sql(f'select * from main."{name}"').pl()
            text = " ".join(frame.select(pl.col(pl.String)).unique().write_csv().lower().split())
            found += [f"table {name}: {word}" for word in FOREIGN if word in text]
    for run in ("first", "second"):
        for event in second[run].all_events:
            if event.is_step_materialization or event.event_type_value == "ASSET_CHECK_EVALUATION":
                data = event.event_specific_data
                metadata = data.materialization.metadata if event.is_step_materialization else data.metadata
                text = " ".join(str(v.value) for v in metadata.values()).lower() + (getattr(data, "description", None) or "").lower()
                found += [f"{event.step_key} metadata: {word}" for word in FOREIGN if word in text]
    assert not found, found[:10]


def test_r_recomputes_it_with_its_own_subgroups(second):
    """R is given the study's declared comparisons and derives each from the records itself: every one of them agrees."""
    (check,) = [e for e in second["second"].get_asset_check_evaluations() if e.check_name == "agrees_with_r"]
    assert check.passed, check.description
    compared = _table(second["warehouse"], "r_verification")
    subgroups = compared.filter(pl.col("table") == "survival_subgroups")
    assert set(compared["status"]) == {"agree"}
    assert set(subgroups["key"]) == {s.factor for s in load_study(second["data"]).subgroups}
