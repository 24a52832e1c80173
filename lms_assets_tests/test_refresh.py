"""Follow-up refresh: the sensor sees new and corrected cut files; a regressive cut is rejected."""

import json

import polars as pl
from dagster import AssetKey, DagsterInstance, RunRequest, SkipReason, build_sensor_context

from lms_assets.definitions import build_defs
from lms_assets.defs.refresh import new_followup_sensor, weekly_full_refresh

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


def _run_followup(selection=("raw_patients", "raw_patient_allocations", "raw_response", "raw_followup",
                             "raw_adverse_events", "raw_published_figures", "quarantine", "adtte")):
    job = build_defs().resolve_implicit_global_asset_job_def()
    return job.execute_in_process(asset_selection=[AssetKey(k) for k in selection], raise_on_error=False)


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
