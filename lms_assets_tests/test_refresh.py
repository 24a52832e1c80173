"""Follow-up refresh: the sensor sees new and corrected cut files; a regressive cut is rejected."""

import json

import polars as pl
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from lms_assets.defs.refresh import new_followup_sensor, weekly_full_refresh
from lms_assets_tests.conftest import run_assets

SHIPPED_CUT = "2021-03-31.csv"


def evaluate(cursor):
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), cursor=cursor)
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
    first, cursor = evaluate(None)
    assert isinstance(first, RunRequest)
    assert json.loads(cursor) == {SHIPPED_CUT: json.loads(cursor)[SHIPPED_CUT]}

    same, cursor_again = evaluate(cursor)
    assert isinstance(same, SkipReason)

    later_cut(platform_env["data"])
    new_file, cursor = evaluate(cursor)
    assert isinstance(new_file, RunRequest)
    assert new_file.tags["lms/changed_files"] == "2022-03-31.csv"

    corrected = platform_env["data"] / "followup" / "2022-03-31.csv"
    corrected.write_text(corrected.read_text().replace("\n3,12.4,1,28.0,1", "\n3,12.4,1,28.1,1"))
    changed, _ = evaluate(cursor)
    assert isinstance(changed, RunRequest)
    assert changed.run_key != new_file.run_key


def test_sensor_and_schedule_run_by_default():
    assert new_followup_sensor.default_status.value == "RUNNING"
    assert weekly_full_refresh.default_status.value == "RUNNING"


def _run_followup():
    return run_assets("adtte")


def test_regressive_cut_is_rejected_with_patient_cuts_and_values(platform_env):
    cut = pl.read_csv(platform_env["data"] / "followup" / SHIPPED_CUT)
    regressive = cut.with_columns(
        # Patient 3's death is undone; patient 1's follow-up is shortened.
        pl.when(pl.col("patient_id") == 3).then(0).otherwise(pl.col("died")).alias("died"),
        pl.when(pl.col("patient_id") == 1).then(20.0).otherwise(pl.col("os_months")).alias("os_months"),
    )
    regressive.write_csv(platform_env["data"] / "followup" / "2022-03-31.csv")
    result = _run_followup()
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_consistent")
    assert not check.passed
    assert check.metadata["violations"].value == 2
    details = check.metadata["details"].value
    assert "patient 3 OS: an event in the earlier cut is censored in the later cut (2021-03-31: 28.0 months, event; 2022-03-31: 28.0 months, censored)" in details
    assert "patient 1 OS: follow-up time shrank between cuts (2021-03-31: 25.8 months, censored; 2022-03-31: 20.0 months, censored)" in details


def test_consistent_later_cut_passes(platform_env):
    later_cut(platform_env["data"])
    result = _run_followup()
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "followup_cuts_consistent")
    assert check.passed


def test_later_cut_adds_a_cut_and_the_published_checks_still_evaluate_the_published_cut(platform_env):
    later_cut(platform_env["data"], deaths=(1, 5), extra_months=12.0)
    result = run_assets("followup_history_chart")
    assert result.success
    import duckdb

    with duckdb.connect(str(platform_env["warehouse"]), read_only=True) as con:
        summary = con.sql("select * from survival_summary").pl()
        history = con.sql("select * from followup_history").pl()
    assert sorted(summary["data_cut"].cast(pl.String).unique()) == ["2021-03-31", "2022-03-31"]
    assert summary.height == 8  # two cuts × two endpoints × two methods
    os_events = dict(summary.filter((pl.col("endpoint") == "OS") & (pl.col("method") == "spss")).select(
        pl.col("data_cut").cast(pl.String), "events").iter_rows())
    assert os_events == {"2021-03-31": 12, "2022-03-31": 14}
    assert history["data_cut"].n_unique() == 2
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    # The paper's figures are still compared with the published cut, so the new cut does not turn them red.
    for name in ("T2_pfs_median", "EFF_pfs_ci_lower", "EFF_os_median", "EFF_os_ci_lower", "EFF_os_ci_upper", "EFF_os_events"):
        assert checks[name].passed, name
    assert checks["EFF_os_events"].metadata["shown_in_table"].value == "12.0"
    assert checks["followup_cuts_consistent"].passed
