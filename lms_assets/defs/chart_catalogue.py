"""What each chart asset of the ``charts`` step reads, says and draws: its description, the columns of each table it
draws, its builder from ``graphs/`` and what its ``numbers_match_tables`` check compares (``defs/graphs.py`` runs them)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import polars as pl

from lms_assets.graphs import adverse_events, forest, history, km, km_subgroups, swimmer, waterfall
from lms_assets.records.declarations import SUBGROUP_COLUMNS
from lms_assets.records.study import Study
from lms_assets.tables.printed import published_cut
from lms_assets.tables.survival import SUBGROUP_SCHEMA, SUMMARY_SCHEMA

NO_CUT = "none (no follow-up cut analysed)"


def _cuts_words(cuts: pl.Series) -> str:
    """The data cuts a chart draws, for its caption in the UI and the report."""
    return ", ".join(str(c) for c in cuts.drop_nulls().unique().sort()) or NO_CUT


def _latest_words(cuts: pl.Series) -> str:
    latest = cuts.max()
    return NO_CUT if latest is None else str(latest)


def _records_cut(cut: object | None, file: str) -> str:
    """The cut of records that later follow-up does not re-cut (response, adverse events): the published analysis."""
    return f"{cut if cut is not None else 'unknown'} (the published analysis; {file} is not re-cut by later follow-up)"


@dataclass(frozen=True)
class Drawn:
    """A chart as its builder drew it, with what its check compares it against."""

    chart: alt.TopLevelMixin
    expected: set[str]  # the numbers its text may state, formatted from its tables' cells
    data_cut: str  # the cut(s) it draws, in words
    # Its own checks of what the spec plots or states (the KM title's interval, the swimmer's times against ADTTE).
    mismatches: Callable[[dict[str, Any]], list[str]] = lambda spec: []
    metadata: Mapping[str, Any] = field(default_factory=dict)


Tables = Mapping[str, pl.DataFrame]


@dataclass(frozen=True)
class ChartAsset:
    """One chart asset of the ``charts`` step: what it is called and says, the columns it reads and how it is drawn."""

    name: str
    title: str
    description: str
    reads: Mapping[str, tuple[str, ...]]  # table -> the columns the chart draws
    draw: Callable[[Tables, Study], Drawn]  # from its tables and the study (study.toml)


# The columns each chart reads, by table.
ADTTE = ("SUBJID", "DCUTDT", "PARAMCD", "AVAL", "CNSR", "AVALRFL")
REGISTRY = ("data_cut",)
CURVES = ("data_cut", "endpoint", "time", "surv", "ci_lower", "ci_upper", "censored")
LANDMARKS = ("data_cut", "endpoint", "month", "at_risk", "events_cum")
SUMMARY = tuple(SUMMARY_SCHEMA)
HISTORY = ("data_cut", "endpoint", "method", "n", "events", "median", "ci_lower", "ci_upper", "note")
AE_SUMMARY = ("section", "term", "denominator", "total_n", "total_pct", *(f"{g}_{v}" for g in ("g12", "g34", "g5") for v in ("n", "pct")))


def _waterfall(t: Tables, study: Study) -> Drawn:
    cut = published_cut(t["printed_values"])
    bars, total = waterfall.waterfall_data(t["adrs"], t["adtr"], t["adsl"])
    return Drawn(
        waterfall.waterfall_chart(bars, total, cut),
        waterfall.expected_numbers(bars, total, cut),
        _records_cut(cut, "response.csv"),
        metadata={"patients": total, "bars_drawn": bars.height},
    )


def _ae(t: Tables, study: Study) -> Drawn:
    cut = published_cut(t["printed_values"])
    rows, terms = adverse_events.ae_chart_data(t["ae_summary"])
    return Drawn(
        adverse_events.ae_chart(rows, terms, cut),
        adverse_events.expected_numbers(t["ae_summary"], cut),
        _records_cut(cut, "adverse_events.csv"),
        metadata={"terms": terms},
    )


def _km(endpoint: str) -> Callable[[Tables, Study], Drawn]:
    def draw(t: Tables, study: Study) -> Drawn:
        curves, summary = t["survival_curves"], t["survival_summary"]
        published = published_cut(t["printed_values"])
        latest = curves["data_cut"].max()
        cut = NO_CUT if latest is None else str(latest)
        if published is not None and published != latest:
            cut += f", with the published cut {published} overlaid"
        return Drawn(
            km.endpoint_chart(curves, t["survival_landmarks"], summary, endpoint, published, t["adtte"]),
            km.expected_numbers(summary, t["survival_landmarks"], endpoint),
            cut,
            mismatches=lambda spec: km.title_mismatches(spec, summary, endpoint),
        )

    return draw


def _forest(t: Tables, study: Study) -> Drawn:
    subgroups, summary = t["survival_subgroups"], t["survival_summary"]
    return Drawn(forest.forest_chart(subgroups, summary), forest.forest_expected_numbers(subgroups, summary), _latest_words(subgroups["data_cut"]))


def _history(t: Tables, study: Study) -> Drawn:
    table = t["median_history"]
    return Drawn(
        history.history_chart(table),
        history.expected_numbers(table),
        _cuts_words(table["data_cut"]),
        metadata={"data_cuts": table["data_cut"].n_unique()},
    )


def _swimmer(t: Tables, study: Study) -> Drawn:
    lanes, cohort = swimmer.swimmer_data(t["adtte"], t["adrs"], t["adsl"])
    return Drawn(
        swimmer.swimmer_chart(lanes, cohort),
        swimmer.expected_numbers(t["adtte"], lanes.height),
        NO_CUT if cohort.cut is None else str(cohort.cut),
        mismatches=lambda spec: swimmer.plotted_mismatches(spec, t["adtte"]),
        metadata={"patients": cohort.patients, "lanes_drawn": lanes.height},
    )


def _km_by_subgroup(t: Tables, study: Study) -> Drawn:
    subgroups, declared = t["survival_subgroups"], study.subgroups
    return Drawn(
        km_subgroups.subgroup_chart(t["adtte"], t["adsl"], subgroups, declared),
        km_subgroups.expected_numbers(t["adtte"], t["adsl"], subgroups, declared),
        _latest_words(subgroups["data_cut"]),
        mismatches=lambda spec: km_subgroups.plotted_mismatches(spec, subgroups, t["adtte"], t["adsl"], declared),
    )


# What the OS chart draws of the reconstruction its curve rests on.
RECONSTRUCTED_CENSORS = (
    "Reconstructed input: the living patients' last-contact times at the published cut are reconstructed (ADTTE "
    "AVALRFL = 'Y'); their censor marks are hollow orange circles, 'censored, reconstructed last contact'."
)


def _km_asset(endpoint: str, value: str) -> ChartAsset:
    name = f"km_{endpoint.lower()}_chart"
    return ChartAsset(
        name,
        f"Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]}",
        f"Value {value}: Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]} as survminer draws it — step curve, "
        "censor ticks, shaded and outlined log(−log) 95% band, dotted median, number at risk (cumulative events) every 3 "
        "months under the x-axis, the median with SPSS's and the log(−log) CI in the titles. The latest data cut "
        f"is drawn solid; the published cut is overlaid dashed, on top, when it differs. PNG here; HTML in outputs/charts/{name}.html."
        + (f" {RECONSTRUCTED_CENSORS}" if endpoint == "OS" else ""),
        {"survival_curves": CURVES, "survival_landmarks": LANDMARKS, "survival_summary": SUMMARY, "printed_values": REGISTRY, "adtte": ADTTE},
        _km(endpoint),
    )


# In the order the report shows them.
CHART_ASSETS = (
    ChartAsset(
        "waterfall_chart",
        "Waterfall plot",
        "Figure 2, the waterfall plot: each patient's best % change of the target-lesion sum, sorted from largest "
        "increase to largest decrease, coloured by recorded RECIST 1.1 response, dashed lines at −30% and +20%, "
        f"combination therapy marked. Above {waterfall.MAX_BARS} patients an evenly spaced sample, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/waterfall_chart.html.",
        {
            "adrs": ("SUBJID", "PARAMCD", "AVALC"),
            "adtr": ("SUBJID", "PARAMCD", "AVISIT", "PCHG"),
            "adsl": ("SUBJID", "COMBFL", "COMBTRT"),
            "printed_values": REGISTRY,
        },
        _waterfall,
    ),
    ChartAsset(
        "ae_chart",
        "Adverse events by grade",
        "Table 4 as a chart: one row per adverse-event term, most frequent on top, bars split by worst CTCAE grade "
        f"group and labelled n (% of all patients); at most {adverse_events.MAX_TERMS} terms, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/ae_chart.html.",
        {"ae_summary": AE_SUMMARY, "printed_values": REGISTRY},
        _ae,
    ),
    _km_asset("PFS", "1A"),
    _km_asset("OS", "1B"),
    ChartAsset(
        "forest_chart",
        "Subgroup forest plot",
        "Forest plot of the latest data cut's subgroups (those study.toml declares), one block per endpoint: an overall row (all patients' events/patients and SPSS "
        "median, from survival_summary), then per comparison the level's and the reference's events/patients, the Cox "
        "HR with 95% CI on a log axis with which side favours which group, HR (CI) and log-rank p, and how many "
        "comparisons reach p < 0.05 against the paper's 'no significant difference'. PNG here; HTML in "
        "outputs/charts/forest_chart.html. Reconstructed inputs: the primary-site allocation (ADSL RECONVAR) and, for "
        "OS, the living patients' last-contact times (ADTTE AVALRFL = 'Y').",
        {"survival_subgroups": tuple(SUBGROUP_SCHEMA), "survival_summary": SUMMARY},
        _forest,
    ),
    ChartAsset(
        "km_subgroups_chart",
        "Kaplan–Meier curves by subgroup",
        "Kaplan–Meier curves of PFS and OS for each subgroup factor study.toml declares as small multiples, the level "
        "against the reference, events/patients and the numbers at risk under each panel, and the log-rank p of "
        "survival_subgroups in each panel's title; the latest data cut. Its check compares each curve's median and "
        "each panel's p with survival_subgroups. PNG here; HTML in outputs/charts/km_subgroups_chart.html. "
        "Reconstructed inputs: the primary-site allocation (ADSL RECONVAR) and, for OS, the living patients' "
        "last-contact times (ADTTE AVALRFL = 'Y').",
        {"adtte": ADTTE, "adsl": ("SUBJID", "RECONVAR", *SUBGROUP_COLUMNS), "survival_subgroups": tuple(SUBGROUP_SCHEMA)},
        _km_by_subgroup,
    ),
    ChartAsset(
        "swimmer_chart",
        "Swimmer plot",
        "One lane per patient, longest time on study on top: a bar from the start of the study treatment to death or last "
        "contact, coloured by combination therapy, with progression (the PFS event), death and an arrow for alive at "
        "the latest data cut marked, and the best RECIST 1.1 response beside each lane. Its check compares every "
        f"plotted time with ADTTE. Above {swimmer.MAX_LANES} patients an evenly spaced sample, as the chart says. PNG "
        "here; HTML in outputs/charts/swimmer_chart.html. Reconstructed input: the living patients' last-contact "
        "times (ADTTE AVALRFL = 'Y'), drawn with hollow orange circles.",
        {"adtte": ADTTE, "adrs": ("SUBJID", "PARAMCD", "AVALC"), "adsl": ("SUBJID", "COMBFL", "COMBTRT")},
        _swimmer,
    ),
    ChartAsset(
        "history_chart",
        "Medians across data cuts",
        "How median PFS and OS and their 95% intervals moved from data cut to data cut (SPSS's method and the "
        "log(−log) one side by side, joined across cuts; a median not yet reached is shown as missing, not as a number), "
        "with the events and the patients still without one at each cut. The paper "
        "expects median OS to fall as follow-up lengthens. PNG here; HTML in outputs/charts/history_chart.html. "
        "Reconstructed input: OS at the published cut rests on reconstructed last-contact times (ADTTE AVALRFL = 'Y').",
        {"median_history": HISTORY},
        _history,
    ),
)
