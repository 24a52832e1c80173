"""Every chart's blocking ``numbers_match_tables`` check: the numbers in its titles, captions and labels are cells of
the tables it draws, and a KM title states the interval of the method it names.

Faults are judged in-process through the pure functions the chart assets call (``stated.unexplained`` with each
chart's ``expected_numbers``, ``km.title_mismatches``) on the shipped study's tables; the escaped KM title fault also
goes through a Dagster run, which must fail the chart's step before its files are written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import altair as alt
import duckdb
import polars as pl
import pytest
from dagster import Failure

from lms_assets import adam
from lms_assets.defs import graphs
from lms_assets.graphs import adverse_events, forest, history, km, km_subgroups, render, stated, swimmer, waterfall
from lms_assets.records.declarations import SUBGROUP_COLUMNS
from lms_assets.tables import survival
from lms_assets_tests.conftest import SHIPPED_STUDY, run_assets
from lms_assets_tests.defs.test_fault_injection import _wrap, records, summary_tables  # noqa: F401 - records is a fixture
from lms_assets_tests.records.test_validation import failure_first_lines

CUT = dt.date(2021, 3, 31)


@pytest.fixture(scope="module")
def tables(records) -> dict[str, pl.DataFrame]:  # noqa: F811 - the fixture imported above
    """The shipped study's tables as the chart assets read them."""
    return {
        **summary_tables(records),
        "adrs": adam.adrs.derive_adrs(records["response"], studyid=SHIPPED_STUDY.studyid),
        "adtr": adam.adtr.derive_adtr(records["response"], studyid=SHIPPED_STUDY.studyid),
        "median_history": survival.median_history(summary_tables(records)["survival_summary"]),
        "printed_values": records["printed_values"],
    }


def km_spec(tables: dict[str, pl.DataFrame], endpoint: str) -> dict:
    chart = km.endpoint_chart(tables["survival_curves"], tables["survival_landmarks"], tables["survival_summary"], endpoint, CUT)
    return render.chart_spec(chart)


def chart_problems(tables: dict[str, pl.DataFrame], names: tuple[str, ...] = graphs.CHART_NAMES) -> dict[str, list[str]]:
    """The failed statements and plotted values of the charts ``names``, as the charts step's check computes them
    (builders looked up at call time, so a monkeypatch applies)."""
    problems = {}
    for chart in (c for c in graphs.CHART_ASSETS if c.name in names):
        drawn = chart.draw(tables, SHIPPED_STUDY)
        result = graphs.check_result(chart.name, drawn, render.chart_spec(drawn.chart))
        problems[chart.name] = result.metadata["mismatches"].value
    return problems


def test_the_shipped_charts_state_only_their_tables_numbers(tables):
    assert chart_problems(tables) == {name: [] for name in graphs.CHART_NAMES}


def test_stated_texts_are_titles_and_labels_not_tooltips_or_data():
    data = pl.DataFrame({"x": [1.0, 2.0], "label": ["12 (3)", "7 (1)"]})
    base = alt.Chart(data)
    chart = alt.layer(
        base.mark_point().encode(x=alt.X("x:Q", title="Months 0 to 24"), tooltip=[alt.Tooltip("x:Q", title="95% CI lower")]),
        base.mark_text().encode(x="x:Q", text="label:N"),
    ).properties(title=alt.Title("Median 4.1", subtitle=["n = 1,250, 19 events", "cut 2021-03-31"]))
    lines = stated.texts(render.chart_spec(chart))
    assert sorted(lines) == sorted(["Months 0 to 24", "12 (3)", "7 (1)", "Median 4.1", "n = 1,250, 19 events", "cut 2021-03-31"])
    assert set(stated.numbers(lines)) == {"0", "24", "12", "3", "7", "1", "4.1", "1,250", "19", "2021-03-31"}
    assert stated.unexplained(render.chart_spec(chart), {"0", "24", "12", "3", "7", "1", "4.1", "1,250"}) == ["19", "2021-03-31"]


def test_an_abbreviated_count_is_one_stated_number():
    # A large study's risk table prints km.compact_count's 20k and 1.2M: the suffix belongs to the number.
    assert stated.numbers(["20k (217)", "1.2M at risk", "6,215 (14k)", "3 months"]) == ["20k", "217", "1.2M", "6,215", "14k", "3"]
    assert {km.compact_count(20_000), km.compact_count(1_234_567)} == {"20k", "1.2M"}


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[pytest.MonkeyPatch], None]
    chart: str  # the chart whose check must fail


def km_title_shows_brookmeyer_crowley(mp):
    """The escaped fault: the title claims SPSS's interval and shows the log(−log) one."""

    def faulty(rows, cut):
        return rows.filter((pl.col("data_cut") == cut) & (pl.col("method") == "brookmeyer_crowley_loglog")).row(0, named=True)

    mp.setattr(km, "title_row", faulty)


def km_caption_ninety_percent_interval(mp):
    def wrapper(original):
        return lambda row: original({**row, "ci_lower": row["median"] - 1.645 * row["se"], "ci_upper": row["median"] + 1.645 * row["se"]})

    _wrap(mp, km, "median_caption", wrapper)


def forest_p_one_sided(mp):
    def wrapper(original):
        return lambda row: original({**row, "logrank_p": None if row["logrank_p"] is None else row["logrank_p"] / 2})

    _wrap(mp, forest, "_hr_text", wrapper)


def waterfall_names_last_years_cut(mp):
    _wrap(mp, waterfall, "records_line", lambda original: lambda what, cut: original(what, dt.date(2020, 3, 31)))


def ae_percent_of_one_more_patient(mp):
    def wrapper(original):
        def faulty(table, max_terms=adverse_events.MAX_TERMS):
            rows, terms = original(table, max_terms)
            return rows.with_columns(total_pct=pl.col("total_n") / (pl.col("denominator") + 1) * 100), terms

        return faulty

    _wrap(mp, adverse_events, "ae_chart_data", wrapper)


def history_events_one_too_many(mp):
    _wrap(
        mp, history, "_panel", lambda original: lambda data, endpoint, cuts: original(data.with_columns(events=pl.col("events") + 1), endpoint, cuts)
    )


def swimmer_bar_ends_at_progression(mp):
    """Each lane drawn to the PFS time instead of death or last contact."""

    def wrapper(original):
        def faulty(adtte, adrs, adsl, max_lanes=swimmer.MAX_LANES):
            lanes, cohort = original(adtte, adrs, adsl, max_lanes)
            return lanes.with_columns(os=pl.col("pfs")), cohort

        return faulty

    _wrap(mp, swimmer, "swimmer_data", wrapper)


def swimmer_alive_drawn_as_dead(mp):
    """CNSR read the wrong way round for OS: every censored patient gets a death mark."""

    def wrapper(original):
        def faulty(adtte, adrs, adsl, max_lanes=swimmer.MAX_LANES):
            lanes, cohort = original(adtte, adrs, adsl, max_lanes)
            return lanes.with_columns(died=~pl.col("died")), cohort

        return faulty

    _wrap(mp, swimmer, "swimmer_data", wrapper)


def subgroup_panel_shows_the_cox_p(mp):
    _wrap(
        mp,
        km_subgroups,
        "_panel",
        lambda original: lambda row, *rest: original({**row, "logrank_p": row["cox_p"]}, *rest),
    )


def subgroup_arms_swapped(mp):
    """The level's patients drawn as the reference's and the other way round."""

    def wrapper(original):
        def faulty(adtte, adsl, subgroups):
            swapped = pl.when(pl.col("arm") == "level").then(pl.lit("reference")).otherwise(pl.lit("level"))
            return original(adtte, adsl, subgroups).with_columns(arm=swapped)

        return faulty

    _wrap(mp, km_subgroups, "subgroup_times", wrapper)


def subgroup_risk_read_backwards(mp):
    """The numbers at risk read off the step before each month instead of the one at or after it."""

    def faulty(steps, months):
        grid = steps.select(km_subgroups.GROUP).unique().join(pl.DataFrame({"month": months}, schema={"month": pl.Float64}), how="cross")
        ahead = steps.select(*km_subgroups.GROUP, "time", "at_risk").sort("time")
        joined = grid.sort("month").join_asof(ahead, left_on="month", right_on="time", by=km_subgroups.GROUP, check_sortedness=False)
        return joined.select(*km_subgroups.GROUP, "month", at_risk=pl.col("at_risk").fill_null(0))

    mp.setattr(km_subgroups, "_risk_table", faulty)


FAULTS = [
    Fault("km_title_shows_brookmeyer_crowley", km_title_shows_brookmeyer_crowley, "km_pfs_chart"),
    Fault("km_caption_ninety_percent_interval", km_caption_ninety_percent_interval, "km_os_chart"),
    Fault("forest_p_one_sided", forest_p_one_sided, "forest_chart"),
    Fault("waterfall_names_last_years_cut", waterfall_names_last_years_cut, "waterfall_chart"),
    Fault("ae_percent_of_one_more_patient", ae_percent_of_one_more_patient, "ae_chart"),
    Fault("history_events_one_too_many", history_events_one_too_many, "history_chart"),
    Fault("swimmer_bar_ends_at_progression", swimmer_bar_ends_at_progression, "swimmer_chart"),
    Fault("swimmer_alive_drawn_as_dead", swimmer_alive_drawn_as_dead, "swimmer_chart"),
    Fault("subgroup_panel_shows_the_cox_p", subgroup_panel_shows_the_cox_p, "km_subgroups_chart"),
    Fault("subgroup_arms_swapped", subgroup_arms_swapped, "km_subgroups_chart"),
    Fault("subgroup_risk_read_backwards", subgroup_risk_read_backwards, "km_subgroups_chart"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_each_chart_fault_fails_its_check(fault, tables, monkeypatch):
    fault.inject(monkeypatch)
    assert chart_problems(tables, (fault.chart,))[fault.chart]


def test_the_km_title_fault_passes_every_number_check_and_fails_on_the_method_it_names(tables, monkeypatch):
    """Every number of the faulty title is a table cell (the log(−log) interval is in the subtitle): only the
    check that the title's interval is the named method's catches it, and it names both intervals."""
    km_title_shows_brookmeyer_crowley(monkeypatch)
    spec = km_spec(tables, "PFS")
    assert spec["title"]["text"] == "Progression-free survival: median 4.1 months (95% CI 1.90–6.20)"
    assert stated.unexplained(spec, km.expected_numbers(tables["survival_summary"], tables["survival_landmarks"], "PFS")) == []
    assert km.title_mismatches(spec, tables["survival_summary"], "PFS") == [
        "title (SPSS 24, cut 2021-03-31) shows median 4.1 (95% CI 1.90–6.20); survival_summary's spss row has median 4.1 (95% CI 2.96–5.24)"
    ]


def test_the_km_title_fault_fails_the_chart_step_before_its_files_are_written(platform_env, monkeypatch):
    km_title_shows_brookmeyer_crowley(monkeypatch)
    result = run_assets("km_pfs_chart", paths=platform_env)
    # Every chart is drawn in the one charts step; the selection of one chart draws that one only, and holds it back.
    assert list(failure_first_lines(result)) == ["km_pfs_chart"]
    assert failure_first_lines(result)["km_pfs_chart"].startswith("km_pfs_chart not published: numbers_match_tables: title (SPSS 24, cut 2021-03-31)")
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == "km_pfs_chart"]
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert "1.90–6.20" in str(evaluation.metadata["mismatches"].value)
    charts = platform_env["outputs"] / "charts"
    assert not list(charts.glob("km_pfs_chart.*"))


# --- reconstruction shown where it is drawn ------------------------------------------------------------------


def test_the_os_chart_marks_the_reconstructed_last_contacts_apart_from_recorded_censorings(tables):
    adtte = tables["adtte"]
    chart = km.endpoint_chart(tables["survival_curves"], tables["survival_landmarks"], tables["survival_summary"], "OS", CUT, adtte)
    spec = render.chart_spec(chart)
    layers = spec["vconcat"][0]["layer"]
    (marked,) = [layer for layer in layers if "shape" in layer.get("encoding", {})]
    assert marked["mark"]["filled"] is False and marked["mark"]["color"] == km.RECONSTRUCTED_COLOUR
    assert marked["encoding"]["shape"]["scale"]["domain"] == [km.RECONSTRUCTED_CENSOR]
    reconstructed = adtte.filter((pl.col("PARAMCD") == "OS") & (pl.col("AVALRFL") == "Y") & (pl.col("CNSR") == 1))
    drawn = spec["datasets"][marked["data"]["name"]]
    assert sorted(row["time"] for row in drawn) == sorted(reconstructed["AVAL"].to_list())
    assert sum(row["reconstructed"] for row in drawn) == reconstructed.height == 7
    # The recorded censor ticks leave out the times whose every censoring is reconstructed.
    ticks = next(layer for layer in layers if layer["mark"].get("shape") == "M0,-1L0,1")
    assert ticks["transform"] == [{"filter": "(datum.censored > datum.reconstructed)"}]
    assert any("reconstructed" in line for line in spec["title"]["subtitle"])


def test_the_pfs_chart_has_no_reconstructed_mark(tables):
    chart = km.endpoint_chart(tables["survival_curves"], tables["survival_landmarks"], tables["survival_summary"], "PFS", CUT, tables["adtte"])
    spec = render.chart_spec(chart)
    assert not [layer for layer in spec["vconcat"][0]["layer"] if "shape" in layer.get("encoding", {})]
    assert not any("reconstructed" in line for line in spec["title"]["subtitle"])


def test_the_swimmer_plots_every_adtte_time_and_marks_the_reconstructed_last_contacts(tables):
    lanes, cohort = swimmer.swimmer_data(tables["adtte"], tables["adrs"], tables["adsl"])
    spec = render.chart_spec(swimmer.swimmer_chart(lanes, cohort))
    assert swimmer.plotted_mismatches(spec, tables["adtte"]) == []
    os_rows = tables["adtte"].filter(pl.col("PARAMCD") == "OS")
    assert (cohort.patients, cohort.deaths, cohort.reconstructed) == (19, os_rows.filter(pl.col("CNSR") == 0).height, 7)
    # Longest time on study on top; the reconstructed last contacts have their own hollow orange mark and legend entry.
    assert lanes["os"].is_sorted(descending=True)
    marked = [layer for layer in spec["hconcat"][1]["layer"] if layer.get("description") == swimmer.RECONSTRUCTED]
    assert marked and marked[0]["mark"]["filled"] is False and marked[0]["mark"]["color"] == km.RECONSTRUCTED_COLOUR
    assert marked[0]["encoding"]["stroke"]["scale"]["domain"] == [km.RECONSTRUCTED_CENSOR]


def test_the_swimmer_check_fails_when_it_finds_no_lanes(tables):
    assert swimmer.plotted_mismatches({"hconcat": []}, tables["adtte"]) == ["the chart draws no lanes"]


def test_each_subgroup_panel_draws_survival_subgroups_medians_and_p(tables):
    subgroups = tables["survival_subgroups"]
    spec = render.chart_spec(km_subgroups.subgroup_chart(tables["adtte"], tables["adsl"], subgroups, SHIPPED_STUDY.subgroups))
    assert km_subgroups.plotted_mismatches(spec, subgroups, tables["adtte"], tables["adsl"], SHIPPED_STUDY.subgroups) == []
    titles, _, risk = km_subgroups._panels(spec)
    assert risk.height == 14 * 2 * 6  # every panel, both arms, months 0 to 30 by 6
    assert len(titles) == subgroups.height == 14
    assert "Sex, OS: log-rank p = 0.154" in titles


def test_the_subgroup_chart_says_which_panels_rest_on_reconstructed_inputs(tables):
    subgroups, adtte, adsl = tables["survival_subgroups"], tables["adtte"], tables["adsl"]
    subtitle = render.chart_spec(km_subgroups.subgroup_chart(adtte, adsl, subgroups, SHIPPED_STUDY.subgroups))["title"]["subtitle"]
    assert subtitle[-1] == (
        "Rests on reconstructed inputs, not printed in the paper: OS at reconstructed last-contact times "
        "(ADTTE AVALRFL = Y); the allocation of Primary site (ADSL RECONVAR)."
    )
    # Nothing reconstructed, nothing said.
    as_printed = render.chart_spec(
        km_subgroups.subgroup_chart(adtte.with_columns(AVALRFL=None), adsl.with_columns(RECONVAR=None), subgroups, SHIPPED_STUDY.subgroups)
    )
    assert not any("reconstructed" in line for line in as_printed["title"]["subtitle"])


class _Warehouse:
    """What the charts step asks of the warehouse: ``read_columns``, here from frames in memory."""

    def __init__(self, tables: dict[str, pl.DataFrame]):
        self.tables = tables
        self.asked: list[tuple[str, list[str]]] = []

    def read_columns(self, table: str, columns: list[str]) -> pl.DataFrame:
        self.asked.append((table, columns))
        if table not in self.tables:
            raise duckdb.CatalogException(f"Table with name {table} does not exist!")
        return self.tables[table].select(columns)


def test_the_charts_step_reads_each_table_once_with_only_the_selected_charts_columns(tables):
    selected = [c for c in graphs.CHART_ASSETS if c.name in ("swimmer_chart", "km_subgroups_chart")]
    warehouse = _Warehouse(tables)
    read = graphs.read_tables(warehouse, selected)
    assert sorted(table for table, _ in warehouse.asked) == ["adrs", "adsl", "adtte", "survival_subgroups"]
    # ADSL once, with the swimmer's columns, the subgroup factors' and which of them are reconstructed.
    assert set(read["adsl"].columns) == {"SUBJID", "COMBFL", "COMBTRT", "RECONVAR", *SUBGROUP_COLUMNS}
    assert chart_problems(read, ("swimmer_chart", "km_subgroups_chart")) == {"swimmer_chart": [], "km_subgroups_chart": []}


def test_a_chart_whose_table_was_never_published_fails_naming_it(tables):
    swimmer_asset = [c for c in graphs.CHART_ASSETS if c.name == "swimmer_chart"]
    without_adrs = _Warehouse({k: v for k, v in tables.items() if k != "adrs"})
    with pytest.raises(Failure, match="swimmer_chart: adrs is not in the warehouse; materialize adrs first"):
        graphs.read_tables(without_adrs, swimmer_asset)


def test_a_thinned_subgroup_curve_is_bounded_and_keeps_its_median():
    """Above MAX_POINTS steps an arm is thinned to one step per time bin, and the step where S reaches 0.5 stays."""
    n = 2000
    times = pl.DataFrame(
        {
            "factor": ["Sex"] * n,
            "endpoint": ["OS"] * n,
            "arm": ["level"] * n,
            "time": [0.01 * (i + 1) for i in range(n)],
            "event": [i % 3 != 0 for i in range(n)],
        }
    ).with_columns(pl.col("event").cast(pl.Int64))
    steps = survival.km_steps(times, by=km_subgroups.GROUP)
    drawn = km_subgroups._curves(steps, max_points=50)
    assert drawn.height <= 50 + 2  # the bins, the crossing step and S(0) = 1
    assert survival.first_time_at_or_below(drawn.sort("time"), "surv", 0.5) == survival.first_time_at_or_below(steps, "surv", 0.5)
    assert drawn["censored"].sum() == steps["censored"].sum()
