"""Charts stay readable with several data cuts: distinct, outlined bands, the published curve on top and dashed,
a full legend, the history joined across cuts with its counts, and the data cut named on every chart."""

import datetime as dt

import polars as pl

from lms_assets.graphs import adverse_events, history, km, waterfall
from lms_assets.tables import survival
from lms_assets_tests.graphs.test_waterfall import _adsl, _bor, _toxicity_table
from lms_assets_tests.tables.test_survival import CUT, _shipped_adtte

LATER = dt.date(2022, 3, 31)


def _two_cuts() -> pl.DataFrame:
    """The shipped cut and a later one in which patients 1 and 5 die 12 months on and the living are followed longer."""
    shipped = _shipped_adtte()
    os_alive = (pl.col("PARAMCD") == "OS") & (pl.col("CNSR") == 1)
    later = shipped.with_columns(
        DCUTDT=pl.lit(LATER),
        AVAL=pl.when(os_alive).then(pl.col("AVAL") + 12.0).otherwise(pl.col("AVAL")),
        CNSR=pl.when(os_alive & pl.col("SUBJID").is_in([1, 5])).then(0).otherwise(pl.col("CNSR")),
    )
    return pl.concat([shipped, later])


def _km_spec(endpoint: str) -> dict:
    curves = survival.km_curves(_two_cuts())
    return km.endpoint_chart(curves, survival.landmarks(curves), survival.median_summary(curves), endpoint, CUT).to_dict()


def _series_filter(layer: dict) -> str | None:
    for step in layer.get("transform", []):
        if "filter" in step:
            return step["filter"]
    return None


def test_km_draws_the_published_cut_dashed_on_top_of_the_latest_with_outlined_faint_bands():
    spec = _km_spec("PFS")
    layers = spec["vconcat"][0]["layer"]
    latest, published = f"Data cut {LATER} (latest)", f"Data cut {CUT} (published)"
    curve_layers = [
        (i, layer)
        for i, layer in enumerate(layers)
        if layer.get("encoding", {}).get("y", {}).get("field") == "surv" and layer["mark"]["type"] == "line"
    ]
    order = [_series_filter(layer) for _, layer in curve_layers]
    # One line layer per cut, the published one after (so above) the latest one.
    assert [latest in f for f in order] == [True, False] and published in order[1]
    dashes = curve_layers[0][1]["encoding"]["strokeDash"]["scale"]
    assert dashes["domain"] == [latest, published]
    assert dashes["range"][0] == [1, 0] and len(dashes["range"][1]) == 2 and dashes["range"][1][0] > 1
    band = next(layer for layer in layers if layer["mark"]["type"] == "area")
    assert band["mark"]["opacity"] <= 0.1
    edges = [
        layer
        for layer in layers
        if layer.get("encoding", {}).get("y", {}).get("field") in ("ci_lower", "ci_upper") and layer["mark"]["type"] == "line"
    ]
    assert {e["encoding"]["y"]["field"] for e in edges} == {"ci_lower", "ci_upper"}
    assert all(e["encoding"]["color"]["field"] == "series" for e in edges)
    colours = curve_layers[0][1]["encoding"]["color"]
    assert len(set(colours["scale"]["range"])) == 2
    assert colours["legend"]["labelLimit"] == 0


def test_km_subtitle_names_both_cuts_and_says_how_they_are_drawn():
    subtitle = _km_spec("OS")["title"]["subtitle"]
    assert subtitle[0].startswith(f"Data cut {LATER} (latest)") and subtitle[1].startswith(f"Data cut {CUT} (published)")
    assert any("outlined" in line for line in subtitle) and any("dotted: median" in line for line in subtitle)


def _history_spec() -> dict:
    table = survival.median_history(survival.median_summary(survival.km_curves(_two_cuts())))
    return history.history_chart(table).to_dict(), table


def test_history_joins_each_method_across_cuts_and_shows_events_and_event_free_patients_per_cut():
    spec, table = _history_spec()
    assert spec["title"]["subtitle"][0] == f"Data cuts {CUT}, {LATER}."
    panels = spec["hconcat"]
    assert [p["vconcat"][0]["title"]["text"] for p in panels] == ["Progression-free survival", "Overall survival"]
    for panel, endpoint in zip(panels, ("PFS", "OS")):
        curves, counts = panel["vconcat"]
        line = next(layer for layer in curves["layer"] if layer["mark"]["type"] == "line")
        assert line["encoding"]["detail"]["field"] == "method_label" and line["encoding"]["y"]["field"] == "median"
        shown = {(row["data_cut"], row["row"]): row["value"] for row in spec["datasets"][counts["data"]["name"]]}
        expected = table.filter((pl.col("endpoint") == endpoint) & (pl.col("method") == "spss"))
        for row in expected.iter_rows(named=True):
            assert shown[(str(row["data_cut"]), "Events")] == str(row["events"])
            assert shown[(str(row["data_cut"]), "Without event")] == str(row["n"] - row["events"])
    os_events = dict(
        table.filter((pl.col("endpoint") == "OS") & (pl.col("method") == "spss")).select(pl.col("data_cut").cast(pl.String), "events").iter_rows()
    )
    assert os_events == {str(CUT): 12, str(LATER): 14}


def test_waterfall_and_adverse_event_charts_name_the_data_cut():
    bars, total = waterfall.waterfall_data(*_bor([-40.0, 10.0], ["PR", "SD"]), _adsl(["None", "None"]))
    assert f"(data cut {CUT})" in waterfall.waterfall_chart(bars, total, CUT).to_dict()["title"]["subtitle"][0]
    rows, terms = adverse_events.ae_chart_data(_toxicity_table(grade_5=False))
    assert f"(data cut {CUT})" in adverse_events.ae_chart(rows, terms, CUT).to_dict()["title"]["subtitle"][0]
