"""Group ``charts``: Altair figures as PNG in the UI and interactive HTML in the outputs folder.

Each chart asset returns its rendered chart (``render.Chart``: PNG bytes, title, description, data cut, HTML path),
stored by ``ChartIOManager`` as files in the outputs folder; the report takes them as inputs.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import altair as alt
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    ConfigurableIOManager,
    Failure,
    InputContext,
    MetadataValue,
    Output,
    OutputContext,
)

from lms_assets.defs import gate
from lms_assets.defs.constants import CHARTS, asset_defaults
from lms_assets.defs.markdown import escape_markdown
from lms_assets.defs.metadata import chart_output
from lms_assets.defs.resources import OutputsFolder
from lms_assets.graphs import adverse_events, history, km, render, stated, waterfall
from lms_assets.tables.printed import published_cut

CHART_IO_MANAGER = "chart_io_manager"
chart_asset = asset_defaults(group=CHARTS, kinds={"altair"}, io_manager_key=CHART_IO_MANAGER)


class ChartIOManager(ConfigurableIOManager):
    """A chart asset's ``render.Chart`` as two files a reader can open in ``base_dir``: ``<name>.png`` and
    ``<name>.json`` (title, description, data cut, HTML path and the PNG's SHA-256). Not the warehouse: a chart
    is an image, not a table."""

    base_dir: str

    def _paths(self, context: InputContext | OutputContext) -> tuple[Path, Path]:
        base = Path(self.base_dir) / context.asset_key.path[-1]
        return base.with_suffix(".png"), base.with_suffix(".json")

    def handle_output(self, context: OutputContext, obj: render.Chart) -> None:
        png, about = self._paths(context)
        png.parent.mkdir(parents=True, exist_ok=True)
        fields = {
            "name": obj.name,
            "title": obj.title,
            "description": obj.description,
            "data_cut": obj.data_cut,
            "html": obj.html,
            "png_sha256": hashlib.sha256(obj.png).hexdigest(),
        }
        # Each file replaced whole, the PNG first: the JSON written last names the PNG it belongs to.
        for path, data in ((png, obj.png), (about, json.dumps(fields, indent=1).encode())):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

    def load_input(self, context: InputContext) -> render.Chart:
        png, about = self._paths(context)
        if not about.is_file() or not png.is_file():
            raise Failure(description=f"{about.stem}: no stored chart in {png.parent}; materialize the chart asset first")
        fields = json.loads(about.read_text(encoding="utf-8"))
        data = png.read_bytes()
        if hashlib.sha256(data).hexdigest() != fields.pop("png_sha256"):
            raise Failure(description=f"{png} is not the PNG {about.name} describes (rewritten since); materialize {about.stem} again")
        return render.Chart(**fields, png=data)


NO_CUT = "none (no follow-up cut analysed)"


def _cuts_words(cuts: pl.Series) -> str:
    """The data cuts a chart draws, for its caption in the UI and the report."""
    return ", ".join(str(c) for c in cuts.drop_nulls().unique().sort()) or NO_CUT


# Every chart's blocking check: what it states in words is what its tables hold.
NUMBERS_MATCH = "numbers_match_tables"
# The failure's description quotes this many mismatches; the check's metadata lists them all.
QUOTED_MISMATCHES = 3


def numbers_check(name: str) -> list[AssetCheckSpec]:
    """The chart's blocking check, declared on its asset."""
    return [
        AssetCheckSpec(
            NUMBERS_MATCH,
            asset=name,
            blocking=True,
            description="Every number in the chart's titles, captions and labels is a cell of the tables it draws.",
        )
    ]


def published_chart(
    chart: alt.TopLevelMixin,
    expected: set[str],
    title: str,
    data_cut: str,
    outputs: OutputsFolder,
    *,
    mismatches: Callable[[dict], list[str]] | None = None,
    **extra,
) -> Iterator[AssetCheckResult | Output[render.Chart]]:
    """The chart's ``numbers_match_tables`` result, then its rendered output, or ``Failure`` naming the wrong numbers
    (the stored chart files stay as they were). ``mismatches``: a chart's own check of what its spec states (the KM
    title's interval against the method it names)."""
    context = AssetExecutionContext.get()
    spec = render.chart_spec(chart)
    problems = [*(mismatches(spec) if mismatches else []), *(f"{n} is in no table cell" for n in stated.unexplained(spec, expected))]
    shown = "; ".join(problems[:QUOTED_MISMATCHES]) + (f"; and {len(problems) - QUOTED_MISMATCHES} more" if len(problems) > QUOTED_MISMATCHES else "")
    result = AssetCheckResult(
        check_name=NUMBERS_MATCH,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=escape_markdown(shown) if problems else "Every stated number is a table cell.",
        metadata={"mismatches": MetadataValue.json(problems)},
    )
    yield from gate.checked(context, [result], lambda: chart_output(chart, title, data_cut, outputs, **extra))


# --- response and toxicity charts (waterfall, adverse events) ---


def _records_cut(cut: object | None, file: str) -> str:
    """The cut of records that later follow-up does not re-cut (response, adverse events): the published analysis."""
    return f"{cut if cut is not None else 'unknown'} (the published analysis; {file} is not re-cut by later follow-up)"


@chart_asset(
    ins={
        "adrs": AssetIn(metadata={"columns": ["SUBJID", "PARAMCD", "AVALC", "PCHG"]}),
        "adsl": AssetIn(metadata={"columns": ["SUBJID", "COMBFL", "COMBTRT"]}),
    },
    description=(
        "Figure 2, the waterfall plot: each patient's best % change of the target-lesion sum, sorted from largest "
        "increase to largest decrease, coloured by recorded RECIST 1.1 response, dashed lines at −30% and +20%, "
        f"combination therapy marked. Above {waterfall.MAX_BARS} patients an evenly spaced sample, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/waterfall_chart.html."
    ),
    check_specs=numbers_check("waterfall_chart"),
)
def waterfall_chart(outputs_folder: OutputsFolder, adrs: pl.DataFrame, adsl: pl.DataFrame, printed_values: pl.DataFrame):
    cut = published_cut(printed_values)
    bars, total = waterfall.waterfall_data(adrs, adsl)
    chart = waterfall.waterfall_chart(bars, total, cut)
    expected = waterfall.expected_numbers(bars, total, cut)
    yield from published_chart(
        chart, expected, "Waterfall plot", _records_cut(cut, "response.csv"), outputs_folder, patients=total, bars_drawn=bars.height
    )


@chart_asset(
    description=(
        "Table 4 as a chart: one row per adverse-event term, most frequent on top, bars split by worst CTCAE grade "
        f"group and labelled n (% of all patients); at most {adverse_events.MAX_TERMS} terms, as the chart says. "
        "PNG here; interactive HTML in outputs/charts/ae_chart.html."
    ),
    check_specs=numbers_check("ae_chart"),
)
def ae_chart(outputs_folder: OutputsFolder, ae_summary: pl.DataFrame, printed_values: pl.DataFrame):
    cut = published_cut(printed_values)
    rows, terms = adverse_events.ae_chart_data(ae_summary)
    chart = adverse_events.ae_chart(rows, terms, cut)
    expected = adverse_events.expected_numbers(ae_summary, cut)
    yield from published_chart(chart, expected, "Adverse events by grade", _records_cut(cut, "adverse_events.csv"), outputs_folder, terms=terms)


# --- survival charts (Kaplan–Meier, forest, follow-up history) ---


# What the OS chart draws of the reconstruction its curve rests on.
RECONSTRUCTED_CENSORS = (
    "Reconstructed input: the living patients' last-contact times at the published cut are reconstructed (ADTTE "
    "AVALRFL = 'Y'); their censor marks are hollow orange circles, 'censored, reconstructed last contact'."
)


def _km_chart_asset(endpoint: str, figure: str):
    name = f"km_{endpoint.lower()}_chart"

    @chart_asset(
        name=name,
        description=(
            f"Figure {figure}: Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]} as survminer draws it — step curve, "
            "censor ticks, shaded and outlined log(−log) 95% band, dotted median, number at risk (cumulative events) every 3 "
            "months under the x-axis, the median with SPSS's and the log(−log) CI in the titles. The latest data cut "
            f"is drawn solid; the published cut is overlaid dashed, on top, when it differs. PNG here; HTML in outputs/charts/{name}.html."
            + (f" {RECONSTRUCTED_CENSORS}" if endpoint == "OS" else "")
        ),
        ins={"adtte": AssetIn(metadata={"columns": ["SUBJID", "DATACUT", "PARAMCD", "AVAL", "CNSR", "AVALRFL"]})},
        check_specs=numbers_check(name),
    )
    def _plot(
        outputs_folder: OutputsFolder,
        survival_curves: pl.DataFrame,
        survival_landmarks: pl.DataFrame,
        survival_summary: pl.DataFrame,
        printed_values: pl.DataFrame,
        adtte: pl.DataFrame,
    ):
        published = published_cut(printed_values)
        chart = km.endpoint_figure(survival_curves, survival_landmarks, survival_summary, endpoint, published, adtte)
        expected = km.expected_numbers(survival_summary, survival_landmarks, endpoint)
        title = f"Kaplan–Meier {km.ENDPOINT_TITLES[endpoint]}"
        latest = survival_curves["data_cut"].max()
        cut = NO_CUT if latest is None else str(latest)
        if published is not None and published != latest:
            cut += f", with the published cut {published} overlaid"
        yield from published_chart(
            chart,
            expected,
            title,
            cut,
            outputs_folder,
            mismatches=lambda spec: km.title_mismatches(spec, survival_summary, endpoint),
            published_cut=str(published),
        )

    return _plot


km_pfs_chart = _km_chart_asset("PFS", "1A")
km_os_chart = _km_chart_asset("OS", "1B")


@chart_asset(
    description=(
        "Forest plot of the latest data cut's subgroups (sex, ECOG, combination therapy, prior chemotherapy, surgery, "
        "radiotherapy): Cox HR with 95% CI on a log axis per endpoint, n per level, HR (CI) and log-rank p beside it, "
        "and how many comparisons reach p < 0.05 against the paper's 'no significant difference'. PNG here; HTML in "
        "outputs/charts/forest_chart.html. Reconstructed inputs: the primary-site allocation (ADSL RECONVAR) and, for "
        "OS, the living patients' last-contact times (ADTTE AVALRFL = 'Y')."
    ),
    check_specs=numbers_check("forest_chart"),
)
def forest_chart(outputs_folder: OutputsFolder, survival_subgroups: pl.DataFrame):
    chart = km.forest_figure(survival_subgroups)
    latest = survival_subgroups["data_cut"].max()
    expected = km.forest_expected_numbers(survival_subgroups)
    yield from published_chart(chart, expected, "Subgroup forest plot", NO_CUT if latest is None else str(latest), outputs_folder)


@chart_asset(
    description=(
        "How median PFS and OS and their 95% intervals moved from data cut to data cut (SPSS's method and the "
        "log(−log) one side by side, joined across cuts; a median not yet reached is shown as missing, not as a number), "
        "with the events and the patients still without one at each cut. The paper "
        "expects median OS to fall as follow-up lengthens. PNG here; HTML in outputs/charts/history_chart.html. "
        "Reconstructed input: OS at the published cut rests on reconstructed last-contact times (ADTTE AVALRFL = 'Y')."
    ),
    check_specs=numbers_check("history_chart"),
)
def history_chart(outputs_folder: OutputsFolder, median_history: pl.DataFrame):
    chart = history.history_chart(median_history)
    yield from published_chart(
        chart,
        history.expected_numbers(median_history),
        "Medians across data cuts",
        _cuts_words(median_history["data_cut"]),
        outputs_folder,
        data_cuts=median_history["data_cut"].n_unique(),
    )
