"""Follow-up refresh: the sensor sees new and corrected cut files, by the same names the ingest reads; a
regressive cut is rejected before it replaces ADTTE; cuts from the future or copies of another are questioned."""

import datetime as dt
import json
import os

import polars as pl
import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.defs.refresh import followup_state, new_followup_sensor, weekly_full_refresh
from lms_assets.defs.resources import StudyFolder
from lms_assets.records import boundary
from lms_assets.records.errors import RecordFileError
from lms_assets_tests.conftest import run_assets
from lms_assets_tests.records.test_validation import failure_first_lines, table_digests

SHIPPED_CUT = "2021-03-31.csv"


def evaluate(cursor, study_dir):
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), cursor=cursor, resources={"study_folder": StudyFolder(path=str(study_dir))})
    return new_followup_sensor(context), context.cursor


def later_cut(study_dir, name="2022-03-31.csv", deaths=(1, 5), extra_months=12.0):
    """A later export: the given living patients die, everyone else is followed longer."""
    cut = pl.read_csv(study_dir / "followup" / SHIPPED_CUT)
    alive = pl.col("died") == 0
    newly_dead = pl.col("patient_id").is_in(list(deaths)) & alive
    cut = cut.with_columns(
        pl.when(alive).then(pl.col("os_months") + extra_months).otherwise(pl.col("os_months")).round(1).alias("os_months"),
        pl.when(newly_dead).then(1).otherwise(pl.col("died")).alias("died"),
    )
    cut.write_csv(study_dir / "followup" / name)
    return cut


def test_sensor_requests_a_run_for_new_file_once_and_again_for_corrected_content(platform_env):
    first, cursor = evaluate(None, platform_env["data"])
    assert isinstance(first, RunRequest)
    assert json.loads(cursor) == {SHIPPED_CUT: json.loads(cursor)[SHIPPED_CUT]}

    same, _ = evaluate(cursor, platform_env["data"])
    assert isinstance(same, SkipReason)

    later_cut(platform_env["data"])
    new_file, cursor = evaluate(cursor, platform_env["data"])
    assert isinstance(new_file, RunRequest)
    assert new_file.tags["lms/changed_files"] == "2022-03-31.csv"

    corrected = platform_env["data"] / "followup" / "2022-03-31.csv"
    corrected.write_text(corrected.read_text().replace("\n3,12.4,1,28.0,1", "\n3,12.4,1,28.1,1"))
    changed, _ = evaluate(cursor, platform_env["data"])
    assert isinstance(changed, RunRequest)
    assert changed.run_key != new_file.run_key


def test_sensor_and_schedule_run_by_default():
    assert new_followup_sensor.default_status.value == "RUNNING"
    assert weekly_full_refresh.default_status.value == "RUNNING"


def _run_followup(paths):
    return run_assets("adtte", paths=paths)


def test_regressive_cut_is_rejected_with_patient_cuts_and_values_and_adtte_keeps_the_last_good_cut(platform_env):
    assert _run_followup(platform_env).success
    before = table_digests(platform_env["warehouse"])["adtte"]
    cut = pl.read_csv(platform_env["data"] / "followup" / SHIPPED_CUT)
    regressive = cut.with_columns(
        # Patient 3's death is undone; patient 1's follow-up is shortened.
        pl.when(pl.col("patient_id") == 3).then(0).otherwise(pl.col("died")).alias("died"),
        pl.when(pl.col("patient_id") == 1).then(20.0).otherwise(pl.col("os_months")).alias("os_months"),
    )
    regressive.write_csv(platform_env["data"] / "followup" / "2022-03-31.csv")
    result = _run_followup(platform_env)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_consistent")
    assert not check.passed
    assert check.metadata["violations"].value == 2
    details = check.metadata["details"].value
    assert (
        "patient 3 OS: an event in the earlier cut is censored in the later cut (2021-03-31: 28.0 months, event; 2022-03-31: 28.0 months, censored)"
        in details
    )
    assert "patient 1 OS: follow-up time shrank between cuts (2021-03-31: 25.8 months, censored; 2022-03-31: 20.0 months, censored)" in details
    assert failure_first_lines(result)["adtte"].startswith("adtte not published: followup_cuts_consistent: 2 violation(s): patient 1 OS")
    assert table_digests(platform_env["warehouse"])["adtte"] == before
    assert "adtte" in table_digests(platform_env["warehouse"], schema="staging")


def test_consistent_later_cut_passes(platform_env):
    later_cut(platform_env["data"])
    result = _run_followup(platform_env)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_consistent")
    assert check.passed


def test_later_cut_adds_a_cut_and_the_published_checks_still_evaluate_the_published_cut(platform_env):
    later_cut(platform_env["data"], deaths=(1, 5), extra_months=12.0)
    result = run_assets("history_chart", paths=platform_env)
    assert result.success
    import duckdb

    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
        summary = con.sql("select * from survival_summary").pl()
        history = con.sql("select * from median_history").pl()
    assert sorted(summary["data_cut"].cast(pl.String).unique()) == ["2021-03-31", "2022-03-31"]
    assert summary.height == 8  # two cuts × two endpoints × two methods
    os_events = dict(
        summary.filter((pl.col("endpoint") == "OS") & (pl.col("method") == "spss")).select(pl.col("data_cut").cast(pl.String), "events").iter_rows()
    )
    assert os_events == {"2021-03-31": 12, "2022-03-31": 14}
    assert history["data_cut"].n_unique() == 2
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    values = value_verdicts(checks.values())
    # The paper's values are still compared with the published cut, so the new cut does not turn them red.
    for name in ("T2.pfs.median", "EFF.pfs.ci_lower", "EFF.os.median", "EFF.os.ci_lower", "EFF.os.ci_upper", "EFF.os.events"):
        assert values[name]["verdict"] == "passed", name
    assert values["EFF.os.events"]["shown"] == "12.0"
    assert checks["followup_cuts_consistent"].passed


# --- which names are cuts: the sensor and the ingest agree ----------------------------------------


def test_a_cut_saved_with_an_upper_case_extension_is_seen_by_the_sensor_and_read_by_the_ingest(platform_env):
    """`.CSV` is what some spreadsheet programs write; the ingest has always read it, so the sensor must see it."""
    _, cursor = evaluate(None, platform_env["data"])
    later_cut(platform_env["data"], name="2021-06-30.CSV")

    request, _ = evaluate(cursor, platform_env["data"])

    assert isinstance(request, RunRequest) and request.tags["lms/changed_files"] == "2021-06-30.CSV"
    assert [p.name for p in boundary.followup_files(platform_env["data"])] == [SHIPPED_CUT, "2021-06-30.CSV"]


def test_a_file_the_ingest_refuses_still_launches_a_run_that_says_why(platform_env):
    _, cursor = evaluate(None, platform_env["data"])
    (platform_env["data"] / "followup" / "notes.txt").write_text("ask the site about patient 4")

    request, _ = evaluate(cursor, platform_env["data"])

    assert isinstance(request, RunRequest) and request.tags["lms/changed_files"] == "notes.txt"
    with pytest.raises(RecordFileError, match="followup/notes.txt: follow-up files must be named by their ISO cut date"):
        boundary.followup_files(platform_env["data"])


def test_the_sensor_never_reads_a_cut_linked_outside_the_study_folder(platform_env, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("secret")
    (platform_env["data"] / "followup" / "2022-03-31.csv").symlink_to(outside)
    state = followup_state(platform_env["data"])
    assert state["2022-03-31.csv"] == "outside the study folder"
    assert set(state) == {p.name for p in boundary.followup_candidates(platform_env["data"])}


# --- cut dates and copies -------------------------------------------------------------------------


def test_a_cut_dated_in_the_future_is_refused(study_dir):
    (study_dir / "followup" / "2099-01-01.csv").write_bytes((study_dir / "followup" / SHIPPED_CUT).read_bytes())
    with pytest.raises(RecordFileError, match=r"^followup/2099-01-01\.csv: data cut 2099-01-01 is in the future \(today is 2021-04-01\)"):
        boundary.followup_files(study_dir, today=dt.date(2021, 4, 1))


def test_a_cut_dated_tomorrow_is_accepted_for_time_zones_but_not_two_days_ahead(study_dir):
    today = dt.datetime.now(dt.UTC).date()
    for days, accepted in ((1, True), (2, False)):
        name = f"{today + dt.timedelta(days=days)}.csv"
        (study_dir / "followup" / name).write_bytes((study_dir / "followup" / SHIPPED_CUT).read_bytes())
        if accepted:
            assert name in [p.name for p in boundary.followup_files(study_dir)]
        else:
            with pytest.raises(RecordFileError, match="is in the future"):
                boundary.followup_files(study_dir)


def test_a_cut_dated_after_its_file_was_last_written_is_refused(study_dir):
    path = study_dir / "followup" / "2021-06-30.csv"
    path.write_bytes((study_dir / "followup" / SHIPPED_CUT).read_bytes())
    written = dt.datetime(2021, 5, 2, 9, tzinfo=dt.UTC).timestamp()
    os.utime(path, (written, written))
    with pytest.raises(RecordFileError, match=r"followup/2021-06-30\.csv: data cut 2021-06-30 is after the file was last modified \(2021-05-02\)"):
        boundary.followup_files(study_dir)
    # Written the day after its cut (an export run the next morning) is what a real cut looks like.
    os.utime(path, (written + 60 * 86400, written + 60 * 86400))
    assert path in boundary.followup_files(study_dir)


def test_a_byte_identical_copy_of_a_cut_warns_naming_both_files(platform_env):
    (platform_env["data"] / "followup" / "2021-06-30.csv").write_bytes((platform_env["data"] / "followup" / SHIPPED_CUT).read_bytes())
    result = run_assets("raw_followup", paths=platform_env)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_distinct")
    assert not check.passed and check.severity.value == "WARN"
    assert check.description == "followup/2021-06-30.csv is byte-identical to followup/2021-03-31.csv"


def test_identical_cuts_pairs_each_copy_with_the_first_file_of_that_content():
    assert boundary.identical_cuts({"a.csv": "1", "b.csv": "2", "c.csv": "1", "d.csv": "1"}) == [("a.csv", "c.csv"), ("a.csv", "d.csv")]
    assert boundary.identical_cuts({"a.csv": "1", "b.csv": "2"}) == []


def test_a_published_cut_whose_file_is_removed_holds_adtte_back(platform_env):
    """Removing the latest file (or renaming it to an earlier date) would take the analysis back a cut unnoticed."""
    later_cut(platform_env["data"])
    assert _run_followup(platform_env).success
    before = table_digests(platform_env["warehouse"])["adtte"]
    (platform_env["data"] / "followup" / "2022-03-31.csv").rename(platform_env["data"] / "followup" / "2021-12-31.csv")

    result = _run_followup(platform_env)

    assert failure_first_lines(result)["adtte"].startswith(
        "adtte not published: followup_cuts_consistent: 1 violation(s): data cut 2022-03-31 is published but no file in "
        "followup/ gives it any more: restore it (cuts are only added)"
    )
    assert table_digests(platform_env["warehouse"])["adtte"] == before
