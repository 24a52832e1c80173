"""Table previews a reader can use: patient ids as ranges, estimates before long list cells, no ``len`` header, one
cell per interval, and printed_audit's counts, discrepancies and link to the report's full audit."""

import polars as pl

from lms_assets.defs.metadata import preview
from lms_assets.defs.report import REPORT_FILE
from lms_assets.graphs.render import cell_text
from lms_assets.report.page import AUDIT_ALL_VALUES
from lms_assets.tables.printed import id_ranges
from lms_assets_tests.audit.test_consistency import shipped_audit  # noqa: F401 (the fixture: printed_audit on the shipped study)


def test_patient_ids_are_shown_as_ranges():
    assert id_ranges([8, 1, 2, 3, 5, 7, 2]) == "1–3, 5, 7–8"
    assert cell_text(list(range(1, 20))) == "1–19"
    assert cell_text(["Nausea", "Fatigue"]) == "Nausea, Fatigue"
    assert cell_text(73.6842105263158) == "73.68"
    assert [cell_text(v) for v in (5.2375, 1200.0, 0.000123456, -2.5, 5.2)] == ["5.238", "1200", "0.0001235", "-2.5", "5.2"]


def test_preview_is_a_table_with_estimates_before_lists_one_interval_cell_and_a_count_named_n():
    frame = pl.DataFrame(
        {"patients": [[1, 2, 3, 9]], "len": [4], "median": [5.2375], "ci_lower": [2.9623], "ci_upper": [None], "printed": ["23.5 (14.2~32.7)"]}
    )
    shown = preview(frame)
    assert [c.name for c in shown.schema.columns] == ["n", "median", "ci", "printed", "patients"]
    # Every float at the same places (half up), a missing bound as R prints it, the interval kept on one line.
    assert shown.records[0].data == {"n": "4", "median": "5.24", "ci": "2.96\u2060–\u2060NA", "printed": "23.5 (14.2~32.7)", "patients": "1–3, 9"}


def test_printed_audit_lists_each_discrepancy_counts_that_add_up_and_links_the_full_audit(shipped_audit):  # noqa: F811 (the fixture imported above)
    result, table, _ = shipped_audit
    metadata = result.asset_materializations_for_node("printed_audit")[0].metadata
    discrepancies = table.filter(pl.col("status") == "discrepancy")
    assert discrepancies.height > 0
    listed = [r.data for r in metadata["differ"].records]
    assert [r["value_id"] for r in listed] == discrepancies["value_id"].to_list()
    assert listed[0].keys() == {"value_id", "printed", "shown"}
    counts = {(r.data["status"], r.data["check"]): int(r.data["n"]) for r in metadata["counts"].records}
    # The counts add up to the total row, and each pair of status and outcome has its one-line meaning.
    assert counts.pop(("all", "")) == table.height == sum(counts.values())
    assert all(r.data["meaning"] for r in metadata["counts"].records)
    assert counts[("discrepancy", "WARN")] + counts[("discrepancy", "passed")] == discrepancies.height
    assert metadata["report"].value.endswith(f"{REPORT_FILE.as_posix()}#{AUDIT_ALL_VALUES}")
