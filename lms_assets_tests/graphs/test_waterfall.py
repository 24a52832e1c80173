"""The waterfall and adverse-event charts, and every response, baseline and toxicity check on the shipped study."""

import hashlib
import json
import re
import struct

import polars as pl
import pytest

from lms_assets.adam.adae import derive_adae
from lms_assets.defs.graphs import CHART_NAMES
from lms_assets.defs.printed_checks import value_verdicts
from lms_assets.graphs import adverse_events, render, waterfall
from lms_assets.tables import toxicity
from lms_assets_tests.conftest import SHIPPED_STUDY
from lms_assets_tests.tables.test_toxicity import raw_adverse_events


def _bor(changes: list[float], responses: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ADRS's BOR rows and ADTR's best changes of patients 1, 2, …"""
    ids = list(range(1, len(changes) + 1))
    adtr = pl.DataFrame({"SUBJID": ids, "PARAMCD": "SDIAM", "AVISIT": "BEST", "PCHG": changes})
    return pl.DataFrame({"SUBJID": ids, "PARAMCD": ["BOR"] * len(ids), "AVALC": responses}), adtr


def _adsl(therapies: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"SUBJID": list(range(1, len(therapies) + 1)), "COMBTRT": therapies, "COMBFL": ["N" if t == "None" else "Y" for t in therapies]}
    )


def _layers(chart) -> list[dict]:
    return json.loads(chart.to_json())["layer"]


def test_waterfall_sorted_from_largest_increase_with_combination_marked():
    bars, total = waterfall.waterfall_data(*_bor([-40.0, 30.0, 5.0], ["PR", "PD", "SD"]), _adsl(["Immunotherapy", "None", "None"]))
    assert total == 3
    assert bars["best_pct_change"].to_list() == [30.0, 5.0, -40.0]
    assert bars["patient"].to_list() == ["Pt 2", "Pt 3", "Pt 1"]
    assert bars["combination"].to_list() == [None, None, "Immunotherapy"]


def test_waterfall_has_dashed_reference_lines_labelled_and_a_legend():
    bars, total = waterfall.waterfall_data(*_bor([-40.0, 30.0, 5.0], ["PR", "PD", "SD"]), _adsl(["Immunotherapy", "None", "None"]))
    spec = json.loads(waterfall.waterfall_chart(bars, total).to_json())
    rules = [layer for layer in spec["layer"] if isinstance(layer["mark"], dict) and layer["mark"].get("strokeDash")]
    assert len(rules) == 1
    data = dict(spec["datasets"])
    assert any(sorted(r["y"] for r in rows) == [-30.0, 20.0] for rows in data.values() if rows and set(rows[0]) == {"y"})
    texts = [r["label"] for rows in data.values() for r in rows if "label" in r]
    assert any(t.startswith("-30%") for t in texts) and any(t.startswith("+20%") for t in texts)
    bar_layer = spec["layer"][0]
    assert bar_layer["encoding"]["color"]["legend"]["title"] == "Best response (RECIST 1.1)"
    assert bar_layer["encoding"]["color"]["scale"]["domain"] == ["Partial response (PR)", "Stable disease (SD)", "Progressive disease (PD)"]
    assert "Patients" in bar_layer["encoding"]["x"]["title"] and "%" in bar_layer["encoding"]["y"]["title"]


def test_waterfall_samples_a_large_study_and_says_so():
    n = 5000
    changes = [float(i % 200 - 100) for i in range(n)]
    bars, total = waterfall.waterfall_data(*_bor(changes, ["SD"] * n), _adsl(["None"] * n), max_bars=100)
    assert (total, bars.height) == (5000, 100)
    assert bars["best_pct_change"][0] == 99.0 and bars["best_pct_change"][-1] == -100.0  # extremes kept
    assert bars["best_pct_change"].is_sorted(descending=True)
    subtitle = json.loads(waterfall.waterfall_chart(bars, total).to_json())["title"]["subtitle"]
    assert any("Showing 100 of 5,000 patients" in line for line in subtitle)


def _toxicity_table(grade_5: bool) -> pl.DataFrame:
    events = [(1, "Fatigue", 1, 1), (2, "Fatigue", 1, 3), (3, "Rash", 1, 2)] + ([(3, "Sepsis", 1, 5)] if grade_5 else [])
    adsl = pl.DataFrame({"SUBJID": [1, 2, 3, 4], "DOSREDFL": ["N"] * 4, "DISCAEFL": ["N"] * 4})
    return toxicity.ae_summary(derive_adae(raw_adverse_events(*events), studyid=SHIPPED_STUDY.studyid), adsl)


def test_ae_chart_rows_follow_table_order_and_drop_an_absent_grade_5():
    rows, terms = adverse_events.ae_chart_data(_toxicity_table(grade_5=False))
    assert terms == 2
    assert rows["term"].unique(maintain_order=True).to_list() == ["Fatigue", "Rash"]
    assert rows["grade_group"].unique().sort().to_list() == ["Grade 1/2", "Grade 3/4"]
    fatigue = rows.filter(pl.col("term") == "Fatigue")
    assert fatigue["n"].to_list() == [1, 1] and fatigue["total_pct"].to_list() == [50.0, 50.0]
    with_deaths, _ = adverse_events.ae_chart_data(_toxicity_table(grade_5=True))
    assert "Grade 5" in with_deaths["grade_group"].to_list()


def test_ae_chart_caps_the_terms_and_says_so():
    rows, terms = adverse_events.ae_chart_data(_toxicity_table(grade_5=True), max_terms=2)
    assert (rows["term"].n_unique(), terms) == (2, 3)
    spec = json.loads(adverse_events.ae_chart(rows, terms).to_json())
    assert any("Showing the 2 most frequent of 3 terms" in line for line in spec["title"]["subtitle"])
    assert spec["layer"][0]["encoding"]["color"]["legend"]["title"] == "Worst CTCAE grade"


# --- the shipped study, end to end -------------------------------------------------------------------------------

SUMMARIES = ("baseline_summary", "response_summary", "recist_consistency", "tumour_shrinkage", "ae_summary")
# Printed values the data cannot reproduce: the paper's own inconsistencies (median age 53 vs Table 3's 52;
# the abstract's hand-foot grade 3/4 12.5% vs Table 4's 10.5%) and a value with no data behind it.
# Each is a reviewed discrepancy (data/known_discrepancies.csv), so it fails as WARN with the shown value reviewed.
EXPECTED_FAILURES = {
    "T1.age.median": "52.0",
    "RPC.age.median": "52.0",
    "DIS.metastasis.distant.pct": "not computable",
    "ABS.ae.hand_foot_skin_syndrome.g34.pct": "10.53",
}


@pytest.mark.slow
def test_printed_values_on_the_shipped_study(shipped_run):
    evaluations = [e for e in shipped_run["result"].get_asset_check_evaluations() if e.asset_key.to_user_string() in SUMMARIES]
    values = value_verdicts(evaluations)
    failed = {value: row for value, row in values.items() if row["verdict"] != "passed"}
    assert set(failed) == set(EXPECTED_FAILURES)
    for value, shown in EXPECTED_FAILURES.items():
        assert failed[value]["shown"] == shown and failed[value]["verdict"] == failed[value]["check_outcome"] == "WARN"
    # Every Table 4 row, Table 2 row and the DCR printed as "73.7% (14/21)" reproduce.
    table_4 = {f: row for f, row in values.items() if row["check"] == "printed_table_4"}
    assert len(table_4) == 72 and all(f.startswith("T4.") for f in table_4)
    assert all(row["verdict"] == "passed" for f, row in values.items() if f.startswith(("T4.", "T2.response", "T2.orr", "T2.dcr")))
    dcr = values["EFF.dcr.pct"]
    assert dcr["verdict"] == "passed" and dcr["shown"] == "73.68"  # 14/19
    mean = values["EFF.shrinkage.mean_pct"]
    assert mean["verdict"] == "passed" and mean["shown"] == "31.75"
    assert values["DIS.shrinkage_gt70_immunotherapy_alive.n"]["verdict"] == "passed"
    assert values["RPC.ecog.gt2.n"]["verdict"] == "passed"
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in evaluations}
    assert checks[("recist_consistency", "recorded_responses_match_recist")].passed  # all 19 responses fit RECIST


def chart_metadata(result, name: str) -> dict:
    """The metadata of chart ``name``'s materialization in ``result`` (every chart is a materialization of the one charts step)."""
    (materialization,) = [m for m in result.asset_materializations_for_node("charts") if m.asset_key.path[-1] == name]
    return materialization.metadata


@pytest.mark.slow
def test_charts_are_materialized_as_png_and_html(shipped_run):
    waterfall_md = chart_metadata(shipped_run["result"], "waterfall_chart")
    assert re.fullmatch(r"http://[^ ]+/charts/waterfall_chart\.png\?sha256=[0-9a-f]{12}", waterfall_md["picture"].value)
    assert (waterfall_md["patients"].value, waterfall_md["bars_drawn"].value) == (19, 19)
    assert (shipped_run["outputs"] / "charts" / "waterfall_chart.html").stat().st_size > 0
    ae_md = chart_metadata(shipped_run["result"], "ae_chart")
    assert ae_md["terms"].value == 12 and "/charts/ae_chart.png?sha256=" in ae_md["picture"].value
    assert (shipped_run["outputs"] / "charts" / "ae_chart.html").stat().st_size > 0
    swimmer_md = chart_metadata(shipped_run["result"], "swimmer_chart")
    assert (swimmer_md["patients"].value, swimmer_md["lanes_drawn"].value) == (19, 19)
    # Every chart's check ran in the one step and passed.
    checks = {e.asset_key.path[-1]: e.passed for e in shipped_run["result"].get_asset_check_evaluations() if e.check_name == "numbers_match_tables"}
    assert checks == dict.fromkeys(CHART_NAMES, True)


# About render.PNG_WIDTH pixels: Dagster's dialog shows the picture at its natural size.
MIN_CHART_WIDTH_PX = render.PNG_WIDTH * (1 - render.PNG_WIDTH_TOLERANCE)
MAX_CHART_WIDTH_PX = render.PNG_WIDTH * (1 + render.PNG_WIDTH_TOLERANCE)


@pytest.mark.slow
def test_every_chart_heads_its_metadata_with_its_page_then_a_picture_that_fits_the_dialog(shipped_run):
    for name in CHART_NAMES:
        metadata = chart_metadata(shipped_run["result"], name)
        assert list(metadata)[:2] == ["chart page", "picture"], (name, list(metadata))
        assert metadata["chart page"].value.endswith(f"/charts/{name}.html")
        # The picture is the PNG the chart IO manager stored, served beside the page; the link names its digest.
        png = (shipped_run["outputs"] / "charts" / f"{name}.png").read_bytes()
        assert metadata["picture"].value.endswith(f"/charts/{name}.png?sha256={hashlib.sha256(png).hexdigest()[:12]}")
        width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
        assert MIN_CHART_WIDTH_PX <= width <= MAX_CHART_WIDTH_PX and height > 0, (name, width, height)
