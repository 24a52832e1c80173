"""Group ``charts``: Altair figures as PNG in the UI and interactive HTML in the outputs folder."""

import polars as pl
from dagster import AssetIn, MaterializeResult, asset

from lms_assets.defs.audit.published import published_cut, typed_registry
from lms_assets.defs.constants import CHARTS, DUCKDB_POOL, OWNERS
from lms_assets.defs.metadata import chart_metadata
from lms_assets.graphs import adverse_events, km, waterfall
from lms_assets.graphs.history import history_chart

# --- response and toxicity charts (waterfall, adverse events) ---


@asset(
    pool=DUCKDB_POOL,
    group_name=CHARTS,
    kinds={"altair"},
    owners=OWNERS,
    ins={
        "adrs": AssetIn(metadata={"columns": ["SUBJID", "PARAMCD", "AVALC", "PCHG"]}),
        "adsl": AssetIn(metadata={"columns": ["SUBJID", "COMBFL", "COMBTRT"]}),
    },
    description=(
        "Figure 2, the waterfall plot: each patient's best % change of the target-lesion sum, sorted from largest "
        "increase to largest decrease, coloured by recorded RECIST 1.1 response, dashed lines at −30% and +20%, "
        f"combination therapy marked. Above {waterfall.MAX_BARS} patients an evenly spaced sample, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/waterfall_plot.html."
    ),
)
def waterfall_plot(adrs: pl.DataFrame, adsl: pl.DataFrame) -> MaterializeResult:
    bars, total = waterfall.waterfall_data(adrs, adsl)
    chart = waterfall.waterfall_chart(bars, total)
    return MaterializeResult(
        metadata={**chart_metadata(chart, "waterfall_plot", "Waterfall plot"), "patients": total, "bars_drawn": bars.height}
    )


@asset(
    pool=DUCKDB_POOL,
    group_name=CHARTS,
    kinds={"altair"},
    owners=OWNERS,
    description=(
        "Table 4 as a chart: one row per adverse-event term, most frequent on top, bars split by worst CTCAE grade "
        f"group and labelled n (% of all patients); at most {adverse_events.MAX_TERMS} terms, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/adverse_event_chart.html."
    ),
)
def adverse_event_chart(adverse_event_summary: pl.DataFrame) -> MaterializeResult:
    rows, terms = adverse_events.ae_chart_data(adverse_event_summary)
    chart = adverse_events.adverse_event_chart(rows, terms)
    return MaterializeResult(metadata={**chart_metadata(chart, "adverse_event_chart", "Adverse events by grade"), "terms": terms})


# --- survival charts (Kaplan–Meier, forest, follow-up history) ---


def _km_chart_asset(endpoint: str, figure: str):
    name = f"km_{endpoint.lower()}_plot"

    @asset(
        name=name,
        group_name=CHARTS,
        kinds={"altair"},
        owners=OWNERS,
        pool=DUCKDB_POOL,
        description=(
            f"Figure {figure}: Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]} as survminer draws it — step curve, "
            "censor ticks, shaded log(−log) 95% band, dashed median, number at risk (cumulative events) every 3 "
            "months under the x-axis, the median with SPSS's and the log(−log) CI in the titles. The latest data cut "
            f"is drawn; the published cut is overlaid when it differs. PNG here; HTML in outputs/charts/{name}.html."
        ),
    )
    def _plot(
        survival_curves: pl.DataFrame,
        survival_landmarks: pl.DataFrame,
        survival_summary: pl.DataFrame,
        raw_published_figures: pl.DataFrame,
    ) -> MaterializeResult:
        published = published_cut(typed_registry(raw_published_figures))
        chart = km.endpoint_figure(survival_curves, survival_landmarks, survival_summary, endpoint, published)
        title = f"Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]}"
        return MaterializeResult(metadata={**chart_metadata(chart, name, title), "published_cut": str(published)})

    return _plot


km_pfs_plot = _km_chart_asset("PFS", "1A")
km_os_plot = _km_chart_asset("OS", "1B")


@asset(
    group_name=CHARTS,
    kinds={"altair"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "Forest plot of the latest data cut's subgroups (sex, ECOG, combination therapy, prior chemotherapy, surgery, "
        "radiotherapy): Cox HR with 95% CI on a log axis per endpoint, n per level, HR (CI) and log-rank p beside it, "
        "and how many comparisons reach p < 0.05 against the paper's 'no significant difference'. PNG here; HTML in "
        "outputs/charts/subgroup_forest_plot.html."
    ),
)
def subgroup_forest_plot(survival_subgroups: pl.DataFrame) -> MaterializeResult:
    chart = km.forest_figure(survival_subgroups)
    return MaterializeResult(metadata=chart_metadata(chart, "subgroup_forest_plot", "Subgroup forest plot"))



@asset(
    pool=DUCKDB_POOL,
    group_name=CHARTS,
    kinds={"altair"},
    owners=OWNERS,
    description=(
        "How median PFS and OS and their 95% intervals moved from data cut to data cut (SPSS's method and the "
        "log(−log) one side by side; a median not yet reached is shown as missing, not as a number). The paper "
        "expects median OS to fall as follow-up lengthens. PNG here; HTML in outputs/charts/followup_history_chart.html."
    ),
)
def followup_history_chart(followup_history: pl.DataFrame) -> MaterializeResult:
    chart = history_chart(followup_history)
    return MaterializeResult(
        metadata={**chart_metadata(chart, "followup_history_chart", "Medians across data cuts"), "data_cuts": followup_history["data_cut"].n_unique()}
    )
