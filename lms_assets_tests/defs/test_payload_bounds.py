"""Bounded payloads: whatever a cell of the input holds, previews, the event log and the report stay small."""

from pathlib import Path

import polars as pl
from dagster import AssetSelection, DagsterInstance

from lms_assets.defs.metadata import PREVIEW_CELL_CHARS, PREVIEW_ROWS, preview
from lms_assets.graphs import render
from lms_assets.report import markup
from lms_assets_tests.conftest import defs_for
from lms_assets_tests.dagster_process import instance_home

HUGE = "x" * 50_000_000  # the 50 MB cell of the issue


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_clip_keeps_short_text_and_says_how_long_long_text_was():
    assert render.clip("Fatigue", 10) == "Fatigue"
    assert render.clip("abcdefghijk", 10) == "abcdefghij… (11 characters in all)"


def test_a_preview_of_a_huge_cell_is_bounded():
    # Every shown row holds the huge cell; the 75 rows past the preview need not (5 GB of them cost 20 s).
    frame = pl.DataFrame({"file": ["adverse_events.csv"] * 100, "value": [HUGE] * PREVIEW_ROWS + ["x"] * (100 - PREVIEW_ROWS)})
    records = preview(frame).records
    assert len(records) == PREVIEW_ROWS
    assert all(len(r.data["value"]) < PREVIEW_CELL_CHARS + 50 and r.data["value"].endswith(f"({len(HUGE):,} characters in all)") for r in records)


def test_a_report_table_of_a_huge_cell_and_many_rows_is_bounded():
    frame = pl.DataFrame({"value": [HUGE] * 3 + ["short"] * 10_000})
    html = markup.table_html(frame, "quarantine")
    assert len(html) < markup.REPORT_TABLE_ROWS * 200 + 3 * (markup.REPORT_CELL_CHARS + 200)
    assert f"{10_003 - markup.REPORT_TABLE_ROWS} more rows not shown" in html
    assert f"({len(HUGE):,} characters in all)" in html


def test_a_huge_cell_does_not_flood_the_event_log(platform_env, tmp_path: Path):
    """A 5 MB AE term (refused, or quarantined and previewed) adds far less than its size to DAGSTER_HOME."""
    events = platform_env["data"] / "adverse_events.csv"
    events.write_text(events.read_text() + f"1,{'x' * 5_000_000},9,1\n")
    home = instance_home(tmp_path / "home")
    defs = defs_for(platform_env)
    selection = AssetSelection.assets("quarantine").upstream().resolve(defs.resolve_asset_graph())
    with DagsterInstance.from_config(str(home)) as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=list(selection), instance=instance, raise_on_error=False
        )
        assert result.all_events, "the run should have started"
    size = folder_bytes(home)
    assert size < 2_000_000, f"DAGSTER_HOME holds {size:,} bytes after one run with a 5 MB cell"
